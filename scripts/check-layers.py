#!/usr/bin/env python3
"""check-layers.py - the layer rules of the tree, checked by `make lint`.

1. httpd headers (httpd.h, http_*.h, ap_*.h, mpm_common.h, unixd.h,
   util_*.h, mod_*.h, scoreboard.h) are included only by src/httpd/ and
   mod_upload_session.c; a header of src/httpd/ likewise.

2. Dependencies between source files, read from the object files of the
   module build (build/apxs): file A depends on file B when a symbol A's
   object leaves undefined (nm type U) is defined (nm: any other upper-case
   type) by B's object. That is what the linker resolves, so it counts
   calls and data references, not includes or macros. Two rules:
   - no cycle: no file depends on itself through any chain of others
     (strongly connected components of more than one file);
   - layers: a file depends only on its own layer or a lower one:
       mod_upload_session.c  anything
       src/httpd/            core, wire, store, storage, util
       src/core/             wire, store, storage, util
       src/wire/, src/store/, src/storage/   util
       src/util/             nothing
   One symbol is not counted: `upload_session_module`, the module record.
   httpd requires every file that logs with the module's tag
   (APLOG_USE_MODULE) or reads its configuration slot to name it, while the
   record names the hooks; it is httpd's identity of the module, not code.

3. Object file names are unique (ar keeps one member per name).

Usage: check-layers.py [--objects DIR] [--root DIR]; exit 1 on a violation.
"""
import argparse
import os
import re
import subprocess
import sys

MODULE_FILE = "mod_upload_session.c"
MODULE_RECORD = "upload_session_module"
HTTPD_HEADER = re.compile(
    r'^\s*#\s*include\s*[<"]((httpd|scoreboard|mpm_common|unixd)\.h|(http|ap|util|mod)_[A-Za-z0-9_]*\.h)[>"]')
QUOTE_INCLUDE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
LAYERS = ["module", "httpd", "core", "wire", "store", "storage", "util"]
ALLOWED = {
    "module": set(LAYERS),
    "httpd": {"httpd", "core", "wire", "store", "storage", "util"},
    "core": {"core", "wire", "store", "storage", "util"},
    "wire": {"wire", "util"},
    "store": {"store", "util"},
    "storage": {"storage", "util"},
    "util": {"util"},
}


def layer_of(path):
    if path == MODULE_FILE:
        return "module"
    parts = path.split("/")
    if len(parts) >= 3 and parts[0] == "src" and parts[1] in ALLOWED:
        return parts[1]
    return None


def httpd_side(path):
    return path == MODULE_FILE or path.startswith("src/httpd/")


def sources(root):
    out = [MODULE_FILE]
    for top in ("src", "include"):
        for d, _, files in os.walk(os.path.join(root, top)):
            for f in files:
                if f.endswith((".c", ".h")):
                    out.append(os.path.relpath(os.path.join(d, f), root))
    return sorted(out)


def check_includes(root, problems):
    httpd_private = {os.path.basename(p) for p in sources(root)
                     if p.startswith("src/httpd/") and p.endswith(".h")}
    for path in sources(root):
        if httpd_side(path):
            continue
        with open(os.path.join(root, path), encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                m = HTTPD_HEADER.match(line)
                if m:
                    problems.append(f"{path}:{n}: includes the httpd header {m.group(1)} "
                                    "(only src/httpd/ and mod_upload_session.c may)")
                q = QUOTE_INCLUDE.match(line)
                if q and os.path.basename(q.group(1)) in httpd_private:
                    problems.append(f"{path}:{n}: includes {q.group(1)} of src/httpd/")


def objects(objdir):
    """{source path: object path} of the module build."""
    out = {}
    for d, _, files in os.walk(objdir):
        if os.path.basename(d) != ".libs":
            continue
        for f in files:
            if not f.endswith(".o"):
                continue
            rel = os.path.relpath(os.path.dirname(d), objdir)
            src = os.path.normpath(os.path.join(rel, f[:-2] + ".c"))
            out[src] = os.path.join(d, f)
    return out


def symbols(obj):
    res = subprocess.run(["nm", "-P", obj], capture_output=True, text=True, check=True)
    defined, undefined = set(), set()
    for line in res.stdout.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            undefined.add(name)
        elif kind.isupper():
            defined.add(name)
    return defined, undefined


def sccs(nodes, edges):
    """Tarjan's strongly connected components."""
    index, low, on, stack, out = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return out


def check_symbols(root, objdir, problems):
    objs = objects(objdir)
    if MODULE_FILE not in objs:
        problems.append(f"no object files under {objdir}: build the module first (make module)")
        return
    expected = {p for p in sources(root) if p.endswith(".c")}
    for src in sorted(expected - set(objs)):
        problems.append(f"{src}: no object file under {objdir} (stale build?)")
    names = {}
    for src in objs:
        names.setdefault(os.path.basename(src), []).append(src)
    for base, paths in sorted(names.items()):
        if len(paths) > 1:
            problems.append(f"object name {base[:-2]}.o used by {', '.join(sorted(paths))}")

    syms = {src: symbols(obj) for src, obj in objs.items()}
    edges, why = {}, {}
    for a, (_, undef) in syms.items():
        for b, (defined, _) in syms.items():
            if a == b:
                continue
            shared = (undef & defined) - {MODULE_RECORD}
            if shared:
                edges.setdefault(a, set()).add(b)
                why[(a, b)] = sorted(shared)

    def edge_text(a, b):
        s = why[(a, b)]
        more = f", +{len(s) - 3} more" if len(s) > 3 else ""
        return f"{a} -> {b} ({', '.join(s[:3])}{more})"

    for comp in sccs(syms, edges):
        if len(comp) < 2:
            continue
        inner = [edge_text(a, b) for a in comp for b in comp if (a, b) in why]
        problems.append("files depending on each other: " + ", ".join(comp) +
                        "\n    " + "\n    ".join(inner))
    for (a, b) in sorted(why):
        la, lb = layer_of(a), layer_of(b)
        if la and lb and lb not in ALLOWED[la]:
            problems.append(f"layer {la} depends on layer {lb}: {edge_text(a, b)}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--root", default=".")
    ap.add_argument("--objects", default="build/apxs")
    args = ap.parse_args()
    problems = []
    check_includes(args.root, problems)
    check_symbols(args.root, os.path.join(args.root, args.objects)
                  if not os.path.isabs(args.objects) else args.objects, problems)
    for p in problems:
        print("check-layers: " + p)
    if problems:
        return 1
    print("check-layers: ok (httpd headers only in src/httpd/, no cycles, layers respected)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
