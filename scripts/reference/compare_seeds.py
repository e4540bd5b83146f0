#!/usr/bin/env python3
"""Compares independent trainings, one per seed on each side: Decoupled's run directories
against the PyTorch reference's logs (the JSON lines fmnist_2c2d.py prints), at one epoch (by
default each run's last). Prints each run's test accuracy and loss, each side's mean (SE), and
the Welch difference Decoupled − PyTorch with its 95 % interval and p, the form of the reference
tables in docs/problems.md.

Usage: python3 scripts/reference/compare_seeds.py --decoupled RUN_DIR ... --torch TORCH_LOG ... [--epoch N]
Needs scipy (never needed by CI).
"""
import argparse

import numpy as np
from scipy import stats

from compare_curves import METRICS, decoupled_curve, torch_curve


def at_epoch(curve, source, epoch):
    if not curve:
        raise SystemExit(f"{source}: no evaluated epoch")
    e = max(curve) if epoch is None else epoch
    if e not in curve:
        raise SystemExit(f"{source}: epoch {e} was not evaluated (evaluated: {min(curve)}–{max(curve)})")
    return e, curve[e]


def welch(a, b):
    """Mean of a − mean of b, its 95 % Welch interval and two-sided p."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    se = np.sqrt(va + vb)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    diff = a.mean() - b.mean()
    half = stats.t.ppf(0.975, df) * se
    return diff, diff - half, diff + half, 2 * stats.t.sf(abs(diff) / se, df)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decoupled", nargs="+", required=True, metavar="RUN_DIR")
    ap.add_argument("--torch", nargs="+", required=True, metavar="TORCH_LOG")
    ap.add_argument("--epoch", type=int, help="the epoch to compare (default: each run's last)")
    args = ap.parse_args()
    if len(args.decoupled) < 2 or len(args.torch) < 2:
        raise SystemExit("--decoupled and --torch: expected at least two runs each (a spread needs two)")
    sides = {"Decoupled": [at_epoch(decoupled_curve(p), p, args.epoch) for p in args.decoupled],
             "PyTorch": [at_epoch(torch_curve(p), p, args.epoch) for p in args.torch]}
    epochs = {e for runs in sides.values() for e, _ in runs}
    if len(epochs) > 1:
        raise SystemExit(f"the runs end at different epochs ({sorted(epochs)}); pass --epoch")
    print(f"epoch {epochs.pop()}")
    for k, (name, scale, unit, digits) in enumerate(METRICS):
        values = {side: [v[k] for _, v in runs] for side, runs in sides.items()}
        for side, vs in values.items():
            v = np.asarray(vs)
            print(f"{name}, {side}: {' '.join(f'{x:.4f}' for x in vs)}; mean {v.mean():.4f} (SE {v.std(ddof=1) / np.sqrt(len(v)):.4f})")
        diff, low, high, p = welch(values["Decoupled"], values["PyTorch"])
        print(f"{name}, Decoupled − PyTorch: {scale * diff:+.{digits}f}{unit} "
              f"(95 % {scale * low:+.{digits}f} to {scale * high:+.{digits}f}, Welch p = {p:.3f})")


if __name__ == "__main__":
    main()
