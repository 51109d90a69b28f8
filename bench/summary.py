"""Prints the results of a run (the JSON lines bench/common.py:record()
appends to $BENCH_RESULTS) as a Markdown table.

  /usr/bin/python3 bench/summary.py RESULTS.jsonl
"""

import json
import math
import sys


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float) and math.isnan(v):
        return "n/a"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.2f}"


def noise(r):
    """Highest share of the CPU other processes took during our or the
    baseline's measurements (when recorded)."""
    vals = []
    for key in ("ours_detail", "baseline_detail"):
        d = r.get(key)
        for x in d if isinstance(d, list) else [d] if d else []:
            if isinstance(x, dict):
                if "foreign_cpu_pct_max" in x:
                    vals.append(x["foreign_cpu_pct_max"])
                if isinstance(x.get("cpu"), dict):
                    vals.append(x["cpu"].get("foreign_cpu_pct", 0))
    cpu = r.get("cpu")
    if isinstance(cpu, dict):
        for lst in cpu.values():
            for x in lst:
                vals.append(x.get("foreign_cpu_pct", 0))
    return f"{max(vals):.0f}%" if vals else "-"


def main(path):
    rows = [json.loads(l) for l in open(path) if l.strip()]
    print("| # | benchmark | ours | baseline | unit | ratio | target | met | other CPU | note |")
    print("|---|---|---:|---:|---|---:|---|---|---:|---|")
    for r in rows:
        target = "-"
        if r.get("target") is not None:
            of = "ratio" if r.get("target_of", "ratio") == "ratio" and r.get("ratio") is not None \
                else "ours"
            target = f"{of} {r['cmp']} {r['target']:g}"
        met = {True: "**yes**", False: "**NO**", None: "-"}[r.get("met")]
        note = r.get("note", "")
        print(f"| {r['bench']} | {r['name']} | {fmt(r['ours'])} | {fmt(r.get('baseline'))} "
              f"| {r.get('unit', '')} | {fmt(r.get('ratio'))} | {target} | {met} | {noise(r)} "
              f"| {note} |")
    missed = [r for r in rows if r.get("met") is False]
    failed = [r for r in rows if r["name"] == "FAILED"]
    print()
    print(f"{len(rows) - len(failed)} figures, {sum(1 for r in rows if r.get('met'))} targets met, "
          f"{len(missed)} missed" + (f", {len(failed)} benchmark(s) FAILED" if failed else ""))
    print("'other CPU': the largest share of the machine's CPU that processes other than ours "
          "took during a measurement (see BENCHMARKS.md, Noise).")


if __name__ == "__main__":
    main(sys.argv[1])
