#!/usr/bin/env python3
"""Measures properties of fmnist_2c2d starting points — directories in `decoupled initial-state`'s
format (`<tensor>.npy` + `order.npy`, from that command or torch_start.py) — that could make one
start train better than another (docs/problems.md, "Reference accuracy"):
  weights: Frobenius norm and standard deviation of every tensor; loss and accuracy of the
           untrained network on the whole training split; the spread of its initial predictions
           (how many distinct classes it predicts, the share of its most predicted class)
  order:   per-batch class balance — the chi-square statistic of a batch's class counts against
           uniform, for batch 1, the mean over the first 10 batches and over epoch 1, the mean over
           the last 10 full batches of the last epoch (the ones just before the final evaluation);
           the rank correlation of every sample's position in consecutive epochs; how often two
           samples that share a batch in one epoch share one again in the next (against chance)
  both:    the loss of step 1 (these weights on this order's first batch)
Prints one CSV row per directory on stdout.

Usage: python3 scripts/reference/start_properties.py DATA.h5 START_DIR... [--batch 128] [--threads 1]
           [--order-only]   (skip the weights and step 1: no forward passes, seconds instead of minutes)
Needs torch and h5py (never needed by CI).
"""
import argparse
import csv
import os
import sys

import numpy as np
import torch
from torch import nn

from fmnist_2c2d import evaluate, load, make_model
from same_start import start_state


def class_chi2(labels: np.ndarray, classes: int) -> float:
    """Pearson's chi-square of the class counts against equal counts."""
    counts = np.bincount(labels, minlength=classes)
    expected = len(labels) / classes
    return float(((counts - expected) ** 2 / expected).sum())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("starts", nargs="+")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--order-only", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    x, y = load(args.data, "train")
    labels = y.numpy()
    classes = int(labels.max()) + 1
    out = None
    for start in args.starts:
        model = make_model(False)
        try:
            state = start_state(start, model)
            order = np.load(os.path.join(start, "order.npy"))
        except FileNotFoundError as error:
            raise SystemExit(f"{start}: {error.filename} is missing (expected a directory from "
                             "`decoupled initial-state` or torch_start.py)")
        if order.ndim != 2 or order.shape[1] != len(y):
            raise SystemExit(f"{start}/order.npy: shape {order.shape}, expected [epochs, {len(y)}] for {args.data}")
        row = {"start": start}
        if not args.order_only:
            model.load_state_dict(state)
            for name, tensor in state.items():
                row[f"norm_{name}"] = float(tensor.double().norm())
                row[f"std_{name}"] = float(tensor.double().std())
            row["init_train_loss"], row["init_train_acc"] = evaluate(model, x, y)
            with torch.no_grad():
                predicted = torch.cat([model(x[i:i + 1000]).argmax(1) for i in range(0, len(y), 1000)]).numpy()
                first = torch.from_numpy(order[0, :args.batch])
                row["step1_loss"] = float(nn.functional.cross_entropy(model(x[first]), y[first]))
            shares = np.bincount(predicted, minlength=classes) / len(predicted)
            row["init_classes_predicted"] = int((shares > 0).sum())
            row["init_top_class_share"] = float(shares.max())
        full = len(y) // args.batch

        def chi2(epoch):
            return [class_chi2(labels[order[epoch, i * args.batch:(i + 1) * args.batch]], classes) for i in range(full)]
        row["batch1_chi2"] = chi2(0)[0]
        row["batches1_10_chi2"] = float(np.mean(chi2(0)[:10]))
        row["epoch1_chi2"] = float(np.mean(chi2(0)))
        row["last_epoch_last10_chi2"] = float(np.mean(chi2(-1)[-10:]))
        position = np.argsort(order, axis=1)  # position[e, row]: where row comes in epoch e
        batch_of = position // args.batch
        rank_corr, together = [], []
        for e in range(order.shape[0] - 1):
            rank_corr.append(np.corrcoef(position[e], position[e + 1])[0, 1])
            # Pairs sharing a batch in epoch e that share one in e + 1, over the chance expectation.
            same = sum(int(np.unique(batch_of[e + 1, order[e, i * args.batch:(i + 1) * args.batch]],
                                     return_counts=True)[1].__pow__(2).sum() - args.batch) // 2
                       for i in range(full))
            pairs = full * args.batch * (args.batch - 1) // 2
            together.append(same / (pairs * (args.batch - 1) / (len(y) - 1)))
        row["epoch_rank_corr_mean"] = float(np.mean(rank_corr)) if rank_corr else float("nan")
        row["rebatched_pairs_over_chance"] = float(np.mean(together)) if together else float("nan")
        if out is None:
            out = csv.DictWriter(sys.stdout, fieldnames=list(row))
            out.writeheader()
        out.writerow(row)
        sys.stdout.flush()


if __name__ == "__main__":
    main()
