#!/usr/bin/env python3
"""DeepOBS's `quadratic_deep` in NumPy and PyTorch: the fixture `make test` compares against,
and the PyTorch reference run docs/problems.md reports.

DeepOBS (deepobs/pytorch/testproblems/quadratic_deep.py and datasets/quadratic.py) builds the
problem from NumPy's legacy RandomState: with RandomState(42) it draws 90 eigenvalues from
U(0, 1), then 10 from U(30, 60), then a Haar-random rotation R by Diaconis & Shahshahani's
subgroup algorithm (one uniform angle for SO(2), then for d = 2 … 99 a normal vector of d + 1
draws, a Householder reflection embedded below a 1, and finally R ← −R), and sets
Q = Rᵀ·diag(λ)·R; the training samples are RandomState(42).normal(0, 0.6, (1000, 100)) and the
test samples RandomState(43).normal(0, 0.6, (1000, 100)), both cast to float32. The loss of a
sample is ½·(θ − x)ᵀQ(θ − x), θ starts at 1.

  fixture OUT.json   what NoisyQuadraticTests compares against: the eigenvalues, rows, diagonal,
                     trace and Frobenius norm of Q, rows of both sample sets (numpy only)
  train [options]    trains θ with torch.optim.SGD or AdamW on the same data, batch 128 reshuffled
                     every epoch with a short last batch (as `decoupled train` does; DeepOBS drops
                     it), and prints one JSON line per epoch with the mean training loss of the
                     epoch and the test loss over all 1 000 test samples

Usage:
  python3 scripts/reference/deepobs_quadratic.py fixture Tests/DecoupledTrainingTests/Fixtures/quadratic/deepobs-quadratic.json
  python3 scripts/reference/deepobs_quadratic.py train --optimizer sgd --lr 0.01 --momentum 0.9 --epochs 100 --seed 0
"""
import argparse
import json

import numpy as np


def rotation(dim, rng):
    angle = 2 * np.pi * rng.uniform()
    r = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    for d in range(2, dim):
        v = rng.normal(size=(d + 1, 1))
        v = v / np.sqrt(v.T.dot(v))
        e = np.zeros((d + 1, 1))
        e[0, 0] = 1.0
        x = (e - v) / np.sqrt((e - v).T.dot(e - v))
        embedded = np.eye(d + 1)
        embedded[1:, 1:] = r
        r = embedded - 2 * np.outer(x, x.T.dot(embedded))
    return -r


def instance():
    """(eigenvalues, Q, train samples, test samples) exactly as DeepOBS draws them."""
    rng = np.random.RandomState(42)
    eigenvalues = np.concatenate((rng.uniform(0.0, 1.0, 90), rng.uniform(30.0, 60.0, 10)))
    r = rotation(100, rng)
    q = r.T.dot(np.diag(eigenvalues)).dot(r)
    train = np.float32(np.random.RandomState(42).normal(0.0, 0.6, (1000, 100)))
    test = np.float32(np.random.RandomState(43).normal(0.0, 0.6, (1000, 100)))
    return eigenvalues, q, train, test


def write_fixture(out):
    eigenvalues, q, train, test = instance()
    fixture = {
        "numpy": np.__version__,
        "eigenvalues": eigenvalues.tolist(),
        "hessian_rows": {str(i): q[i].tolist() for i in (0, 37, 99)},
        "hessian_diagonal": np.diag(q).tolist(),
        "hessian_trace": float(np.trace(q)),
        "hessian_frobenius": float(np.linalg.norm(q)),
        "train_rows": {str(i): train[i].astype(float).tolist() for i in (0, 1, 999)},
        "test_rows": {str(i): test[i].astype(float).tolist() for i in (0, 999)},
        "train_mean": float(train.astype(np.float64).mean()),
    }
    with open(out, "w") as f:
        json.dump(fixture, f, indent=1)
        f.write("\n")


def train(args):
    import torch

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    _, q, x_train, x_test = instance()
    hessian = torch.tensor(q, dtype=torch.float64)
    x_train, x_test = torch.tensor(x_train), torch.tensor(x_test)
    theta = torch.nn.Parameter(torch.ones(100))

    def loss(x):
        d = (theta - x).double()
        return 0.5 * ((d @ hessian) * d).sum(dim=1).mean()

    if args.optimizer == "sgd":
        opt = torch.optim.SGD([theta], lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.AdamW([theta], lr=args.lr, weight_decay=args.weight_decay)
    generator = torch.Generator().manual_seed(args.seed)
    for epoch in range(1, args.epochs + 1):
        order, total = torch.randperm(len(x_train), generator=generator), 0.0
        for start in range(0, len(x_train), args.batch):
            batch = x_train[order[start:start + args.batch]]
            opt.zero_grad()
            value = loss(batch)
            value.backward()
            opt.step()
            total += value.item() * len(batch)
        with torch.no_grad():
            test_loss = loss(x_test).item()
        if epoch == args.epochs or args.every_epoch:
            print(json.dumps({"epoch": epoch, "train_loss": total / len(x_train), "test_loss": test_loss}))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    fx = sub.add_parser("fixture")
    fx.add_argument("out")
    tr = sub.add_parser("train")
    tr.add_argument("--optimizer", choices=["sgd", "adamw"], default="sgd")
    tr.add_argument("--lr", type=float, default=0.01)
    tr.add_argument("--momentum", type=float, default=0.9)
    tr.add_argument("--weight-decay", type=float, default=0.0)
    tr.add_argument("--epochs", type=int, default=100)
    tr.add_argument("--batch", type=int, default=128)
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--every-epoch", action="store_true")
    args = ap.parse_args()
    if args.command == "fixture":
        write_fixture(args.out)
    else:
        train(args)


if __name__ == "__main__":
    main()
