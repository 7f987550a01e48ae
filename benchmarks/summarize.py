#!/usr/bin/env python3
"""Median of the runs per section of a benchmarks/run.sh log: ``summarize.py LOG``."""

import json
import statistics
import sys

KEYS = ("msgs_s", "MB_s", "sessions_s", "p50_ms", "p99_ms", "peak_pss_mb")


def main(path: str) -> None:
    sections: dict[str, list[dict]] = {}
    current = None
    for line in open(path):
        if line.startswith("## "):
            current = line[3:].strip()
        elif line.startswith("{") and current:
            sections.setdefault(current, []).append(json.loads(line))
    for name, runs in sections.items():
        medians = {k: statistics.median(r[k] for r in runs) for k in KEYS if k in runs[0]}
        errors = sum(r.get("errors", 0) for r in runs)
        print(f"{name}: " + ", ".join(f"{k}={v:g}" for k, v in medians.items())
              + f" (runs={len(runs)}, errors={errors})")


if __name__ == "__main__":
    main(sys.argv[1])
