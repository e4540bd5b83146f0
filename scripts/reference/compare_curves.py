#!/usr/bin/env python3
"""Compares one Decoupled run's test accuracy and loss, epoch by epoch, with one PyTorch reference run's
(the JSON lines fmnist_2c2d.py prints): the final epoch, and the means over the last --last
epochs, with the epoch-to-epoch spread of the difference (docs/problems.md, fmnist_2c2d's
100-epoch comparison). Only epochs both runs have evaluated are compared.

Usage: python3 scripts/reference/compare_curves.py RUN_DIR TORCH_LOG [--last 10]
Needs only the standard library.
"""
import argparse
import json
import math
import os


# What each curve point holds, in order: (name, scale of a difference, its unit, digits).
METRICS = [("test accuracy", 100, " points", 2), ("test loss", 1, "", 3)]


def decoupled_curve(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    curve = {}
    try:
        with open(path) as f:
            for n, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as error:
                    raise SystemExit(f"{path}:{n}: not a JSON line ({error})")
                if row.get("test_acc") is not None:
                    curve[int(row["epoch"])] = (float(row["test_acc"]), float(row["test_loss"]))
    except OSError as error:
        raise SystemExit(f"{path}: cannot read ({error.strerror}); expected a Decoupled run directory")
    return curve


def torch_curve(path):
    curve = {}
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("{"):
                    row = json.loads(line)
                    curve[int(row["epoch"])] = (float(row["test_acc"]), float(row["test_loss"]))
    except OSError as error:
        raise SystemExit(f"{path}: cannot read ({error.strerror}); expected the output of fmnist_2c2d.py")
    except (json.JSONDecodeError, KeyError) as error:
        raise SystemExit(f"{path}: a line is not fmnist_2c2d.py's JSON ({error})")
    return curve


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run_dir")
    ap.add_argument("torch_log")
    ap.add_argument("--last", type=int, default=10, help="epochs at the end to average")
    args = ap.parse_args()
    d, t = decoupled_curve(args.run_dir), torch_curve(args.torch_log)
    common = sorted(set(d) & set(t))
    if not common:
        raise SystemExit(f"no epoch evaluated by both: {args.run_dir} has {sorted(d)[-3:]}…, {args.torch_log} {sorted(t)[-3:]}…")
    last = common[-1]
    window = common[-args.last:]
    print(f"epochs both evaluated: {len(common)} (up to {last})")
    for k, (name, scale, unit, digits) in enumerate(METRICS):
        print(f"{name}, epoch {last}: Decoupled {d[last][k]:.4f}, PyTorch {t[last][k]:.4f}, "
              f"difference {scale * (d[last][k] - t[last][k]):+.{digits}f}{unit}")
        diffs = [scale * (d[e][k] - t[e][k]) for e in window]
        mean = sum(diffs) / len(diffs)
        sd = math.sqrt(sum((x - mean) ** 2 for x in diffs) / (len(diffs) - 1)) if len(diffs) > 1 else float("nan")
        print(f"{name}, epochs {window[0]}–{window[-1]}: Decoupled {sum(d[e][k] for e in window) / len(window):.4f}, "
              f"PyTorch {sum(t[e][k] for e in window) / len(window):.4f}, difference {mean:+.{digits}f}{unit} "
              f"(SD over epochs {sd:.{digits}f}; epochs are not independent, so this is no interval)")


if __name__ == "__main__":
    main()
