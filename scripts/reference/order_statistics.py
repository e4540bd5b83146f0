#!/usr/bin/env python3
"""Compares sample orders (the epochs of `order.npy` files from `decoupled initial-state` or
torch_start.py) with as many torch.randperm permutations, statistic by statistic, to find any
way in which one side's orders are not uniform random permutations (docs/problems.md,
"Reference accuracy"). Per epoch: correlation of position and file row; how often consecutive
samples share a label or an HDF5 chunk of the file (--chunk rows); mean |row step|; mean per-batch
class chi-square; how often two samples of a batch share a chunk; mean row of the first batch and
of the last (short) batch. Prints each side's mean (SE) and Welch and Kolmogorov–Smirnov p.

Usage: python3 scripts/reference/order_statistics.py DATA.h5 ORDER.npy... [--batch 128] [--chunk 334]
           [--torch-seed 12345]
Needs torch, scipy and h5py (never needed by CI).
"""
import argparse

import h5py
import numpy as np
import torch
from scipy import stats


def statistics(p, labels, batch, chunk, classes):
    n = len(p)
    full = n // batch
    lab = labels[p]
    counts = np.stack([np.bincount(lab[i * batch:(i + 1) * batch], minlength=classes) for i in range(full)])
    expected = batch / classes
    blocks = p // chunk
    same_chunk_pairs = np.mean([(np.bincount(blocks[i * batch:(i + 1) * batch]) ** 2).sum() - batch for i in range(full)])
    return {"corr_position_row": np.corrcoef(np.arange(n), p)[0, 1],
            "consecutive_same_label": np.mean(lab[1:] == lab[:-1]),
            "consecutive_same_chunk": np.mean(blocks[1:] == blocks[:-1]),
            "mean_abs_row_step": np.mean(np.abs(np.diff(p))),
            "batch_class_chi2": (((counts - expected) ** 2) / expected).sum(1).mean(),
            "batch_pairs_same_chunk": same_chunk_pairs / (batch * (batch - 1)),
            "first_batch_mean_row": p[:batch].mean(),
            "last_batch_mean_row": p[full * batch:].mean() if n > full * batch else p[-batch:].mean()}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("orders", nargs="+")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--chunk", type=int, default=334, help="rows per HDF5 chunk of train/x (the loader's read block)")
    ap.add_argument("--torch-seed", type=int, default=12345)
    args = ap.parse_args()
    with h5py.File(args.data, "r") as f:
        labels = f["train/y"][...].astype(np.int64)
    classes = int(labels.max()) + 1
    ours = []
    for path in args.orders:
        order = np.load(path)
        if order.ndim != 2 or order.shape[1] != len(labels):
            raise SystemExit(f"{path}: shape {order.shape}, expected [epochs, {len(labels)}] for {args.data}")
        ours += [np.asarray(e) for e in order]
    torch.manual_seed(args.torch_seed)
    theirs = [torch.randperm(len(labels)).numpy() for _ in ours]
    a = [statistics(p, labels, args.batch, args.chunk, classes) for p in ours]
    b = [statistics(p, labels, args.batch, args.chunk, classes) for p in theirs]
    print(f"{len(ours)} epochs from the files against {len(theirs)} torch.randperm permutations")
    for key in a[0]:
        x, y = np.array([s[key] for s in a]), np.array([s[key] for s in b])
        print(f"{key:24s} files {x.mean():.5f} (SE {x.std(ddof=1) / np.sqrt(len(x)):.5f})  torch {y.mean():.5f} "
              f"(SE {y.std(ddof=1) / np.sqrt(len(y)):.5f})  Welch p {stats.ttest_ind(x, y, equal_var=False).pvalue:.3f}"
              f"  KS p {stats.ks_2samp(x, y).pvalue:.3f}")


if __name__ == "__main__":
    main()
