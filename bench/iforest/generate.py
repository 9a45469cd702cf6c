#!/usr/bin/env python3
"""A labelled synthetic set of host feature vectors, seeded.

Six correlated features a host reports per interval: cpu (%), mem (%), load,
net (MB/s), disk (MB/s) and iowait (%); the last four have multiplicative
log-normal noise, skewed as rates are. Normal points come from three operating
modes (idle, serving, batch), each driven by one latent activity level, so the
features move together. A few per cent are anomalies of four kinds:

- spike: one feature far outside its mode, the rest normal;
- decorrelated: each feature drawn from a different mode (busy cpu on an idle
  box's network and disk), so every value alone is ordinary;
- cluster: a small, tight group in a region no mode visits (heavy disk and
  iowait, idle cpu);
- scatter: uniform over the whole range of the normal data.

Usage: generate.py --out DIR [--train N] [--test N] [--anomalies FRACTION] [--seed S]
Writes DIR/train.csv and DIR/test.csv (header, features only) and DIR/test_labels.csv
(one 0/1 per test row, 1 = anomaly, with its kind). The training set has the same
mix as the test set, as a host's history would.
"""

import argparse
import csv
import os

import numpy as np

FEATURES = ["cpu", "mem", "load", "net", "disk", "iowait"]

# Per mode: name, weight, activity mean and sd.
MODES = [
    ("idle", 0.4, 0.2, 0.12),
    ("serving", 0.4, 0.5, 0.15),
    ("batch", 0.2, 0.8, 0.1),
]
# Per feature: offset, gain on the activity level, additive noise sd.
LINEAR = {
    "cpu": (3.0, 90.0, 3.0),
    "mem": (30.0, 40.0, 2.5),
    "load": (0.2, 7.0, 0.4),
    "net": (0.5, 120.0, 6.0),
    "disk": (1.0, 60.0, 5.0),
    "iowait": (0.5, 8.0, 0.8),
}
# Rates are skewed: these features get multiplicative log-normal noise of this sigma.
SKEWED = {"load": 0.3, "net": 0.3, "disk": 0.3, "iowait": 0.3}


def features(rng, levels):
    """Feature values from activity levels (rows x features, one level per feature)."""
    n = levels.shape[0]
    out = np.empty_like(levels)
    for j, name in enumerate(FEATURES):
        off, gain, noise = LINEAR[name]
        out[:, j] = off + gain * levels[:, j] + noise * rng.standard_normal(n)
        if name in SKEWED:
            out[:, j] *= np.exp(SKEWED[name] * rng.standard_normal(n))
    return np.clip(out, 0.0, None)


def activity(rng, modes):
    """Activity levels in [0, 1] drawn around each mode's mean."""
    mean = np.array([m[2] for m in MODES])[modes]
    sd = np.array([m[3] for m in MODES])[modes]
    return np.clip(mean + sd * rng.standard_normal(modes.shape), 0.0, 1.0)


def shared_activity(rng, n):
    """n normal points: a mode and one activity level per row, shared by its features."""
    weights = np.array([m[1] for m in MODES])
    mode = rng.choice(len(MODES), size=n, p=weights / weights.sum())
    level = activity(rng, mode)
    return features(rng, np.repeat(level[:, None], len(FEATURES), axis=1))


def decorrelated(rng, modes):
    """Points whose features each follow their own mode (`modes`, rows x features) and
    their own activity level."""
    return features(rng, activity(rng, modes))


def anomalies(rng, n, lo, hi):
    kinds = rng.choice(4, size=n)
    out = np.empty((n, len(FEATURES)))
    names = []
    for i, k in enumerate(kinds):
        if k == 0:
            row = shared_activity(rng, 1)[0]
            f = rng.integers(len(FEATURES))
            span = hi[f] - lo[f]
            row[f] = hi[f] + span * rng.uniform(0.3, 1.0)
            names.append("spike")
        elif k == 1:
            modes = rng.permutation(np.array([0, 0, 1, 1, 2, 2]))[None, :]
            row = decorrelated(rng, modes)[0]
            names.append("decorrelated")
        elif k == 2:
            row = np.array([4.0, 45.0, 1.0, 2.0, 140.0, 25.0])
            row = row * (1 + 0.03 * rng.standard_normal(len(FEATURES)))
            names.append("cluster")
        else:
            row = rng.uniform(lo, hi)
            names.append("scatter")
        out[i] = row
    return out, names


def dataset(rng, n, fraction):
    n_anom = int(round(n * fraction))
    x_norm = shared_activity(rng, n - n_anom)
    lo, hi = x_norm.min(axis=0), x_norm.max(axis=0)
    x_anom, kinds = anomalies(rng, n_anom, lo, hi)
    x = np.vstack([x_norm, x_anom])
    labels = np.array([0] * (n - n_anom) + [1] * n_anom)
    kind = ["normal"] * (n - n_anom) + kinds
    order = rng.permutation(n)
    return x[order], labels[order], [kind[i] for i in order]


def write(path, x):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FEATURES)
        for row in x:
            w.writerow([repr(float(v)) for v in row])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--train", type=int, default=20000)
    p.add_argument("--test", type=int, default=10000)
    p.add_argument("--anomalies", type=float, default=0.03)
    p.add_argument("--seed", type=int, default=20081215)
    a = p.parse_args()
    rng = np.random.default_rng(a.seed)
    os.makedirs(a.out, exist_ok=True)
    train, _, _ = dataset(rng, a.train, a.anomalies)
    test, labels, kinds = dataset(rng, a.test, a.anomalies)
    write(os.path.join(a.out, "train.csv"), train)
    write(os.path.join(a.out, "test.csv"), test)
    with open(os.path.join(a.out, "test_labels.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["label", "kind"])
        w.writerows(zip(labels.tolist(), kinds))


if __name__ == "__main__":
    main()
