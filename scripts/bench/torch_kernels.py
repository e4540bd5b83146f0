#!/usr/bin/env python3
"""PyTorch side of `decoupled bench kernels --torch`: PyTorch's fused CPU optimizers on one
flat float32 parameter, kept alive and timed one measurement at a time between ours.

For each optimizer case (the names `decoupled bench kernels --optimizers` takes) it builds
torch.optim.SGD / Adam / AdamW with fused=True and the same hyperparameters as the Swift
side (lr 1e-3; SGD: weight_decay 1e-4, momentum 0 or 0.9, Nesterov; Adam: betas
(0.9, 0.999), eps 1e-8, weight_decay 1e-4; AdamW: weight_decay 1e-2; AMSGrad: Adam with
amsgrad=True and no decay). All cases share one parameter and its gradient (as the Swift
side's cases share its arrays); each optimizer has its own state. Every optimizer takes one
step as warm-up (state allocation, page faults, the thread pool), then the script prints

    {"ready": true, "torch": version, "threads": n, "parameters": n}

and answers requests on standard input, one per line, until end of input:

    time CASE SECONDS  ->  {"case": CASE, "seconds_per_step": s, "steps": k}

where the case's step ran k times back to back for at least SECONDS and s is the elapsed
time over k (as KernelBenchmark.secondsPerCall measures ours). An unknown case or a
malformed request is answered with {"error": "..."}.

Usage: python torch_kernels.py --parameters N --threads T --cases adamw,sgd
Needs torch (not needed by CI).
"""
import argparse
import json
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


def seconds_per_step(step, seconds):
    """Steps back to back for at least `seconds`: (elapsed / steps, steps)."""
    calls, start = 0, time.perf_counter()
    while True:
        step()
        calls += 1
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            return elapsed / calls, calls


def answer(line, optimizers):
    """The reply to one request line."""
    parts = line.split()
    if len(parts) != 3 or parts[0] != "time":
        return {"error": f"expected 'time CASE SECONDS', got {line.strip()!r}"}
    case, seconds = parts[1], parts[2]
    if case not in optimizers:
        return {"error": f"case {case!r} was not set up (--cases {','.join(optimizers)})"}
    try:
        seconds = float(seconds)
    except ValueError:
        return {"error": f"SECONDS must be a number, got {parts[2]!r}"}
    per_step, steps = seconds_per_step(optimizers[case].step, seconds)
    return {"case": case, "seconds_per_step": per_step, "steps": steps}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--parameters", type=int, required=True)
    ap.add_argument("--threads", type=int, required=True)
    ap.add_argument("--cases", required=True, help="comma-separated: sgd,momentum,nesterov,adam,adamw,amsgrad")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(12345)
    param = torch.nn.Parameter(torch.rand(args.parameters, generator=generator) - 0.5)
    param.grad = (torch.rand(args.parameters, generator=generator) - 0.5) * 1e-2
    optimizers = {case: optimizer(case, param) for case in args.cases.split(",")}
    for opt in optimizers.values():
        opt.step()
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads(),
                      "parameters": args.parameters}), flush=True)
    for line in sys.stdin:
        print(json.dumps(answer(line, optimizers)), flush=True)


if __name__ == "__main__":
    main()
