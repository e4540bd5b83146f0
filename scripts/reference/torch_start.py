#!/usr/bin/env python3
"""Writes PyTorch's seed-S start of fmnist_2c2d — the initial weights and the per-epoch sample
orders that `fmnist_2c2d.py --seed S` trains from — in the format of `decoupled initial-state`:
  <tensor>.npy   every state_dict tensor at step 0, float32, under PyTorch's names (0.weight, …)
  order.npy      int64 [epochs, samples]: the training-split row of every sample in the order
                 the batches take them; batch b of epoch e is order[e, b·batch : (b+1)·batch]
so `same_start.py OUTPUT DATA.h5` trains exactly what `fmnist_2c2d.py DATA.h5 --seed S` trains,
and a start directory can mix one side's weights with the other side's order
(docs/problems.md, "Reference accuracy"). The drawing itself is fmnist_2c2d.seeded_start.

Usage: python3 scripts/reference/torch_start.py DATA.h5 --seed S [--epochs 3] --output DIR
(fmnist_2c2d without batch norm: same_start.py trains that network only.)
Needs torch and h5py (never needed by CI).
"""
import argparse
import os

import h5py
import numpy as np

from fmnist_2c2d import seeded_start


def training_samples(path: str) -> int:
    """The training split's size, read as fmnist_2c2d.load reads the split (train/y)."""
    try:
        with h5py.File(path, "r") as f:
            if "train/y" not in f:
                raise SystemExit(f"{path}: no dataset train/y (expected the layout of datasets/fashion-mnist-small.h5)")
            return int(f["train/y"].shape[0])
    except OSError as error:
        raise SystemExit(f"{path}: cannot read as HDF5 ({error})")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("data", help="the data file fmnist_2c2d.py trains on (only the training split's size is read)")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of sample order to write")
    ap.add_argument("--output", "-o", required=True, help="directory to write into (created if missing)")
    args = ap.parse_args()
    if args.epochs < 1:
        raise SystemExit(f"--epochs must be ≥ 1, got {args.epochs}")
    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise SystemExit(f"--output {args.output} exists and is not a directory")

    samples = training_samples(args.data)
    model, orders = seeded_start(args.seed, False, samples, args.epochs)
    os.makedirs(args.output, exist_ok=True)
    state = model.state_dict()
    for name, tensor in state.items():
        np.save(os.path.join(args.output, name + ".npy"), tensor.detach().numpy())
    np.save(os.path.join(args.output, "order.npy"), np.stack([o.numpy() for o in orders]).astype(np.int64))
    print(f"wrote {len(state)} tensors and order.npy ({args.epochs} × {samples} samples) "
          f"of torch seed {args.seed} to {args.output}")


if __name__ == "__main__":
    main()
