#!/usr/bin/env python3
"""Summarise bench/collector.sh's results.tsv: medians, ratios, targets.

Prints a plain table; with --record also a Markdown snippet for BENCHMARKS.md.
"""
import argparse
import csv
import statistics
import sys

SUBJECTS = ["hostscope-sys", "hostscope-all", "netdata", "collectd"]
LABELS = {
    "hostscope-sys": "hostscope, system inputs",
    "hostscope-all": "hostscope, all default inputs",
    "netdata": "netdata 1.37 (proc + diskspace)",
    "collectd": "collectd 5.12 (8 plugins + csv)",
}
PHASES = ["base", "extra"]
RSS_TARGET_MIB = 15.0
GROWTH_TARGET_US = 10.0


def load(paths):
    """Rows of one or more results files (runs of the script): repeats numbered across them."""
    rows = []
    offset = 0
    for path in paths:
        offset = max([r["repeat"] for r in rows], default=0)
        rows.extend(load_one(path, offset))
    return rows


def load_one(path, offset):
    rows = []
    with open(path, newline="") as f:
        for r in csv.DictReader(f, delimiter="\t"):
            secs = float(r["seconds"])
            sched_ns = r.get("sched_ns")
            # schedstat misses the time of threads that ended inside the window
            precise = (
                int(sched_ns) / 1e6 / secs
                if sched_ns not in (None, "") and int(r.get("lost_threads") or 0) == 0
                else None
            )
            rows.append(
                {
                    "repeat": offset + int(r["repeat"]),
                    "phase": r["phase"],
                    "subject": r["subject"],
                    "procs": int(r["procs"]),
                    # the window holds `secs` cycles at the 1 s interval
                    "cpu_ms": int(r["ticks"]) * 1000.0 / int(r["clk_tck"]) / secs,
                    "cpu_ns_ms": precise,
                    "rss_mib": int(r["hwm_kib"]) / 1024.0,
                    "child_rss_mib": int(r["children_hwm_kib"]) / 1024.0,
                    "seen": int(r["cycles_seen"]),
                    "secs": secs,
                    "threads": int(r["threads"] or 0),
                }
            )
    return rows


def summarise(rows):
    out = {}
    for s in SUBJECTS:
        for ph in PHASES:
            rs = [r for r in rows if r["subject"] == s and r["phase"] == ph]
            if not rs:
                continue
            cpu = [r["cpu_ms"] for r in rs]
            rss = [r["rss_mib"] for r in rs]
            precise = [r["cpu_ns_ms"] for r in rs if r["cpu_ns_ms"] is not None]
            out[(s, ph)] = {
                "n": len(rs),
                "cpu": statistics.median(cpu),
                "cpu_min": min(cpu),
                "cpu_max": max(cpu),
                "cpu_ns": statistics.median(precise) if precise else None,
                "rss": statistics.median(rss),
                "rss_max": max(rss),
                "child_rss": statistics.median(r["child_rss_mib"] for r in rs),
                "procs": int(statistics.median(r["procs"] for r in rs)),
                "seen": int(statistics.median(r["seen"] for r in rs)),
                "secs": statistics.median(r["secs"] for r in rs),
                "threads": int(statistics.median(r["threads"] for r in rs)),
            }
    return out


def growth_us(m, s, extra, key="cpu"):
    if (s, "base") in m and (s, "extra") in m:
        a, b = m[(s, "base")][key], m[(s, "extra")][key]
        if a is not None and b is not None:
            return (b - a) * 1000.0 / extra
    return None


def precise_ratio(a, b):
    if a["cpu_ns"] is None or b["cpu_ns"] is None:
        return ""
    return f"; schedstat {a['cpu_ns']:.3f} vs {b['cpu_ns']:.3f} = {a['cpu_ns'] / b['cpu_ns']:.2f}×"


def targets(m, extra):
    """[(text, met or None)] for each target that this run can judge."""
    res = []
    for ph in PHASES:
        a, b = m.get(("hostscope-sys", ph)), m.get(("netdata", ph))
        if a and b:
            ratio = a["cpu"] / b["cpu"]
            res.append(
                (
                    f"(1) system inputs ≤ netdata, {a['procs']} processes: "
                    f"{a['cpu']:.3f} vs {b['cpu']:.3f} ms/cycle = {ratio:.2f}×{precise_ratio(a, b)}",
                    ratio <= 1.0,
                )
            )
    for ph in PHASES:
        a, b = m.get(("hostscope-all", ph)), m.get(("collectd", ph))
        if a and b:
            ratio = a["cpu"] / b["cpu"]
            res.append(
                (
                    f"(2) all default inputs ≤ collectd, {a['procs']} processes: "
                    f"{a['cpu']:.3f} vs {b['cpu']:.3f} ms/cycle = {ratio:.2f}×{precise_ratio(a, b)}",
                    ratio <= 1.0,
                )
            )
    g = growth_us(m, "hostscope-all", extra)
    if g is not None:
        gc = growth_us(m, "collectd", extra)
        notes = []
        gp = growth_us(m, "hostscope-all", extra, "cpu_ns")
        if gp is not None:
            notes.append(f"schedstat {gp:.2f} µs")
        if gc is not None:
            notes.append(f"collectd {gc:.2f} µs")
        notes = f" ({'; '.join(notes)})" if notes else ""
        res.append(
            (
                f"(2) all default inputs grow ≤ {GROWTH_TARGET_US:.0f} µs per extra process: "
                f"{g:.2f} µs = {g / GROWTH_TARGET_US:.2f}× the bound{notes}",
                g <= GROWTH_TARGET_US,
            )
        )
    for s in ("hostscope-sys", "hostscope-all"):
        rs = [m[(s, ph)] for ph in PHASES if (s, ph) in m]
        if rs:
            peak = max(r["rss_max"] for r in rs)
            res.append(
                (
                    f"(3) peak RSS < {RSS_TARGET_MIB:.0f} MiB, {LABELS[s]}: highest of all runs "
                    f"{peak:.1f} MiB = {peak / RSS_TARGET_MIB:.2f}× the bound",
                    peak < RSS_TARGET_MIB,
                )
            )
    return res


def verdict(met):
    return "met" if met else "NOT met"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results", nargs="+", help="results.tsv of one or more runs")
    ap.add_argument("--extra", type=int, default=1000)
    ap.add_argument("--record", action="store_true")
    ap.add_argument("--date", default="")
    ap.add_argument("--machine", default="")
    a = ap.parse_args()

    rows = load(a.results)
    if not rows:
        sys.exit("no results")
    m = summarise(rows)
    n = max(v["n"] for v in m.values())

    print()
    print(f"Medians of {n} run(s); CPU = utime+stime per 1 s cycle (schedstat: the same at ns resolution), peak RSS = VmHWM")
    hdr = f"{'tool':33} {'procs':>6} {'CPU ms/cycle':>13} {'(min-max)':>15} {'schedstat':>10} {'peak RSS MiB':>13} {'cycles':>7} {'threads':>7}"
    print(hdr)
    print("-" * len(hdr))
    for s in SUBJECTS:
        for ph in PHASES:
            v = m.get((s, ph))
            if not v:
                continue
            rng = f"{v['cpu_min']:.3f}-{v['cpu_max']:.3f}"
            ns = f"{v['cpu_ns']:.3f}" if v["cpu_ns"] is not None else "-"
            child = f"  (+{v['child_rss']:.1f} MiB in child processes)" if v["child_rss"] > 0 else ""
            print(
                f"{LABELS[s]:33} {v['procs']:>6} {v['cpu']:>13.3f} {rng:>15} {ns:>10} {v['rss']:>13.1f} "
                f"{v['seen']:>4}/{v['secs']:<3.0f}{v['threads']:>6}{child}"
            )
    print()
    print(f"Growth per extra process ((CPU with +{a.extra} - CPU base) / {a.extra}):")
    for s in SUBJECTS:
        g = growth_us(m, s, a.extra)
        if g is not None:
            gp = growth_us(m, s, a.extra, "cpu_ns")
            gp = f"   (schedstat {gp:.2f})" if gp is not None else ""
            print(f"  {LABELS[s]:33} {g:8.2f} µs/process{gp}")
    print()
    print("Targets:")
    for text, met in targets(m, a.extra):
        print(f"  [{verdict(met):7}] {text}")

    if a.record:
        print()
        print("----- Markdown -----")
        base_procs = int(statistics.median(r["procs"] for r in rows if r["phase"] == "base"))
        print(f"- Date: {a.date}; machine: {a.machine}; {base_procs} processes at rest (+{a.extra} idle `sleep`s in the second rows)")
        print(f"- Medians of {n} runs; each a {rows[0]['secs']:.0f} s window of 1 s cycles after a warm-up")
        print()
        print("| tool | processes | CPU per cycle (median) | range | same, from schedstat | peak RSS (VmHWM, median) | cycles seen |")
        print("|---|---|---|---|---|---|---|")
        for s in SUBJECTS:
            for ph in PHASES:
                v = m.get((s, ph))
                if not v:
                    continue
                child = f" (+{v['child_rss']:.1f} MiB child)" if v["child_rss"] > 0 else ""
                print(
                    f"| {LABELS[s]} | {v['procs']} | **{v['cpu']:.3f} ms** | {v['cpu_min']:.3f}–{v['cpu_max']:.3f} | "
                    f"{(format(v['cpu_ns'], '.3f') + ' ms') if v['cpu_ns'] is not None else '–'} | "
                    f"{v['rss']:.1f} MiB{child} | {v['seen']}/{v['secs']:.0f} |"
                )
        print()
        print("| growth per extra process | µs/process | same, from schedstat |")
        print("|---|---|---|")
        for s in SUBJECTS:
            g = growth_us(m, s, a.extra)
            if g is not None:
                gp = growth_us(m, s, a.extra, "cpu_ns")
                print(f"| {LABELS[s]} | {g:.2f} | {format(gp, '.2f') if gp is not None else '–'} |")
        print()
        for text, met in targets(m, a.extra):
            print(f"- **{verdict(met)}**: {text}")


if __name__ == "__main__":
    main()
