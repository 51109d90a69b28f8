#!/usr/bin/env python3
"""Format strings given to APR's formatter use only what it understands.

apr_psprintf, apr_snprintf, us_log (apr_vsnprintf) and httpd's ap_log_*
format with apr_vformatter, not the C library: it has no "ll", "z", "j",
"t" or "hh" length modifier (64-bit integers take APR_INT64_T_FMT, sizes
APR_SIZE_T_FMT). The compiler checks these calls as printf's and accepts
"%lld", which APR reads as "%l" plus a stray "d" without taking the
argument, so the arguments after it are read at the wrong places (a crash
when a string follows). Exit 1, naming each call, when one is found.
"""
import pathlib
import re
import sys

APR_FORMATTED = re.compile(
    r"\b(apr_psprintf|apr_pvsprintf|apr_snprintf|apr_vsnprintf|apr_file_printf|"
    r"apr_brigade_printf|us_log|ap_log_error|ap_log_rerror|ap_log_perror|ap_log_cerror|"
    r"ap_rprintf)\s*\(")
LITERAL = re.compile(r'"((?:[^"\\]|\\.)*)"')
BAD = re.compile(r"%[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(ll|hh|[zjt])")


def call_text(src, start):
    """The text of the call opening at src[start] ('('), to its ')'."""
    depth, i, in_str = 0, start, False
    while i < len(src):
        ch = src[i]
        if in_str:
            if ch == "\\":
                i += 1
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return src[start:i + 1]
        i += 1
    return src[start:]


def main(roots):
    found = 0
    for root in roots:
        for path in sorted(pathlib.Path(root).rglob("*.c")):
            src = path.read_text(errors="replace")
            for m in APR_FORMATTED.finditer(src):
                text = call_text(src, m.end() - 1)
                for lit in LITERAL.findall(text):
                    bad = BAD.search(lit)
                    if bad:
                        line = src.count("\n", 0, m.start()) + 1
                        print(f"{path}:{line}: {m.group(1)} with '%{bad.group(1)}': APR's "
                              "formatter does not know it (APR_INT64_T_FMT, APR_SIZE_T_FMT)")
                        found += 1
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or ["src", "mod_upload_session.c", "tools"]))
