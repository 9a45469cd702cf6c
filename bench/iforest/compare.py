#!/usr/bin/env python3
"""hostscope's isolation forest against scikit-learn's IsolationForest, on the same data.

Correctness (always): both fit 100 trees of 256 samples on the training half of the
labelled synthetic set (generate.py) and score its test half. scikit-learn's
`score_samples` returns the paper's score negated, -2^(-E[h(x)]/c(psi)), so the
comparison uses `-score_samples(X)`, which is exactly what our example prints. Passes
when the Spearman rank correlation of the two score vectors is >= 0.9 and the two
ROC AUCs (scores against the labels) are within 0.02; exits 1 otherwise. The forests'
seeds are fixed (ours 42, scikit-learn's random_state 42: different generators, so the
trees differ and the scores agree only up to each forest's own randomness). Outside
--quick it also prints that randomness as a reference: scikit-learn against itself with
other seeds, ours with other seeds, and both with 1000 trees, where the noise is
smaller and the correlation should be near 1.

Timing (unless --no-timing): fit + score of 100,000 x 6 samples (fit on all of them,
score all of them), interleaved rounds of several repeats each, medians. Ours runs in
the example binary and times itself in-process (reading the CSV is not timed); ours
is given Vec<Vec<f64>>, scikit-learn a float64 numpy array (which it converts to
float32 itself, as it always does). Single-threaded both (scikit-learn n_jobs=1 and
its default sequential scoring); with --threads N > 1 also scikit-learn with n_jobs=N
for fit and joblib's threading backend with N jobs for scoring, against ours scoring
on N threads (our fit is single-threaded).

Usage: compare.py --bin PATH [--quick] [--no-timing] [--rounds R] [--repeat K]
                  [--threads N] [--record] [--json FILE]
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import joblib
import numpy as np
import scipy
import sklearn
from scipy.stats import spearmanr
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import generate  # noqa: E402

TREES = 100
SAMPLE = 256
SEED = 42
MIN_RHO = 0.9
MAX_AUC_DIFF = 0.02


def ours(binary, train, test=None, out=None, trees=TREES, seed=SEED, threads=1, repeat=1):
    """Runs the example; returns (scores or None, [per-repeat timing dicts])."""
    cmd = [binary, "--train", train, "--trees", str(trees), "--sample-size", str(SAMPLE),
           "--seed", str(seed), "--threads", str(threads), "--repeat", str(repeat)]
    if test:
        cmd += ["--test", test]
    if out:
        cmd += ["--out", out]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"compare.py: {' '.join(cmd)} failed: {run.stderr.strip()}")
    timings = [json.loads(line) for line in run.stdout.splitlines() if line.strip()]
    scores = np.loadtxt(out) if out else None
    return scores, timings


def sklearn_scores(train, test, trees=TREES, seed=SEED):
    forest = IsolationForest(n_estimators=trees, max_samples=SAMPLE, random_state=seed, n_jobs=1)
    return -forest.fit(train).score_samples(test)


def rho(a, b):
    return float(spearmanr(a, b).statistic)


def correctness(args, tmp):
    rng = np.random.default_rng(args.data_seed)
    n_train, n_test = (4000, 4000) if args.quick else (10000, 10000)
    train, _, _ = generate.dataset(rng, n_train, 0.03)
    test, labels, kinds = generate.dataset(rng, n_test, 0.03)
    train_csv, test_csv = os.path.join(tmp, "train.csv"), os.path.join(tmp, "test.csv")
    generate.write(train_csv, train)
    generate.write(test_csv, test)
    out = os.path.join(tmp, "ours.txt")

    theirs = sklearn_scores(train, test)
    mine, _ = ours(args.bin, train_csv, test_csv, out)
    if mine.shape != theirs.shape or not np.all(np.isfinite(mine)):
        sys.exit(f"compare.py: our example wrote {mine.shape} scores, some not finite; "
                 f"{theirs.shape} expected")
    r = rho(mine, theirs)
    auc_ours, auc_sk = roc_auc_score(labels, mine), roc_auc_score(labels, theirs)
    kinds = np.array(kinds)
    res = {
        "train_rows": n_train, "test_rows": n_test, "anomalies": int(labels.sum()),
        "spearman": r, "auc_ours": auc_ours, "auc_sklearn": auc_sk,
        "mean_abs_diff": float(np.abs(mine - theirs).mean()),
        "mean_ours": float(mine.mean()), "mean_sklearn": float(theirs.mean()),
        "auc_by_kind": {},
    }
    normal = kinds == "normal"
    for k in sorted(set(kinds) - {"normal"}):
        sel = normal | (kinds == k)
        res["auc_by_kind"][k] = (roc_auc_score(labels[sel], mine[sel]),
                                 roc_auc_score(labels[sel], theirs[sel]))

    print(f"== correctness: {n_train} training rows, {n_test} test rows "
          f"({res['anomalies']} anomalies), {TREES} trees of {SAMPLE} samples")
    print(f"Spearman rho (ours seed {SEED} vs scikit-learn random_state {SEED}): {r:.4f}"
          f"  (pass: >= {MIN_RHO})")
    print(f"ROC AUC: ours {auc_ours:.4f}, scikit-learn {auc_sk:.4f}, "
          f"difference {auc_ours - auc_sk:+.4f}  (pass: |difference| <= {MAX_AUC_DIFF})")
    print(f"mean score: ours {res['mean_ours']:.4f}, scikit-learn {res['mean_sklearn']:.4f}; "
          f"mean |ours - scikit-learn| {res['mean_abs_diff']:.4f}")
    print("ROC AUC by anomaly kind (that kind against the normal rows), ours / scikit-learn: "
          + ", ".join(f"{k} {a:.3f}/{b:.3f}" for k, (a, b) in res["auc_by_kind"].items()))

    if not args.quick:
        # The randomness either forest has on its own, for reading rho.
        other = [3, 7, 11]
        sk_sk = [rho(theirs, sklearn_scores(train, test, seed=s)) for s in other]
        ours_sk = [rho(ours(args.bin, train_csv, test_csv, out, seed=s)[0], theirs) for s in other]
        big_sk = sklearn_scores(train, test, trees=1000)
        big_ours, _ = ours(args.bin, train_csv, test_csv, out, trees=1000)
        res.update({"rho_sklearn_other_seeds": sk_sk, "rho_ours_other_seeds": ours_sk,
                    "rho_1000_trees": rho(big_ours, big_sk),
                    "auc_1000_trees": (roc_auc_score(labels, big_ours),
                                       roc_auc_score(labels, big_sk)),
                    "mean_abs_diff_1000_trees": float(np.abs(big_ours - big_sk).mean())})
        print("reference, rho against scikit-learn (seed 42): scikit-learn with seeds "
              + ", ".join(f"{s}: {v:.4f}" for s, v in zip(other, sk_sk))
              + "; ours with seeds " + ", ".join(f"{s}: {v:.4f}" for s, v in zip(other, ours_sk)))
        print(f"reference, 1000 trees each: rho {res['rho_1000_trees']:.4f}, ROC AUC ours "
              f"{res['auc_1000_trees'][0]:.4f}, scikit-learn {res['auc_1000_trees'][1]:.4f}, "
              f"mean |difference| {res['mean_abs_diff_1000_trees']:.4f}")

    ok = r >= MIN_RHO and abs(auc_ours - auc_sk) <= MAX_AUC_DIFF
    print("correctness: " + ("PASS" if ok else "FAIL"))
    res["pass"] = ok
    return res


def timing(args, tmp):
    rng = np.random.default_rng(args.data_seed + 1)
    x, _, _ = generate.dataset(rng, 100_000, 0.03)
    csv_path = os.path.join(tmp, "big.csv")
    generate.write(csv_path, x)
    threads = [1] + ([args.threads] if args.threads > 1 else [])
    runs = {(who, t): [] for t in threads for who in ("ours", "sklearn")}
    print(f"\n== timing: fit + score of {x.shape[0]} x {x.shape[1]}, {TREES} trees of {SAMPLE}"
          f" samples; {args.rounds} interleaved rounds of {args.repeat} repeats")
    load_before = os.getloadavg()
    for rnd in range(args.rounds):
        for t in threads:
            _, rep = ours(args.bin, csv_path, threads=t, repeat=args.repeat)
            runs[("ours", t)] += [(r["fit_s"], r["score_s"]) for r in rep]
            for _ in range(args.repeat):
                forest = IsolationForest(n_estimators=TREES, max_samples=SAMPLE,
                                         random_state=SEED, n_jobs=t)
                start = time.perf_counter()
                forest.fit(x)
                fitted = time.perf_counter()
                with joblib.parallel_backend("threading", n_jobs=t):
                    forest.score_samples(x)
                scored = time.perf_counter()
                runs[("sklearn", t)].append((fitted - start, scored - fitted))
        print(f"round {rnd + 1}: " + ", ".join(
            f"{who} {t}t {statistics.median(f + s for f, s in v[-args.repeat:]):.3f} s"
            for (who, t), v in runs.items()))
    load_after = os.getloadavg()

    rows = []
    for (who, t), v in runs.items():
        fit = [f for f, _ in v]
        score = [s for _, s in v]
        total = [f + s for f, s in v]
        rows.append({"who": who, "threads": t, "n": len(v),
                     "fit_median": statistics.median(fit), "score_median": statistics.median(score),
                     "total_median": statistics.median(total),
                     "total_min": min(total), "total_max": max(total)})
    print(f"\n{'':8} {'threads':>7} {'fit (median)':>13} {'score (median)':>15} "
          f"{'fit+score (median)':>19} {'range':>17} {'sklearn / ours':>15}")
    for row in rows:
        sk = next(r for r in rows if r["who"] == "sklearn" and r["threads"] == row["threads"])
        row["speedup"] = sk["total_median"] / row["total_median"]
        print(f"{row['who']:8} {row['threads']:>7} {row['fit_median']:>11.4f} s "
              f"{row['score_median']:>13.4f} s {row['total_median']:>17.4f} s "
              f"{row['total_min']:>7.3f}-{row['total_max']:.3f} s "
              + (f"{row['speedup']:>14.2f}x" if row["who"] == "ours" else f"{'':>15}"))
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs)")
    return {"rows": rows, "load_before": load_before, "load_after": load_after,
            "raw": {f"{who}-{t}": v for (who, t), v in runs.items()}}


def versions():
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"python": platform.python_version(), "numpy": np.__version__,
            "scipy": scipy.__version__, "scikit-learn": sklearn.__version__,
            "joblib": joblib.__version__, "cpu": cpu, "cpus": os.cpu_count()}


def record(res):
    v = res["versions"]
    c = res["correctness"]
    print("\n--- Markdown ---")
    print(f"Correctness ({c['train_rows']:,} training rows, {c['test_rows']:,} test rows with "
          f"{c['anomalies']} anomalies): Spearman ρ **{c['spearman']:.3f}**; ROC AUC ours "
          f"**{c['auc_ours']:.4f}**, scikit-learn **{c['auc_sklearn']:.4f}** "
          f"(difference {c['auc_ours'] - c['auc_sklearn']:+.4f}).")
    if "rows" in res.get("timing", {}):
        print("\n| implementation | threads | fit (median) | score (median) | fit + score (median) "
              "| range | scikit-learn / ours |")
        print("|---|---|---|---|---|---|---|")
        for r in res["timing"]["rows"]:
            name = "hostscope" if r["who"] == "ours" else f"scikit-learn {v['scikit-learn']}"
            print(f"| {name} | {r['threads']} | {r['fit_median'] * 1e3:.1f} ms | "
                  f"{r['score_median'] * 1e3:.1f} ms | {r['total_median'] * 1e3:.1f} ms | "
                  f"{r['total_min'] * 1e3:.0f}–{r['total_max'] * 1e3:.0f} ms | "
                  + (f"**{r['speedup']:.2f}×** |" if r["who"] == "ours" else "1 |"))
    print(f"\nVersions: Python {v['python']}, numpy {v['numpy']}, scipy {v['scipy']}, "
          f"scikit-learn {v['scikit-learn']}, joblib {v['joblib']}; {v['cpu']}, {v['cpus']} CPUs.")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bin", required=True, help="the iforest_score example binary")
    p.add_argument("--quick", action="store_true", help="smaller data, no reference runs")
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    p.add_argument("--data-seed", type=int, default=20081215)
    p.add_argument("--record", action="store_true", help="also print Markdown for BENCHMARKS.md")
    p.add_argument("--json", help="write all figures to this file")
    args = p.parse_args()

    res = {"versions": versions()}
    with tempfile.TemporaryDirectory(prefix="iforest-") as tmp:
        res["correctness"] = correctness(args, tmp)
        if not args.no_timing:
            res["timing"] = timing(args, tmp)
    print("\n" + ", ".join(f"{k} {v}" for k, v in res["versions"].items()))
    if args.record:
        record(res)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1, default=str)
    if not res["correctness"]["pass"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
