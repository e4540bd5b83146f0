#!/usr/bin/env python3
"""Trains fmnist_2c2d in PyTorch from exactly Decoupled's start — the same initial weights and
the same batches in the same order — and compares the per-step training loss with Decoupled's
(docs/problems.md, "Reference accuracy").

Float rounding differs between the two (summation orders, sgemm blocking), and training
amplifies any difference chaotically, so the trajectories drift apart over time even without a
bug. To tell that drift from a systematic difference, the script also trains a second PyTorch
copy whose initial weights are nudged by one float32 ulp (`np.nextafter`): its distance from the
unperturbed PyTorch run is the drift that rounding alone produces. A bug shows as Decoupled
differing from PyTorch early and by more than that.

Inputs:
  START     directory from `decoupled initial-state CONFIG --epochs E --output START`
            (<tensor>.npy at step 0 and order.npy, the loader's sample order)
  DATA.h5   the data file of the run
  --metrics RUN_DIR/metrics.jsonl of `decoupled train CONFIG --set train.log_every=1` with the
            same config and seed (per-step data_loss); optional
Prints one JSON line per epoch (test loss and accuracy of both PyTorch copies, and Decoupled's
from --metrics), then a summary of the per-step loss differences over windows of steps.

Usage: python3 scripts/reference/same_start.py START DATA.h5 [--metrics M.jsonl] [--epochs E]
           [--lr 1e-3] [--weight-decay 1e-2] [--batch 128] [--threads 1] [--no-nudged]
Needs torch and h5py (never needed by CI).
"""
import argparse
import json
import os

import numpy as np
import torch
from torch import nn

from fmnist_2c2d import evaluate, load, make_model


def start_state(directory, model):
    """The step-0 tensors Decoupled wrote, under the model's state_dict names."""
    return {name: torch.from_numpy(np.load(os.path.join(directory, name + ".npy")))
            for name in model.state_dict()}


def nudged(state):
    """Every float tensor moved by one ulp towards +inf: the smallest possible perturbation."""
    return {k: torch.from_numpy(np.nextafter(v.numpy(), np.float32(np.inf))) for k, v in state.items()}


def optimizer(model, lr, weight_decay):
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": rest, "weight_decay": 0.0}], lr=lr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("start")
    ap.add_argument("data")
    ap.add_argument("--metrics")
    ap.add_argument("--epochs", type=int, default=None, help="default: every epoch in order.npy")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-nudged", action="store_true",
                    help="train only the unperturbed copy (half the time; for accuracy alone, as in the crossing)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    order = np.load(os.path.join(args.start, "order.npy"))
    epochs = args.epochs or order.shape[0]
    if epochs > order.shape[0]:
        raise SystemExit(f"{args.start}/order.npy holds {order.shape[0]} epochs, --epochs asks for {epochs}")
    x, y = load(args.data, "train")
    tx, ty = load(args.data, "test")
    if order.shape[1] != len(y) or order.min() < 0 or order.max() >= len(y):
        raise SystemExit(f"{args.start}/order.npy: shape {order.shape} / rows {order.min()}..{order.max()} "
                         f"do not index the {len(y)} training samples of {args.data}")

    ours_steps, ours_epochs = {}, {}
    if args.metrics:
        with open(args.metrics) as f:
            for line in f:
                r = json.loads(line)
                ours_steps[r["step"]] = r["data_loss"]
                if r.get("test_acc") is not None and abs(r["epoch"] - round(r["epoch"])) < 1e-9:
                    ours_epochs[round(r["epoch"])] = (r["test_loss"], r["test_acc"])

    copies = {}
    for name in ("torch",) if args.no_nudged else ("torch", "torch_nudged"):
        model = make_model(False)
        state = start_state(args.start, model)
        model.load_state_dict(nudged(state) if name == "torch_nudged" else state)
        copies[name] = (model, optimizer(model, args.lr, args.weight_decay), [])

    for epoch in range(1, epochs + 1):
        idx_epoch = torch.from_numpy(order[epoch - 1])
        for i in range(0, len(y), args.batch):
            idx = idx_epoch[i:i + args.batch]
            for model, opt, losses in copies.values():
                opt.zero_grad(set_to_none=True)
                loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
                loss.backward()
                opt.step()
                losses.append(loss.item())
        line = {"epoch": epoch}
        for name, (model, _, _) in copies.items():
            line[name + "_test_loss"], line[name + "_test_acc"] = evaluate(model, tx, ty)
        if epoch in ours_epochs:
            line["decoupled_test_loss"], line["decoupled_test_acc"] = ours_epochs[epoch]
        print(json.dumps(line), flush=True)

    reference = np.array(copies["torch"][2])
    drift = np.abs(np.array(copies["torch_nudged"][2]) - reference) if "torch_nudged" in copies else None
    steps = len(reference)
    ours = np.array([ours_steps.get(s + 1, np.nan) for s in range(steps)]) if ours_steps else None
    # Windows of steps: 1-10, 11-50, 51-100, 101-200, then per epoch.
    per_epoch = (steps + epochs - 1) // epochs
    edges = [0, 10, 50, 100, 200] + [e * per_epoch for e in range(2, epochs + 1)]
    edges = sorted({min(e, steps) for e in edges} | {steps})
    for lo, hi in zip(edges, edges[1:]):
        row = {"steps": f"{lo + 1}-{hi}", "torch_loss": float(reference[lo:hi].mean())}
        if drift is not None:
            row["nudged_minus_torch_mean_abs"] = float(drift[lo:hi].mean())
        if ours is not None:
            d = ours[lo:hi] - reference[lo:hi]
            row |= {"decoupled_loss": float(np.nanmean(ours[lo:hi])), "decoupled_minus_torch_mean": float(np.nanmean(d)),
                    "decoupled_minus_torch_mean_abs": float(np.nanmean(np.abs(d)))}
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
