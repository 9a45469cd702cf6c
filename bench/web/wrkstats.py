#!/usr/bin/env python3
"""Reads `wrk --latency` output on stdin; prints `req_per_s p50_ms p99_ms requests bad`
(bad = non-2xx responses plus socket errors)."""
import re
import sys

UNIT = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
text = sys.stdin.read()


def lat(pct):
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)
    if not m:
        sys.exit(f"wrkstats: no {pct}% line in:\n{text}")
    return float(m.group(1)) * UNIT[m.group(2)]


rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
reqs = int(re.search(r"(\d+) requests in", text).group(1))
bad = 0
m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
if m:
    bad += int(m.group(1))
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
if m:
    bad += sum(int(x) for x in m.groups())
print(f"{rps:.1f} {lat(50):.3f} {lat(99):.3f} {reqs} {bad}")
