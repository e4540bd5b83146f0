#!/usr/bin/env python3
"""PyTorch side of `decoupled bench train`: the same MLP, batch size, optimizer and threads.

Trains 784-256-128-10 ReLU with AdamW(lr=1e-3, weight_decay=1e-2) on an HDF5 dataset file
(Decoupled's format) held in memory as float tensors — PyTorch's best case: no loader
process, no per-batch conversion — and prints one JSON object per thread count:
{"threads": n, "samples_per_s": ..., "median_samples_per_s": ...}.

Usage: python torch_train.py DATA.h5 --threads 1,2 [--batch 128] [--seconds 3]
Needs torch and h5py (not needed by CI).
"""
import argparse
import json
import time

import h5py
import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("--threads", default="1")
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=3.0)
    ap.add_argument("--hidden", default="256,128")
    args = ap.parse_args()
    with h5py.File(args.data, "r") as f:
        scale = float(f.attrs.get("scale", 1.0))
        x = torch.from_numpy(f["train/x"][...].reshape(len(f["train/y"]), -1).astype(np.float32) * scale)
        y = torch.from_numpy(f["train/y"][...].astype(np.int64))
        classes = int(f.attrs["num_classes"])
    sizes = [x.shape[1]] + [int(h) for h in args.hidden.split(",")] + [classes]
    for threads in [int(t) for t in args.threads.split(",")]:
        torch.set_num_threads(threads)
        torch.manual_seed(0)
        layers = []
        for i in range(len(sizes) - 1):
            layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
            if i < len(sizes) - 2:
                layers.append(torch.nn.ReLU())
        model = torch.nn.Sequential(*layers)
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
        loss_fn = torch.nn.CrossEntropyLoss()
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
