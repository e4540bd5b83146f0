#!/usr/bin/env python3
"""PyTorch side of `decoupled bench train`: the same model, batch size, optimizer and threads.

Trains an MLP (--hidden, default 784-256-128-10 ReLU) or a layer model (--layers: the JSON
`decoupled bench train` passes for `kind = "sequential"` configs and test problems, built as
the equivalent nn.Sequential) with AdamW(lr=1e-3, weight_decay=1e-2) on an HDF5 dataset file
(Decoupled's format) held in memory as float tensors — PyTorch's best case: no loader
process, no per-batch conversion — and prints one JSON object per thread count:
{"threads": n, "samples_per_s": ..., "median_samples_per_s": ...}.

Usage: python torch_train.py DATA.h5 --threads 1,2 [--batch 128] [--seconds 3] [--hidden 256,128 | --layers JSON]
Needs torch and h5py (not needed by CI).
"""
import argparse
import json
import os
import sys
import time

import h5py
import numpy as np
import torch
from torch import nn


def padding(spec, kernel):
    """Decoupled's padding ("same", "valid" or explicit rows/columns) as nn.Conv2d's argument."""
    if spec is None or "valid" in spec:
        return 0
    if "same" in spec:
        return "same"
    return (spec["explicit"]["rows"], spec["explicit"]["columns"])


def sequential(description, sample):
    """nn.Sequential with one module per layer of the list (lazy modules infer input sizes)."""
    modules, rank = [], len(description.get("inputShape") or [1])
    for layer in description["layers"]:
        kind = layer["type"]
        if kind == "dense":
            modules.append(nn.LazyLinear(layer["units"]))
        elif kind == "conv2d":
            modules.append(nn.LazyConv2d(layer["filters"], tuple(layer["kernel"]),
                                         stride=tuple(layer.get("stride") or [1, 1]),
                                         padding=padding(layer.get("padding"), layer["kernel"])))
        elif kind in ("max_pool", "avg_pool"):
            pool = nn.MaxPool2d if kind == "max_pool" else nn.AvgPool2d
            modules.append(pool(tuple(layer["kernel"]), stride=tuple(layer.get("stride") or layer["kernel"]),
                                padding=padding(layer.get("padding"), layer["kernel"])))
        elif kind == "flatten":
            modules.append(nn.Flatten())
            rank = 1
        elif kind == "dropout":
            modules.append(nn.Dropout(layer["rate"]))
        elif kind == "batch_norm":
            modules.append((nn.LazyBatchNorm1d if rank == 1 else nn.LazyBatchNorm2d)(
                momentum=layer.get("momentum", 0.1), eps=layer.get("eps", 1e-5)))
        else:
            modules.append({"relu": nn.ReLU, "tanh": nn.Tanh, "gelu": nn.GELU}[kind]())
    model = nn.Sequential(*modules)
    model(sample)  # materialises the lazy modules
    return model


class NoisyQuadratic(nn.Module):
    """θ (starting at 1) and the per-sample losses ½·(θ − x)ᵀQ(θ − x), in double as Decoupled computes them."""

    def __init__(self, hessian):
        super().__init__()
        self.theta = nn.Parameter(torch.ones(hessian.shape[0]))
        self.hessian = hessian

    def forward(self, x):
        d = (self.theta - x).double()
        return 0.5 * ((d @ self.hessian) * d).sum(dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--hidden", default="256,128")
    ap.add_argument("--layers", help="a layer model as JSON ({inputShape, layers}) instead of --hidden")
    args = ap.parse_args()
    description = json.loads(args.layers) if args.layers else None
    quadratic = args.data == "synthetic:quadratic_deep"
    if quadratic:
        # DeepOBS's noisy quadratic, built as scripts/reference/deepobs_quadratic.py builds it.
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "reference"))
        from deepobs_quadratic import instance
        _, hessian, x_train, _ = instance()
        hessian = torch.tensor(hessian)
        x = torch.from_numpy(x_train)
        y = torch.zeros(len(x), dtype=torch.int64)
        classes = 1
    else:
        with h5py.File(args.data, "r") as f:
            scale = float(f.attrs.get("scale", 1.0))
            x = torch.from_numpy(f["train/x"][...].reshape(len(f["train/y"]), -1).astype(np.float32) * scale)
            y = torch.from_numpy(f["train/y"][...].astype(np.int64))
            classes = int(f.attrs["num_classes"])
    if description and description.get("inputShape"):
        x = x.reshape([len(y)] + description["inputShape"])
    sizes = [x.shape[1]] + [int(h) for h in args.hidden.split(",") if h] + [classes]
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        if quadratic:
            model = NoisyQuadratic(hessian)
        elif description:
            model = sequential(description, x[:2])
        else:
            layers = []
            for i in range(len(sizes) - 1):
                layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
                if i < len(sizes) - 2:
                    layers.append(torch.nn.ReLU())
            model = torch.nn.Sequential(*layers)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        loss_fn = (lambda losses, _: losses.mean()) if quadratic else torch.nn.CrossEntropyLoss()
        perm = torch.randperm(len(y))
        cursor = 0

        def step():
            nonlocal cursor, perm
            if cursor + args.batch > len(y):
                perm, cursor = torch.randperm(len(y)), 0
            idx = perm[cursor:cursor + args.batch]
            cursor += args.batch
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()

        for _ in range(20):
            step()
        times = []
        start = time.perf_counter()
        now = start
        while len(times) < 20 or now - start < args.seconds:
            t0 = now
            step()
            now = time.perf_counter()
            times.append(now - t0)
        times.sort()
        print(json.dumps({"threads": threads, "samples_per_s": args.batch * len(times) / (now - start),
                          "median_samples_per_s": args.batch / times[len(times) // 2]}), flush=True)


if __name__ == "__main__":
    main()
