#!/usr/bin/env python3
"""Two-way analysis of the fmnist_2c2d start crossing (docs/problems.md, "Reference accuracy"):
{Decoupled's, PyTorch's initial weights} × {Decoupled's, PyTorch's batch order}, each cell trained
in PyTorch by same_start.py from seed S's start for seeds S = 0 … n−1.

Input: a CSV with columns weights (d|t), order (d|t), seed and a test-accuracy column (--column,
default acc3); rows of a seed missing from some cell are left out of the paired contrasts.

Within seed S, the cells (t,t) and (d,t) share PyTorch's seed-S order, (t,d) and (d,d)
Decoupled's; (t,t) and (t,d) share PyTorch's seed-S weights, and so on. So each seed gives three
contrasts — weights ((tt + td) − (dt + dd))/2, order ((tt + dt) − (td + dd))/2, interaction
tt − td − dt + dd — and the seeds are independent: each contrast's mean gets a t interval on n − 1
degrees of freedom. Prints per-cell means, SE, SD; the contrasts; the correlation across seeds
of two cells that share the order (or the weights); the simple effects (each factor
at each level of the other, paired by seed); Welch tests between cells and Levene's test of the
four spreads. Seeds run with both orders under one side's weights only (a half crossing) give
the order contrast paired within the weights.

Usage: python3 scripts/reference/crossing_analysis.py RESULTS.csv [--column acc3] [--seeds FIRST LAST]
           [--order-properties d=D.csv t=T.csv]
Needs numpy and scipy (never needed by CI).
"""
import argparse
import csv
import sys

import numpy as np
from scipy import stats

CELLS = {("d", "d"): "Decoupled weights, Decoupled order", ("d", "t"): "Decoupled weights, PyTorch order",
         ("t", "d"): "PyTorch weights, Decoupled order", ("t", "t"): "PyTorch weights, PyTorch order"}


def interval(values):
    v = np.asarray(values, dtype=float)
    n = len(v)
    se = v.std(ddof=1) / np.sqrt(n)
    half = stats.t.ppf(0.975, n - 1) * se
    p = 2 * stats.t.sf(abs(v.mean() / se), n - 1) if se > 0 else float("nan")
    return v.mean(), se, v.mean() - half, v.mean() + half, p


def points(x):
    return f"{100 * x:+.2f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("results")
    ap.add_argument("--column", default="acc3")
    ap.add_argument("--order-properties", nargs="+", metavar="SIDE=CSV", default=[],
                    help="d=FILE t=FILE: start_properties.py --order-only output for each side's starts (the "
                         "start directories end in seedS); each property is rank-correlated with the order's "
                         "accuracy averaged over the weights it was trained with")
    ap.add_argument("--seeds", nargs=2, type=int, metavar=("FIRST", "LAST"), help="only seeds FIRST … LAST")
    args = ap.parse_args()
    cells = {key: {} for key in CELLS}
    with open(args.results) as f:
        for line, row in enumerate(csv.DictReader(f), start=2):
            key = (row.get("weights"), row.get("order"))
            if key not in cells:
                raise SystemExit(f"{args.results}:{line}: weights/order {key} — expected d or t each")
            try:
                value = float(row[args.column])
                seed = int(row["seed"])
            except (KeyError, ValueError):
                raise SystemExit(f"{args.results}:{line}: needs a seed and a number in column {args.column}, "
                                 f"got {row.get('seed')!r}, {row.get(args.column)!r}")
            if seed in cells[key] and cells[key][seed] != value:
                raise SystemExit(f"{args.results}:{line}: cell {key} seed {seed} appears twice with different "
                                 f"values ({cells[key][seed]} and {value}): runs are deterministic, so one is wrong")
            if args.seeds is None or args.seeds[0] <= seed <= args.seeds[1]:
                cells[key][seed] = value

    print(f"{'cell':40s} {'n':>3s} {'mean':>7s} {'SE':>7s} {'SD':>7s}   per seed")
    for key, label in CELLS.items():
        v = np.array([cells[key][s] for s in sorted(cells[key])])
        if len(v) < 2:
            print(f"{label:40s} {len(v):3d}")
            continue
        print(f"{label:40s} {len(v):3d} {v.mean():7.4f} {v.std(ddof=1) / np.sqrt(len(v)):7.4f} "
              f"{v.std(ddof=1):7.4f}   " + " ".join(f"{s}:{cells[key][s]:.4f}" for s in sorted(cells[key])))

    complete = sorted(set.intersection(*(set(c) for c in cells.values())))
    print(f"\nseeds in all four cells: {len(complete)} ({complete})")
    if len(complete) >= 3:
        tt, td, dt, dd = (np.array([cells[k][s] for s in complete]) for k in
                          (("t", "t"), ("t", "d"), ("d", "t"), ("d", "d")))
        for name, contrast in (("weights (PyTorch − Decoupled)", ((tt + td) - (dt + dd)) / 2),
                               ("order (PyTorch − Decoupled)", ((tt + dt) - (td + dd)) / 2),
                               ("interaction tt − td − dt + dd", tt - td - dt + dd)):
            m, se, lo, hi, p = interval(contrast)
            print(f"{name:36s} {points(m)} points (SE {100 * se:.2f}; 95 % {points(lo)} to {points(hi)}; p = {p:.3f})")

    print("\nacross seeds, Pearson correlation of cells sharing one factor (which factor fixes the outcome):")
    for first, second, shared in ((("d", "d"), ("t", "d"), "Decoupled's order"), (("d", "t"), ("t", "t"), "PyTorch's order"),
                                  (("d", "d"), ("d", "t"), "Decoupled's weights"), (("t", "d"), ("t", "t"), "PyTorch's weights")):
        seeds = sorted(set(cells[first]) & set(cells[second]))
        if len(seeds) < 4:
            continue
        r, p = stats.pearsonr([cells[first][s] for s in seeds], [cells[second][s] for s in seeds])
        print(f"  sharing {shared:20s} r = {r:+.2f} (p = {p:.3f}, n = {len(seeds)})")

    # Seeds run with both orders under one side's weights only (a half crossing) still pair.
    within = {}
    for w in ("d", "t"):
        for s in set(cells[(w, "t")]) & set(cells[(w, "d")]):
            within.setdefault(s, []).append(cells[(w, "t")][s] - cells[(w, "d")][s])
    if len(within) >= 3:
        m, se, lo, hi, p = interval([np.mean(v) for v in within.values()])
        print(f"\norder (PyTorch − Decoupled) paired within the weights, every seed with both orders: {points(m)} points "
              f"(SE {100 * se:.2f}; 95 % {points(lo)} to {points(hi)}; p = {p:.3f}; n = {len(within)})")

    print("\nsimple effects, paired by seed (first − second, points):")
    for first, second in ((("t", "d"), ("d", "d")), (("t", "t"), ("d", "t")),
                          (("d", "t"), ("d", "d")), (("t", "t"), ("t", "d"))):
        seeds = sorted(set(cells[first]) & set(cells[second]))
        if len(seeds) < 3:
            continue
        diff = np.array([cells[first][s] - cells[second][s] for s in seeds])
        m, se, lo, hi, p = interval(diff)
        print(f"  {CELLS[first]} − {CELLS[second]}: {points(m)} (SE {100 * se:.2f}; 95 % {points(lo)} to "
              f"{points(hi)}; p = {p:.3f}; n = {len(seeds)})")

    if args.order_properties:
        properties = {}
        for spec in args.order_properties:
            side, _, path = spec.partition("=")
            if side not in ("d", "t") or not path:
                raise SystemExit(f"--order-properties {spec!r}: expected d=FILE or t=FILE")
            with open(path) as f:
                for row in csv.DictReader(f):
                    digits = row["start"].rstrip("/").rsplit("seed", 1)[-1]
                    if not digits.isdigit():
                        raise SystemExit(f"{path}: start {row['start']!r} does not end in seedS")
                    properties[(side, int(digits))] = row
        accuracy = {}
        for (w, o), values in cells.items():
            for seed, value in values.items():
                accuracy.setdefault((o, seed), []).append(value)
        orders = sorted(k for k in accuracy if k in properties)
        if len(orders) >= 4:
            mean = [np.mean(accuracy[k]) for k in orders]
            print(f"\nSpearman correlation of an order's property with its accuracy (mean over its cells; {len(orders)} orders):")
            for name in properties[orders[0]]:
                if name == "start":
                    continue
                r = stats.spearmanr([float(properties[k][name]) for k in orders], mean)
                print(f"  {name:32s} {r.correlation:+.2f} (p = {r.pvalue:.2f})")

    print("\nWelch, cell against cell (unpaired):")
    keys = list(CELLS)
    for i in range(len(keys)):
        for j in range(i + 1, len(keys)):
            a, b = (np.array(list(cells[k].values())) for k in (keys[i], keys[j]))
            if len(a) < 2 or len(b) < 2:
                continue
            t = stats.ttest_ind(a, b, equal_var=False)
            print(f"  {CELLS[keys[i]]} − {CELLS[keys[j]]}: {points(a.mean() - b.mean())} (p = {t.pvalue:.3f})")
    groups = [np.array(list(c.values())) for c in cells.values() if len(c) >= 2]
    if len(groups) >= 2:
        print(f"\nLevene (median-centred) across the cells' spreads: p = {stats.levene(*groups).pvalue:.3f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
