#!/usr/bin/env python3
"""Reference fixtures for global gradient-norm clipping (`clip_grad_norm`).

PyTorch runs `torch.nn.utils.clip_grad_norm_(every parameter, max_norm)` between setting the
gradients and `optimizer.step()`, exactly as a training loop does; the fixtures have the
layout of make_fixtures.py (README.md beside this file) and go to the same directory, where
ConformanceTests replays them (the `torch-` prefix holds them to 1e-6 of the tensor's scale).

The gradients are those of make_fixtures.py scaled so that the global norm crosses max_norm:
some steps are clipped and some are not, which the script checks. Their spec is per tensor
(clipping couples all tensors), so spec_replay.py does not apply; the check here is that
clipping changed the trajectory at all (against the same run without it).

    /work/venv-ref/bin/python scripts/reference/make_clip_fixtures.py
"""
import argparse
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from make_fixtures import (DEFAULT_OUT, F32, SHAPES4, framework_string, is_bias,  # noqa: E402
                           make_data, sched, sgd_opt, adam_opt, to_toml, torch_groups, torch_scheduler)


def run(case, params, grads, clip=True):
    import torch
    torch.use_deterministic_algorithms(True)
    o, s, max_norm = case["optimizer"], case["schedule"], case["max_norm"]
    ps = {n: torch.nn.Parameter(torch.from_numpy(v.copy())) for n, v in params.items()}
    groups = torch_groups(ps, case.get("bias_wd"))
    if o["name"] == "sgd":
        opt = torch.optim.SGD(groups, lr=o["lr"], momentum=o["momentum"], dampening=o["dampening"],
                              nesterov=o["nesterov"], weight_decay=o["weight_decay"], foreach=False)
    else:
        cls = torch.optim.Adam if o["name"] == "adam" else torch.optim.AdamW
        opt = cls(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                  weight_decay=o["weight_decay"], amsgrad=o["amsgrad"], foreach=False)
    sch = torch_scheduler(opt, s, o["lr"])
    steps = next(iter(grads.values())).shape[0]
    traj = {n: [v.copy()] for n, v in params.items()}
    clipped = 0
    for k in range(steps):
        for n, p in ps.items():
            p.grad = torch.from_numpy(grads[n][k].copy())
        if clip:
            norm = torch.nn.utils.clip_grad_norm_(list(ps.values()), max_norm)
            clipped += int(norm.item() > max_norm)
        opt.step()
        if sch is not None:
            sch.step()
        for n, p in ps.items():
            traj[n].append(p.detach().numpy().copy())
    return {n: np.stack(t).astype(F32) for n, t in traj.items()}, clipped


CASES = [
    {"id": "torch-sgd-momentum-l2-clipnorm", "max_norm": 4.0,
     "description": "clip_grad_norm_(all parameters, 4.0) before PyTorch SGD with momentum and coupled "
                    "weight_decay (added to the clipped gradient inside step()), StepLR(20, 0.5).",
     "optimizer": sgd_opt(0.05, wd=1e-2, momentum=0.9), "schedule": sched("step", step_size=20, gamma=0.5)},
    {"id": "torch-adamw-clipnorm-nobiasdecay", "max_norm": 2.5, "bias_wd": 0.0,
     "description": "clip_grad_norm_(all parameters, 2.5) before PyTorch AdamW whose bias group has "
                    "weight_decay 0: the clipping norm still covers the biases.",
     "optimizer": adam_opt("adamw", 1e-2, 0.1), "schedule": sched("cosine", t0=55, min_multiplier=0.1)},
]


def spec_of(case) -> dict:
    spec = {"name": case["id"], "convention": "pytorch", "decay_bias": "bias_wd" not in case,
            "optimizer": case["optimizer"], "schedule": case["schedule"],
            "regularizers": [{"name": "clip_grad_norm", "max_norm": case["max_norm"]}]}
    if "bias_wd" in case:
        spec["groups"] = [{"name": "no_decay", "match": {"role": ["bias"]},
                           "optimizer": {"weight_decay": float(case["bias_wd"])}}]
    return spec


def main(argv=None):
    import h5py
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT)
    a = ap.parse_args(argv)
    bad = 0
    for case in CASES:
        params, grads = make_data(case["id"], SHAPES4, 55)
        traj, clipped = run(case, params, grads)
        plain, _ = run(case, params, grads, clip=False)
        changed = max(float(np.max(np.abs(traj[n] - plain[n]))) for n in traj)
        ok = 0 < clipped < 55 and changed > 1e-3
        bad += not ok
        path = os.path.join(a.out, case["id"] + ".h5")
        with h5py.File(path + ".tmp", "w", track_order=True) as f:
            f.attrs["spec"] = to_toml(spec_of(case))
            f.attrs["framework"] = framework_string("torch")
            f.attrs["case"] = case["id"]
            f.attrs["description"] = case["description"]
            for grp, data in (("params", params), ("grads", grads), ("trajectory", traj)):
                g = f.create_group(grp, track_order=True)
                for n, _ in SHAPES4:
                    g.create_dataset(n, data=np.ascontiguousarray(data[n], dtype=F32))
        os.replace(path + ".tmp", path)
        print(f"{'ok' if ok else 'WEAK':5s} {case['id']:40s} clipped {clipped}/55 steps, "
              f"max change against no clipping {changed:.3f}, {os.path.getsize(path)} bytes")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
