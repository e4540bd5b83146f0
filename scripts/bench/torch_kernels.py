#!/usr/bin/env python3
"""PyTorch side of `decoupled bench kernels --torch`: PyTorch's fused CPU optimizers on one
flat float32 parameter, timed the way `decoupled bench kernels` times its own kernels.

For each optimizer case (the names `decoupled bench kernels --optimizers` takes) it builds
torch.optim.SGD / Adam / AdamW with fused=True and the same hyperparameters as the Swift
side (lr 1e-3; SGD: weight_decay 1e-4, momentum 0 or 0.9, Nesterov; Adam: betas
(0.9, 0.999), eps 1e-8, weight_decay 1e-4; AdamW: weight_decay 1e-2; AMSGrad: Adam with
amsgrad=True and no decay), one step as warm-up, then `--repetitions` samples of at least
`--seconds / --repetitions` seconds each; a sample's time is its elapsed time over its
steps, the result the median sample. Prints one JSON object:
{"torch": version, "threads": n, "parameters": n, "seconds_per_step": {case: s, ...}}.

Usage: python torch_kernels.py --parameters N --threads T --cases adamw,sgd [--seconds 0.25] [--repetitions 5]
Needs torch (not needed by CI).
"""
import argparse
import json
import statistics
import sys
import time

import torch

LR = 1e-3


def optimizer(case, param):
    """The fused PyTorch optimizer matching KernelBenchmark.Case `case`."""
    if case in ("sgd", "momentum", "nesterov"):
        return torch.optim.SGD([param], lr=LR, momentum=0.0 if case == "sgd" else 0.9,
                               nesterov=case == "nesterov", weight_decay=1e-4, fused=True)
    if case == "adam":
        return torch.optim.Adam([param], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-4, fused=True)
    if case == "adamw":
        return torch.optim.AdamW([param], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, fused=True)
    if case == "amsgrad":
        return torch.optim.Adam([param], lr=LR, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                                amsgrad=True, fused=True)
    raise SystemExit(f"torch_kernels.py: unknown case {case!r}")


def seconds_per_step(step, seconds, repetitions):
    """Median over `repetitions` samples of the time per call, as KernelBenchmark.time does."""
    step()  # warm-up: page faults, state allocation, thread pool start
    samples = []
    for _ in range(repetitions):
        calls, start = 0, time.perf_counter()
        while True:
            step()
            calls += 1
            elapsed = time.perf_counter() - start
            if elapsed >= seconds / repetitions:
                break
        samples.append(elapsed / calls)
    return statistics.median(samples)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parameters", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--cases", required=True, help="comma-separated: sgd,momentum,nesterov,adam,adamw,amsgrad")
    ap.add_argument("--seconds", type=float, default=0.25)
    ap.add_argument("--repetitions", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(12345)
    results = {}
    for case in args.cases.split(","):
        param = torch.nn.Parameter(torch.rand(args.parameters, generator=generator) - 0.5)
        param.grad = (torch.rand(args.parameters, generator=generator) - 0.5) * 1e-2
        opt = optimizer(case, param)
        results[case] = seconds_per_step(opt.step, args.seconds, args.repetitions)
        del opt, param
    json.dump({"torch": torch.__version__, "threads": torch.get_num_threads(),
               "parameters": args.parameters, "seconds_per_step": results}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
