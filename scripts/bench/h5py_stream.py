#!/usr/bin/env python3
"""The h5py side of `decoupled bench data`: stream /train/x and /train/y of a dataset file in
minibatches the way a PyTorch/Keras user would with plain h5py, and print one JSON line per
measurement (the same fields as the Swift side).

Modes:
  sequential            x[i:i+B] slices in file order (default chunk cache)
  shuffled              a seeded random permutation per epoch; each batch reads its rows with
                        sorted fancy indexing, x[sorted(idx)] (h5py needs increasing indices)
  shuffled, 256 MiB     the same with the chunk cache raised to 256 MiB (rdcc_nbytes)

Each measurement runs for at least --seconds (and stops early after one epoch if that is
longer), so the slow gzip+shuffled case stays bounded.

Usage: /usr/bin/python3 scripts/bench/h5py_stream.py FILE.h5 [--batch-size 128] [--seconds 2]
       [--layout NAME] [--modes sequential,shuffled,shuffled-256MiB]
"""
import argparse
import json
import time

import h5py
import numpy as np


def stream(path, batch, seconds, shuffled, cache_bytes, seed=0):
    kwargs = {"rdcc_nbytes": cache_bytes, "rdcc_nslots": 100003} if cache_bytes else {}
    with h5py.File(path, "r", **kwargs) as f:
        x, y = f["train/x"], f["train/y"]
        n = x.shape[0]
        row_bytes = int(np.prod(x.shape[1:])) * x.dtype.itemsize
        rng = np.random.default_rng(seed)
        samples = 0
        checksum = 0.0
        start = time.perf_counter()
        deadline = start + seconds
        done = False
        while not done:
            order = rng.permutation(n) if shuffled else None
            for b in range(0, n, batch):
                if shuffled:
                    idx = np.sort(order[b:b + batch])
                    xb, yb = x[idx], y[idx]
                else:
                    xb, yb = x[b:b + batch], y[b:b + batch]
                # What a training loop needs: float features scaled to [0, 1].
                xf = xb.astype(np.float32) * (1.0 / 255.0)
                checksum += float(xf[0, 0]) + float(yb[0])
                samples += len(yb)
                if time.perf_counter() >= deadline:
                    done = True
                    break
            else:
                # A whole epoch finished; stop if enough time has passed.
                done = time.perf_counter() >= deadline
        elapsed = time.perf_counter() - start
    sps = samples / elapsed
    return sps, sps * row_bytes / 1e6


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--layout", default="")
    ap.add_argument("--modes", default="sequential,shuffled,shuffled-256MiB")
    a = ap.parse_args()
    for mode in a.modes.split(","):
        shuffled = mode.startswith("shuffled")
        cache = 256 << 20 if mode.endswith("256MiB") else None
        sps, mbps = stream(a.file, a.batch_size, a.seconds, shuffled, cache)
        print(json.dumps({"file": a.file, "layout": a.layout, "order": "shuffled" if shuffled else "sequential",
                          "samplesPerSecond": sps, "megabytesPerSecond": mbps,
                          "implementation": "h5py-256MiB" if cache else "h5py"}), flush=True)


if __name__ == "__main__":
    main()
