#!/usr/bin/env python3
"""PyTorch reference for the Fashion-MNIST problems (docs/problems.md): fmnist_2c2d (the default),
fmnist_2c2d_bn, fmnist_mlp and fmnist_logreg.

Trains the same network as `decoupled train examples/fmnist-2c2d.toml` — DeepOBS's 2c2d:
conv 32@5x5 same -> ReLU -> max-pool 2 -> conv 64@5x5 same -> ReLU -> max-pool 2 -> dense 1024
-> ReLU -> dense 10 (with --bn, a BatchNorm2d after each conv and a BatchNorm1d after the
dense 1024) — with the same initialisation scheme (weights truncated normal, std 0.05,
redrawn outside 2 std; biases 0.05), the same optimizer (AdamW, decay on conv/dense weights
only, as Decoupled's default groups) and the same data file, batch size and epochs, and prints
one JSON line per epoch: {"epoch": e, "test_acc": ..., "test_loss": ..., "train_loss": ...}.

With --problem fmnist_mlp it trains DeepOBS's net_mlp, 784-1000-500-100-10 with ReLU (weights
truncated normal std 0.03, biases 0), with --problem fmnist_logreg softmax regression 784 -> 10
(Xavier uniform, biases 0), as `decoupled train examples/fmnist-mlp.toml` and
`examples/fmnist-logreg.toml` do, under Decoupled's names (0/2/4/6 and fc1: a parameterless
"flatten" comes first).

The weights are drawn from torch's generator, not Decoupled's, and the batches are shuffled
differently: the comparison is between two independent trainings of the same setup.

Usage: python3 scripts/reference/fmnist_2c2d.py DATA.h5 [--epochs 3] [--seed 0]
           [--problem fmnist_2c2d|fmnist_2c2d_bn|fmnist_mlp|fmnist_logreg] [--bn] [--lr 1e-3] [--weight-decay 1e-2] [--batch 128] [--threads 2]
Needs torch and h5py (never needed by CI).
"""
import argparse
import json
import os
from collections import OrderedDict

import h5py
import numpy as np
import torch
from torch import nn


PROBLEMS = ("fmnist_2c2d", "fmnist_2c2d_bn", "fmnist_mlp", "fmnist_logreg")


def make_model(bn: bool, problem: str = "fmnist_2c2d") -> nn.Sequential:
    """nn.Sequential in the order of the layer list, so state_dict names ("0.weight") match."""
    if problem == "fmnist_logreg":
        model = nn.Sequential(OrderedDict(flatten=nn.Flatten(), fc1=nn.Linear(784, 10)))
        nn.init.xavier_uniform_(model.fc1.weight)
        nn.init.zeros_(model.fc1.bias)
        return model
    if problem == "fmnist_mlp":
        sizes = [784, 1000, 500, 100, 10]
        layers = [("flatten", nn.Flatten())]
        for i in range(4):
            layers += [(str(2 * i), nn.Linear(sizes[i], sizes[i + 1]))] + ([(str(2 * i + 1), nn.ReLU())] if i < 3 else [])
        model = nn.Sequential(OrderedDict(layers))
        for m in model.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.03, a=-0.06, b=0.06)
                nn.init.zeros_(m.bias)
        return model
    bn = bn or problem == "fmnist_2c2d_bn"
    layers = [nn.Conv2d(1, 32, 5, padding="same")]
    layers += [nn.BatchNorm2d(32)] if bn else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 5, padding="same")]
    layers += [nn.BatchNorm2d(64)] if bn else []
    layers += [nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(7 * 7 * 64, 1024)]
    layers += [nn.BatchNorm1d(1024)] if bn else []
    layers += [nn.ReLU(), nn.Linear(1024, 10)]
    model = nn.Sequential(*layers)
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.trunc_normal_(m.weight, std=0.05, a=-0.1, b=0.1)
            nn.init.constant_(m.bias, 0.05)
    return model


def model_for(state) -> nn.Sequential:
    """The model whose state_dict has the names of `state`, a Decoupled checkpoint's parameters
    (and batch-norm buffers): fmnist_logreg (fc1), fmnist_mlp (dense 0/2/4/6) or fmnist_2c2d
    (conv 0/3), with batch norm when running statistics are present."""
    if "fc1.weight" in state:
        return make_model(False, "fmnist_logreg")
    if state["0.weight"].dim() == 2:
        return make_model(False, "fmnist_mlp")
    return make_model(any(k.endswith("running_mean") for k in state))


def seeded_start(seed: int, bn: bool, samples: int, epochs: int, problem: str = "fmnist_2c2d"):
    """Seed S's starting point as this script trains it: the initial model and one sample order
    per epoch, in the order they take numbers from torch's global generator (manual_seed, the
    layers' default init and then trunc_normal_ in make_model, one randperm per epoch). Training
    itself draws nothing from the generator, so drawing every epoch's order up front gives the
    same orders as drawing each at the start of its epoch. scripts/reference/torch_start.py
    writes this start in `decoupled initial-state`'s format."""
    torch.manual_seed(seed)
    model = make_model(bn, problem)
    return model, [torch.randperm(samples) for _ in range(epochs)]


def load(path: str, split: str):
    with h5py.File(path, "r") as f:
        scale = float(f.attrs.get("scale", 1.0))
        x = f[f"{split}/x"][...].astype(np.float32) * np.float32(scale)
        y = f[f"{split}/y"][...].astype(np.int64)
    return torch.from_numpy(x.reshape(len(y), 1, 28, 28)), torch.from_numpy(y)


def evaluate(model, x, y, batch=1000):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(y), batch):
            out = model(x[i:i + batch])
            loss += nn.functional.cross_entropy(out, y[i:i + batch], reduction="sum").item()
            correct += (out.argmax(1) == y[i:i + batch]).sum().item()
    model.train()
    return loss / len(y), correct / len(y)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=1e-2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--problem", choices=PROBLEMS, default="fmnist_2c2d")
    ap.add_argument("--bn", action="store_true", help="the same as --problem fmnist_2c2d_bn")
    ap.add_argument("--save", help="write the final state_dict here (torch.save)")
    ap.add_argument("--checkpoint", help="after every epoch save the model and optimizer here (torch.save, "
                    "atomically); when the file exists, continue from it (same seed and settings)")
    args = ap.parse_args()
    if args.bn:
        if args.problem not in ("fmnist_2c2d", "fmnist_2c2d_bn"):
            raise SystemExit(f"--bn adds batch norm to fmnist_2c2d; it cannot go with --problem {args.problem}")
        args.problem = "fmnist_2c2d_bn"
    args.bn = args.problem == "fmnist_2c2d_bn"
    torch.set_num_threads(args.threads)
    x, y = load(args.data, "train")
    tx, ty = load(args.data, "test")
    model, orders = seeded_start(args.seed, args.bn, len(y), args.epochs, args.problem)
    decay = [p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1]
    rest = [p for n, p in model.named_parameters() if not (n.endswith("weight") and p.dim() > 1)]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": rest, "weight_decay": 0.0}], lr=args.lr)
    first = 1
    if args.checkpoint and os.path.exists(args.checkpoint):
        try:
            saved = torch.load(args.checkpoint)
            problem = saved.get("problem", "fmnist_2c2d_bn" if saved["bn"] else "fmnist_2c2d")
        except Exception as error:
            raise SystemExit(f"{args.checkpoint}: not a checkpoint this script wrote ({error})")
        if (saved["seed"], problem, saved["samples"]) != (args.seed, args.problem, len(y)):
            raise SystemExit(f"{args.checkpoint}: saved for seed {saved['seed']}, {problem}, "
                             f"{saved['samples']} samples; this run has seed {args.seed}, {args.problem}, {len(y)} samples")
        model.load_state_dict(saved["model"])
        opt.load_state_dict(saved["optimizer"])
        first = saved["epoch"] + 1
    for epoch in range(first, args.epochs + 1):
        perm = orders[epoch - 1]
        total, count = 0.0, 0
        # Every sample once per epoch; the last batch may be smaller (as Decoupled's loader).
        for i in range(0, len(y), args.batch):
            idx = perm[i:i + args.batch]
            opt.zero_grad(set_to_none=True)
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * len(idx)
            count += len(idx)
        test_loss, test_acc = evaluate(model, tx, ty)
        print(json.dumps({"epoch": epoch, "train_loss": total / count, "test_loss": test_loss,
                          "test_acc": test_acc, "seed": args.seed, "problem": args.problem,
                          "torch": torch.__version__}), flush=True)
        if args.checkpoint:
            torch.save({"epoch": epoch, "seed": args.seed, "bn": args.bn, "problem": args.problem, "samples": len(y),
                        "model": model.state_dict(), "optimizer": opt.state_dict()}, args.checkpoint + ".tmp")
            os.replace(args.checkpoint + ".tmp", args.checkpoint)
    if args.save:
        torch.save(model.state_dict(), args.save)


if __name__ == "__main__":
    main()
