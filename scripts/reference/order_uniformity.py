#!/usr/bin/env python3
"""Tests sample orders for the two properties a uniform shuffle has, on many orders at once:
every sample is equally likely at every position (file row × position), and each epoch is
drawn afresh (position in epoch e × position in epoch e′, for every pair of epochs). Both
tables are binned to BINS × BINS and summed over the orders; Pearson's statistic is printed as
z = (X² − (BINS−1)²) / √(2 (BINS−1)²). Also: how many pairs of samples that share a batch in one
epoch share one again in another, per order, against independent uniform epochs. Orders come
from `order.npy` files (`decoupled initial-state`, torch_start.py) and, with --torch-seeds A B,
from `fmnist_2c2d.seeded_start` for seeds A … B (PyTorch's orders, drawn in this process)
(docs/problems.md, "Reference accuracy").

Usage: python3 scripts/reference/order_uniformity.py [ORDER.npy ...] [--torch-seeds A B]
           [--samples 10000] [--epochs 3] [--batch 128] [--bins 100]
Needs numpy (and torch for --torch-seeds); never needed by CI.
"""
import argparse
import os
import sys

import numpy as np


def pearson_z(table, bins):
    expected = table.sum() / table.size
    x2 = ((table - expected) ** 2 / expected).sum()
    df = (bins - 1) ** 2
    return (x2 - df) / np.sqrt(2 * df)


def rebatched_pairs(a, b, batch):
    """Pairs of samples in one batch of epoch b that were in one batch of epoch a."""
    batch_of = np.empty(len(a), int)
    batch_of[a] = np.arange(len(a)) // batch
    total = 0
    for i in range(0, len(b), batch):
        c = np.bincount(batch_of[b[i:i + batch]])
        total += (c * (c - 1) // 2).sum()
    return total


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("orders", nargs="*", help="order.npy files, int [epochs, samples]")
    ap.add_argument("--torch-seeds", type=int, nargs=2, metavar=("A", "B"))
    ap.add_argument("--samples", type=int, default=10000, help="training samples (for --torch-seeds)")
    ap.add_argument("--epochs", type=int, default=3, help="epochs per seed (for --torch-seeds)")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--bins", type=int, default=100)
    args = ap.parse_args()
    orders = []
    for path in args.orders:
        try:
            o = np.load(path)
        except (OSError, ValueError) as error:
            raise SystemExit(f"{path}: cannot read as .npy ({error})")
        if o.ndim != 2 or (np.sort(o, axis=1) != np.arange(o.shape[1])).any():
            raise SystemExit(f"{path}: expected int [epochs, samples] with a permutation per epoch, got shape {o.shape}")
        orders.append(o)
    if args.torch_seeds:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        from fmnist_2c2d import seeded_start
        for seed in range(args.torch_seeds[0], args.torch_seeds[1] + 1):
            _, o = seeded_start(seed, False, args.samples, args.epochs)
            orders.append(np.stack([e.numpy() for e in o]))
    if not orders:
        raise SystemExit("no orders: give order.npy files and/or --torch-seeds A B")
    shapes = {o.shape for o in orders}
    if len(shapes) != 1:
        raise SystemExit(f"orders differ in shape: {sorted(shapes)}")
    epochs, n = orders[0].shape
    bins = args.bins
    row_bin = np.arange(n) * bins // n
    placed = np.zeros((bins, bins))
    pairs = {(a, b): np.zeros((bins, bins)) for a in range(epochs) for b in range(a + 1, epochs)}
    rebatched = {k: [] for k in pairs}
    for o in orders:
        position = np.argsort(o, axis=1)  # position[e, row]
        for e in range(epochs):
            np.add.at(placed, (row_bin, position[e] * bins // n), 1)
        for (a, b), table in pairs.items():
            np.add.at(table, (position[a] * bins // n, position[b] * bins // n), 1)
            rebatched[(a, b)].append(rebatched_pairs(o[a], o[b], args.batch))
    sizes = [min(args.batch, n - i) for i in range(0, n, args.batch)]
    in_batches = sum(s * (s - 1) // 2 for s in sizes)
    chance = in_batches * in_batches / (n * (n - 1) / 2)
    print(f"{len(orders)} orders of {epochs} epochs × {n} samples, {bins} × {bins} bins")
    print(f"file row × position: z = {pearson_z(placed, bins):+.2f}")
    for (a, b), table in pairs.items():
        r = np.array(rebatched[(a, b)], float)
        print(f"epoch {a + 1} × epoch {b + 1}: position z = {pearson_z(table, bins):+.2f}; "
              f"pairs batched together again {r.mean():.0f} (SE {r.std(ddof=1) / np.sqrt(len(r)):.1f}), "
              f"independent uniform epochs {chance:.0f}")


if __name__ == "__main__":
    main()
