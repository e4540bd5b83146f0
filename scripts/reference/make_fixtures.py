#!/usr/bin/env python3
"""Generate the framework reference fixtures for Decoupled's conformance tests.

Each fixture is a small HDF5 file (layout below) made by a real framework
(PyTorch, Keras 3 on the JAX backend, optax) or, where no framework on PyPI
implements the algorithm, by a float32 NumPy transcription with a citation
(Caffe's SGDSolver, Loshchilov & Hutter 2019 Algorithms 1 and 2).

    /params/<name>      float32 initial parameters
    /grads/<name>       float32 [steps, ...]   raw data-loss gradient per step
                        (never includes a regularizer's gradient)
    /trajectory/<name>  float32 [steps+1, ...] params before step 0 and after each step
    attrs: spec (TOML in our config language), framework, case, description

CI does not need this script or the frameworks: it only reads the files.  See
README.md beside this file.  Usage:

    /work/venv-ref/bin/python scripts/reference/make_fixtures.py            # all curated cases
    ... make_fixtures.py --only 'keras-*'                                   # a subset
    ... make_fixtures.py --random 20 --seed 7 --out /tmp/fresh              # fresh random torch cases
    scripts/reference/check_random.sh -n 20                                 # ...and replay them (ConformanceTests)
    ... make_fixtures.py --list                                             # list the matrix

Every written file is replayed by spec_replay.py (our semantics, NumPy float64)
and the run fails if the framework's trajectory and the spec disagree.
"""
from __future__ import annotations

import argparse
import fnmatch
import json
import math
import os
import sys
import zlib
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import spec_replay  # noqa: E402

REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
DEFAULT_OUT = os.path.join(REPO, "Tests", "DecoupledTrainingTests", "Fixtures", "reference")
F32 = np.float32

SHAPES3 = [("fc1.weight", (5, 4)), ("fc1.bias", (5,)), ("fc2.weight", (3, 5))]
SHAPES4 = SHAPES3 + [("fc2.bias", (3,))]


# =========================================================================== helpers
def is_bias(name: str) -> bool:
    return name.split(".")[-1] == "bias"


def make_data(case_id: str, shapes, steps: int, seed: int | None = None):
    """Random float32 initial params and raw gradient streams with varied scales."""
    rng = np.random.default_rng(zlib.crc32(case_id.encode()) if seed is None else seed)
    # per-step scale, log-uniform in [1/4, 4]; per-tensor scales differ too
    step_scale = np.exp(rng.uniform(math.log(0.25), math.log(4.0), size=steps))
    tensor_scales = [1.0, 0.3, 2.0, 0.05, 0.7]
    params, grads = {}, {}
    for i, (n, sh) in enumerate(shapes):
        params[n] = (rng.standard_normal(sh) * (0.1 if is_bias(n) else 0.5)).astype(F32)
        g = rng.standard_normal((steps,) + tuple(sh)) * tensor_scales[i % len(tensor_scales)]
        grads[n] = (g * step_scale.reshape((steps,) + (1,) * len(sh))).astype(F32)
    return params, grads


def toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        r = repr(v)
        if "inf" in r or "nan" in r:
            raise ValueError(v)
        return r if ("." in r or "e" in r) else r + ".0"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(type(v))


def to_toml(spec: dict) -> str:
    """Small emitter for our spec shape: scalars, [optimizer], [[regularizers]], [schedule], [[groups]]."""
    lines = []
    for k, v in spec.items():
        if not isinstance(v, (dict, list)) or (isinstance(v, list) and not v):
            lines.append(f"{k} = {toml_value(v)}")
    for k, v in spec.items():
        if isinstance(v, dict):
            lines += ["", f"[{k}]"] + [f"{kk} = {toml_value(vv)}" for kk, vv in v.items()]
        elif isinstance(v, list) and v:
            for item in v:
                lines += ["", f"[[{k}]]"] + [f"{kk} = {toml_value(vv)}" for kk, vv in item.items()]
    return "\n".join(lines) + "\n"


def sched(name="constant", **kw) -> dict:
    d = {"name": name, "unit": "step"}
    d.update(kw)
    return d


@dataclass
class Case:
    id: str
    kind: str  # torch | keras | optax | caffe | paper
    description: str
    spec: dict
    run: Callable  # (params, grads) -> {name: [steps+1, ...] float32}
    shapes: list = field(default_factory=lambda: SHAPES3)
    steps: int = 55
    random: bool = False
    seed: int | None = None


def framework_string(kind: str) -> str:
    if kind == "torch":
        import torch
        return f"torch {torch.__version__}"
    if kind == "keras":
        import jax
        import keras
        return f"keras {keras.__version__} (backend jax {jax.__version__})"
    if kind == "optax":
        import jax
        import optax
        return f"optax {optax.__version__} (jax {jax.__version__})"
    if kind == "caffe":
        return (f"numpy {np.__version__} float32 transcription of Caffe SGDSolver "
                "(BVLC/caffe src/caffe/solvers/sgd_solver.cpp @ e86b9cb)")
    if kind == "paper":
        return (f"numpy {np.__version__} float32 transcription of Loshchilov & Hutter 2019, "
                "Decoupled Weight Decay Regularization, Algorithms 1-2")
    raise ValueError(kind)


# =========================================================================== PyTorch
def torch_scheduler(opt, s: dict, lr: float):
    import torch.optim.lr_scheduler as L
    name, w = s["name"], int(s.get("warmup", 0))
    m = float(s.get("min_multiplier", 0.0))
    main = None
    if name == "step":
        main = L.StepLR(opt, step_size=s["step_size"], gamma=s["gamma"])
    elif name == "multistep":
        main = L.MultiStepLR(opt, milestones=list(s["milestones"]), gamma=s["gamma"])
    elif name == "exponential":
        main = L.ExponentialLR(opt, gamma=s["gamma"])
    elif name == "cosine":
        main = L.CosineAnnealingLR(opt, T_max=s["t0"], eta_min=lr * m)
    elif name == "cosine_restarts":
        main = L.CosineAnnealingWarmRestarts(opt, T_0=s["t0"], T_mult=s.get("t_mult", 1), eta_min=lr * m)
    elif name != "constant":
        raise ValueError(name)
    if w:
        warm = L.LinearLR(opt, start_factor=s["warmup_start"], end_factor=1.0, total_iters=w)
        if main is None:
            return warm
        return L.SequentialLR(opt, [warm, main], milestones=[w])
    return main


def run_torch(make_opt, s: dict, lr: float, decoupled_by_hand: bool = False):
    """decoupled_by_hand: weight_decay is applied as torch's AdamW/NAdamW/RAdamW apply it,
    p.mul_(1 - lr_t * weight_decay) before opt.step(), for an optimizer made without it."""
    def run(params, grads):
        import torch
        torch.use_deterministic_algorithms(True)
        ps = {n: torch.nn.Parameter(torch.from_numpy(v.copy())) for n, v in params.items()}
        opt = make_opt(ps)
        sch = torch_scheduler(opt, s, lr)
        steps = next(iter(grads.values())).shape[0]
        traj = {n: [v.copy()] for n, v in params.items()}
        for k in range(steps):
            for n, p in ps.items():
                p.grad = torch.from_numpy(grads[n][k].copy())
            if decoupled_by_hand:
                with torch.no_grad():
                    for group in opt.param_groups:
                        for p in group["params"]:
                            p.mul_(1 - group["lr"] * group["decoupled_decay"])
            opt.step()
            if sch is not None:
                sch.step()  # after optimizer.step(): update k uses eta(k)
            for n, p in ps.items():
                traj[n].append(p.detach().numpy().copy())
        return {n: np.stack(t).astype(F32) for n, t in traj.items()}
    return run


def torch_groups(ps, bias_wd=None):
    """All params in one group, or weights/biases split with the bias weight_decay overridden."""
    if bias_wd is None:
        return [{"params": list(ps.values())}]
    return [{"params": [p for n, p in ps.items() if not is_bias(n)]},
            {"params": [p for n, p in ps.items() if is_bias(n)], "weight_decay": bias_wd}]


def torch_case(cid, desc, opt_spec: dict, s: dict, shapes=SHAPES3, steps=55, bias_wd=None,
               random=False, seed=None):
    import_name = opt_spec["name"]
    o = dict(opt_spec)

    def make_opt(ps):
        import torch
        groups = torch_groups(ps, bias_wd)
        if import_name == "sgd":
            return torch.optim.SGD(groups, lr=o["lr"], momentum=o.get("momentum", 0.0),
                                   dampening=o.get("dampening", 0.0), nesterov=o.get("nesterov", False),
                                   weight_decay=o.get("weight_decay", 0.0), foreach=False)
        if import_name in TORCH_FAMILY:
            return torch_family_optimizer(groups, o)
        cls = torch.optim.Adam if import_name == "adam" else torch.optim.AdamW
        return cls(groups, lr=o["lr"], betas=(o["beta1"], o["beta2"]), eps=o["eps"],
                   weight_decay=o["weight_decay"], amsgrad=o.get("amsgrad", False), foreach=False)

    spec = {"name": cid, "convention": "pytorch", "decay_bias": bias_wd is None,
            "optimizer": o, "schedule": s}
    if bias_wd is not None:
        spec["groups"] = [{"name": "no_decay", "match": {"role": ["bias"]},
                           "optimizer": {"weight_decay": float(bias_wd)}}]
    by_hand = import_name in TORCH_FAMILY and o.get("decoupled_weight_decay", False) \
        and "decoupled_weight_decay" not in TORCH_FAMILY[import_name][1]
    return Case(cid, "torch", desc, spec, run_torch(make_opt, s, o["lr"], by_hand), shapes, steps,
                random=random, seed=seed)


# The torch.optim family beyond SGD/Adam: class name and the keyword arguments it takes
# (ours are named as PyTorch names them, except betas = (beta1, beta2)).
TORCH_FAMILY = {
    "adagrad": ("Adagrad", ("lr_decay", "initial_accumulator_value", "eps")),
    "rmsprop": ("RMSprop", ("alpha", "eps", "momentum", "centered")),
    "adadelta": ("Adadelta", ("rho", "eps")),
    "adamax": ("Adamax", ("betas", "eps")),
    "nadam": ("NAdam", ("betas", "eps", "momentum_decay", "decoupled_weight_decay")),
    "radam": ("RAdam", ("betas", "eps", "decoupled_weight_decay")),
    "adafactor": ("Adafactor", ("beta2_decay", "eps", "d")),  # eps = (eps1, eps2); weight_decay decoupled
}


def torch_family_optimizer(groups, o):
    """torch.optim.<class> for a spec's optimizer table. Without a decoupled_weight_decay
    keyword, a decoupled weight_decay goes to the groups' `decoupled_decay` for run_torch."""
    import torch
    cls, keys = TORCH_FAMILY[o["name"]]
    kw = {k: o[k] for k in keys if k in o}
    if o["name"] == "adafactor":
        kw["eps"] = (o.get("eps1"), o.get("eps2", 1e-3))
    if "betas" in keys:
        kw["betas"] = (o.get("beta1", 0.9), o.get("beta2", 0.999))
    wd = o.get("weight_decay", 0.0)
    by_hand = o.get("decoupled_weight_decay", False) and "decoupled_weight_decay" not in keys
    opt = getattr(torch.optim, cls)(groups, lr=o["lr"], weight_decay=wd, foreach=False, **kw)
    for g in opt.param_groups:  # a group's own weight_decay (torch_groups' bias_wd) included
        g["decoupled_decay"] = g["weight_decay"] if by_hand else 0.0
        if by_hand:
            g["weight_decay"] = 0.0
    return opt


def family_cases():
    """Every optimizer of TORCH_FAMILY with coupled and decoupled weight_decay, every flag
    that changes the math at least once; 30 steps keep the files small."""
    def case(cid, desc, o, s=None, shapes=SHAPES3, bias_wd=None):
        return torch_case(cid, desc, o, s or sched(), shapes=shapes, steps=30, bias_wd=bias_wd)
    dec = {"decoupled_weight_decay": True}
    C = [
        case("torch-adagrad-l2-const", "PyTorch Adagrad weight_decay (coupled: g += wd*w), defaults otherwise.",
             {"name": "adagrad", "lr": 0.05, "weight_decay": 0.02}),
        case("torch-adagrad-decoupled-lrdecay-init-cosine", "PyTorch Adagrad with lr_decay, initial_accumulator_value and eps=1e-3; decoupled decay applied by hand as AdamW does (p.mul_(1 - lr_t*wd) before step), CosineAnnealingLR.",
             {"name": "adagrad", "lr": 0.05, "lr_decay": 0.05, "initial_accumulator_value": 0.3, "eps": 1e-3,
              "weight_decay": 0.1, **dec}, sched("cosine", t0=30, min_multiplier=0.1)),
        case("torch-rmsprop-l2-const", "PyTorch RMSprop weight_decay (coupled), alpha=0.9.",
             {"name": "rmsprop", "lr": 0.01, "alpha": 0.9, "weight_decay": 0.05}),
        case("torch-rmsprop-centered-l2-step", "PyTorch RMSprop centered (denominator sqrt(v - mean(g)^2)), eps=1e-4, coupled weight_decay, StepLR(10, 0.5).",
             {"name": "rmsprop", "lr": 0.005, "alpha": 0.95, "eps": 1e-4, "centered": True, "weight_decay": 0.02},
             sched("step", step_size=10, gamma=0.5)),
        case("torch-rmsprop-momentum-decoupled", "PyTorch RMSprop momentum 0.8 (buf = mu*buf + g/avg), decoupled decay by hand, bias group without decay.",
             {"name": "rmsprop", "lr": 0.003, "momentum": 0.8, "weight_decay": 0.1, **dec},
             shapes=SHAPES4, bias_wd=0.0),
        case("torch-rmsprop-centered-momentum-decoupled-cosine", "PyTorch RMSprop centered with momentum 0.5, decoupled decay by hand, CosineAnnealingLR.",
             {"name": "rmsprop", "lr": 0.004, "alpha": 0.98, "centered": True, "momentum": 0.5, "weight_decay": 0.2, **dec},
             sched("cosine", t0=30, min_multiplier=0.2)),
        case("torch-adadelta-l2-const", "PyTorch Adadelta (lr 1.0, rho 0.9, eps 1e-6) with coupled weight_decay.",
             {"name": "adadelta", "lr": 1.0, "weight_decay": 0.2}),
        case("torch-adadelta-decoupled-exponential", "PyTorch Adadelta rho 0.8, eps 1e-3, lr 0.5, decoupled decay by hand, ExponentialLR(0.95).",
             {"name": "adadelta", "lr": 0.5, "rho": 0.8, "eps": 1e-3, "weight_decay": 0.05, **dec},
             sched("exponential", gamma=0.95)),
        case("torch-adamax-l2-const", "PyTorch Adamax with coupled weight_decay.",
             {"name": "adamax", "lr": 0.01, "weight_decay": 0.05}),
        case("torch-adamax-decoupled-cosine", "PyTorch Adamax betas (0.8, 0.99), eps 1e-3, decoupled decay by hand, CosineAnnealingLR.",
             {"name": "adamax", "lr": 0.02, "beta1": 0.8, "beta2": 0.99, "eps": 1e-3, "weight_decay": 0.1, **dec},
             sched("cosine", t0=30, min_multiplier=0.1)),
        case("torch-nadam-l2-const", "PyTorch NAdam (momentum_decay 4e-3) with coupled weight_decay.",
             {"name": "nadam", "lr": 0.01, "weight_decay": 0.05}),
        case("torch-nadamw-momentumdecay-step", "PyTorch NAdam(decoupled_weight_decay=True) with momentum_decay 0.05, betas (0.85, 0.99), eps 1e-4, StepLR(10, 0.5).",
             {"name": "nadam", "lr": 0.01, "beta1": 0.85, "beta2": 0.99, "eps": 1e-4, "momentum_decay": 0.05,
              "weight_decay": 0.1, **dec}, sched("step", step_size=10, gamma=0.5)),
        case("torch-radam-l2-const", "PyTorch RAdam with coupled weight_decay, beta2 0.99 so the rectified branch starts at step 6.",
             {"name": "radam", "lr": 0.01, "beta2": 0.99, "weight_decay": 0.05}),
        case("torch-radamw-cosine-nobiasdecay", "PyTorch RAdam(decoupled_weight_decay=True), betas (0.9, 0.95), eps 1e-6, bias group without decay, CosineAnnealingLR.",
             {"name": "radam", "lr": 0.02, "beta2": 0.95, "eps": 1e-6, "weight_decay": 0.1, **dec},
             sched("cosine", t0=30, min_multiplier=0.05), shapes=SHAPES4, bias_wd=0.0),
        case("torch-adafactor-decay-const", "PyTorch Adafactor (factored second moment for the 2-D weights, full for the bias), its weight_decay (decoupled: p.mul_(1 - lr*wd)), lr 0.05 so rho_t = min(lr, 1/sqrt(t)) switches at t = 400: lr throughout.",
             {"name": "adafactor", "lr": 0.05, "weight_decay": 0.1}),
        case("torch-adafactor-3d-eps-d-cosine", "PyTorch Adafactor on a 3-D tensor (factored over the last two dimensions per leading index), eps = (1e-6, 1e-2), d = 1.5 (update clipping), beta2_decay -0.5, lr 2 so rho_t = 1/sqrt(t) from t = 1, CosineAnnealingLR, bias undecayed.",
             {"name": "adafactor", "lr": 2.0, "beta2_decay": -0.5, "eps1": 1e-6, "eps2": 1e-2, "d": 1.5, "weight_decay": 0.05},
             sched("cosine", t0=30, min_multiplier=0.1), shapes=[("conv.weight", (2, 3, 4)), ("fc.weight", (3, 5)), ("fc.bias", (3,))],
             bias_wd=0.0),
    ]
    return C


def adam_opt(name, lr, wd, b1=0.9, b2=0.999, eps=1e-8, amsgrad=False):
    return {"name": name, "lr": lr, "beta1": b1, "beta2": b2, "eps": eps,
            "amsgrad": amsgrad, "weight_decay": wd}


def sgd_opt(lr, wd=0.0, momentum=0.0, dampening=0.0, nesterov=False, name="sgd"):
    return {"name": name, "lr": lr, "momentum": momentum, "dampening": dampening,
            "nesterov": nesterov, "weight_decay": wd}


def torch_cases():
    C = []
    C.append(torch_case(
        "torch-sgd-l2-const", "PyTorch SGD weight_decay (coupled L2, g += wd*w) without momentum, constant lr; bias decayed.",
        sgd_opt(0.05, wd=0.02), sched()))
    C.append(torch_case(
        "torch-sgd-momentum-dampening-l2-step", "PyTorch SGD with momentum 0.9, dampening 0.1 and weight_decay (buf_1 = g undampened), StepLR(15, 0.5).",
        sgd_opt(0.03, wd=0.01, momentum=0.9, dampening=0.1), sched("step", step_size=15, gamma=0.5)))
    C.append(torch_case(
        "torch-sgd-nesterov-l2-cosine", "PyTorch SGD Nesterov momentum with coupled weight_decay, CosineAnnealingLR(T_max=55, eta_min=0.05*lr).",
        sgd_opt(0.02, wd=0.005, momentum=0.9, nesterov=True), sched("cosine", t0=55, min_multiplier=0.05)))
    C.append(torch_case(
        "torch-sgd-momentum-l2-multistep-nobiasdecay", "PyTorch SGD momentum, weight_decay only on weights (bias param group weight_decay=0), MultiStepLR([20,40], 0.1).",
        sgd_opt(0.05, wd=0.01, momentum=0.8), sched("multistep", milestones=[20, 40], gamma=0.1),
        shapes=SHAPES4, bias_wd=0.0))
    C.append(torch_case(
        "torch-sgd-momentum-exponential", "PyTorch SGD momentum with coupled weight_decay, ExponentialLR(gamma=0.97).",
        sgd_opt(0.04, wd=0.03, momentum=0.5), sched("exponential", gamma=0.97), shapes=SHAPES4))
    C.append(torch_case(
        "torch-sgd-nesterov-warmup-multistep", "PyTorch SGD Nesterov, weight_decay, SequentialLR(LinearLR(0.2 -> 1 over 6 steps), MultiStepLR([15, 35], 0.3)) with the multistep counted from the end of warm-up.",
        sgd_opt(0.05, wd=0.01, momentum=0.9, nesterov=True),
        sched("multistep", milestones=[15, 35], gamma=0.3, warmup=6, warmup_start=0.2), steps=57))
    C.append(torch_case(
        "torch-adam-l2-const", "PyTorch Adam weight_decay (coupled L2 seen by the moments), constant lr.",
        adam_opt("adam", 0.01, 0.05), sched()))
    C.append(torch_case(
        "torch-adam-amsgrad-l2-restarts", "PyTorch Adam amsgrad with coupled weight_decay, CosineAnnealingWarmRestarts(T_0=10, T_mult=2, eta_min=0.01*lr).",
        adam_opt("adam", 0.02, 0.01, b1=0.85, b2=0.99, eps=1e-3, amsgrad=True),
        sched("cosine_restarts", t0=10, t_mult=2, min_multiplier=0.01), shapes=SHAPES4, steps=60))
    C.append(torch_case(
        "torch-adamw-const", "PyTorch AdamW decoupled weight_decay w *= (1 - lr*wd) before the Adam step, constant lr; bias decayed.",
        adam_opt("adamw", 0.01, 0.1), sched()))
    C.append(torch_case(
        "torch-adamw-cosine", "PyTorch AdamW with CosineAnnealingLR(T_max=55, eta_min=0.1*lr): decay scales with the scheduled lr.",
        adam_opt("adamw", 0.005, 0.2, b2=0.98), sched("cosine", t0=55, min_multiplier=0.1)))
    C.append(torch_case(
        "torch-adamw-amsgrad-warmup-cosine", "PyTorch AdamW amsgrad, SequentialLR(LinearLR(0.1 -> 1 over 5 steps), CosineAnnealingLR(T_max=50)).",
        adam_opt("adamw", 0.01, 0.05, amsgrad=True), sched("cosine", t0=50, warmup=5, warmup_start=0.1),
        shapes=SHAPES4))
    C.append(torch_case(
        "torch-adamw-restarts-nobiasdecay", "PyTorch AdamW with bias param group weight_decay=0, CosineAnnealingWarmRestarts(T_0=15, T_mult=1).",
        adam_opt("adamw", 0.01, 0.1, eps=1e-7), sched("cosine_restarts", t0=15, t_mult=1, min_multiplier=0.0),
        shapes=SHAPES4, steps=60, bias_wd=0.0))
    C.append(torch_case(
        "torch-adamw-step", "PyTorch AdamW, StepLR(step_size=20, gamma=0.1).",
        adam_opt("adamw", 0.02, 0.01, b1=0.8, b2=0.95), sched("step", step_size=20, gamma=0.1)))
    return C


def random_torch_cases(n: int, seed: int):
    """Random PyTorch cases: optimizer, lr, decay, betas, momentum, nesterov, amsgrad, schedule."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        cid = f"random-torch-s{seed}-{i:03d}"
        kind = rng.choice(["sgd", "adam", "adamw"])
        if kind == "sgd":
            mom = float(rng.choice([0.0, rng.uniform(0.1, 0.99)]))
            nest = bool(mom > 0 and rng.random() < 0.5)
            damp = 0.0 if nest or mom == 0 else float(rng.choice([0.0, rng.uniform(0.0, 0.5)]))
            o = sgd_opt(float(10 ** rng.uniform(-3, -1)), wd=float(10 ** rng.uniform(-3.5, -1)),
                        momentum=mom, dampening=damp, nesterov=nest)
        else:
            o = adam_opt(kind, float(10 ** rng.uniform(-3.5, -1.5)), float(10 ** rng.uniform(-3, -0.5)),
                         b1=float(rng.uniform(0.5, 0.95)), b2=float(rng.uniform(0.9, 0.9999)),
                         eps=float(10 ** rng.uniform(-8, -5)), amsgrad=bool(rng.random() < 0.5))
        steps = int(rng.integers(50, 61))
        sname = rng.choice(["constant", "step", "multistep", "exponential", "cosine", "cosine_restarts"])
        if sname == "constant":
            s = sched()
        elif sname == "step":
            s = sched("step", step_size=int(rng.integers(5, 25)), gamma=float(rng.uniform(0.1, 0.9)))
        elif sname == "multistep":
            ms = sorted(set(int(x) for x in rng.integers(5, steps - 5, size=2)))
            s = sched("multistep", milestones=ms, gamma=float(rng.uniform(0.1, 0.9)))
        elif sname == "exponential":
            s = sched("exponential", gamma=float(rng.uniform(0.9, 0.999)))
        elif sname == "cosine":
            s = sched("cosine", t0=steps, min_multiplier=float(rng.choice([0.0, rng.uniform(0, 0.2)])))
        else:
            s = sched("cosine_restarts", t0=int(rng.integers(5, 20)), t_mult=int(rng.integers(1, 3)),
                      min_multiplier=float(rng.choice([0.0, rng.uniform(0, 0.2)])))
        if rng.random() < 0.3:
            s["warmup"] = int(rng.integers(2, 10))
            s["warmup_start"] = float(rng.uniform(0.05, 0.9))
            if sname == "cosine":
                s["t0"] = steps - s["warmup"]
        shapes = SHAPES4 if rng.random() < 0.5 else SHAPES3
        bias_wd = 0.0 if rng.random() < 0.3 else None
        desc = (f"Random PyTorch {kind} case (seed {seed}, #{i}): {json.dumps(o)}; schedule "
                f"{json.dumps(s)}; bias {'not ' if bias_wd is not None else ''}decayed.")
        out.append(torch_case(cid, desc, o, s, shapes=shapes, steps=steps, bias_wd=bias_wd,
                              random=True, seed=int(rng.integers(0, 2**31))))
    return out


# =========================================================================== Keras 3
def keras_schedule(s: dict, lr: float):
    import keras
    S = keras.optimizers.schedules
    name, w = s["name"], int(s.get("warmup", 0))
    m = float(s.get("min_multiplier", 0.0))
    if w and name != "cosine":
        raise ValueError("keras warm-up is only natural with CosineDecay")
    if name == "constant":
        return lr
    if name == "step":
        return S.ExponentialDecay(lr, decay_steps=s["step_size"], decay_rate=s["gamma"], staircase=True)
    if name == "exponential":
        return S.ExponentialDecay(lr, decay_steps=1, decay_rate=s["gamma"])
    if name == "multistep":
        # PiecewiseConstantDecay uses values[i] while step <= boundaries[i]: a milestone M
        # (first step with the new lr is M) is the boundary M - 1.
        return S.PiecewiseConstantDecay([int(x) - 1 for x in s["milestones"]],
                                        [lr * s["gamma"] ** i for i in range(len(s["milestones"]) + 1)])
    if name == "cosine":
        if w:
            return S.CosineDecay(lr * s["warmup_start"], decay_steps=s["t0"], alpha=m,
                                 warmup_target=lr, warmup_steps=w)
        return S.CosineDecay(lr, decay_steps=s["t0"], alpha=m)
    if name == "cosine_restarts":
        return S.CosineDecayRestarts(lr, first_decay_steps=s["t0"], t_mul=float(s.get("t_mult", 1)),
                                     m_mul=1.0, alpha=m)
    raise ValueError(name)


def run_keras(make_opt, regs: dict):
    """regs: {tensor name: keras regularizer object or None} (kernel_/bias_regularizer)."""
    def run(params, grads):
        import jax
        import jax.numpy as jnp
        import keras
        names = list(params)
        vs = [keras.Variable(params[n].copy(), name=n, dtype="float32") for n in names]
        opt = make_opt()
        steps = grads[names[0]].shape[0]
        traj = {n: [params[n].copy()] for n in names}

        def total_loss(vals, gdata):
            # data term whose gradient is exactly the given raw gradient, plus the
            # Keras regularizer objects' own penalties (what model.losses would add)
            loss = sum(jnp.sum(jax.lax.stop_gradient(g) * v) for g, v in zip(gdata, vals))
            for n, v in zip(names, vals):
                if regs.get(n) is not None:
                    loss = loss + regs[n](v)
            return loss

        grad_fn = jax.grad(total_loss)
        for k in range(steps):
            gdata = [jnp.asarray(grads[n][k]) for n in names]
            if any(r is not None for r in regs.values()):
                gs = grad_fn([v.value for v in vs], gdata)
            else:
                gs = gdata
            opt.apply(gs, vs)
            for n, v in zip(names, vs):
                traj[n].append(np.asarray(v.value).copy())
        return {n: np.stack(t).astype(F32) for n, t in traj.items()}
    return run


def keras_case(cid, desc, opt_spec: dict, s: dict, reg=None, reg_bias=False, exclude_bias=False,
               shapes=SHAPES3, steps=55):
    """reg: (spec dict for [[regularizers]], factory returning a keras regularizer)."""
    o = dict(opt_spec)
    name = o["name"]

    def make_opt():
        import keras
        lr = keras_schedule(s, o["lr"])
        wd = o.get("weight_decay", 0.0) or None
        if name == "sgd":
            opt = keras.optimizers.SGD(learning_rate=lr, momentum=o.get("momentum", 0.0),
                                       nesterov=o.get("nesterov", False), weight_decay=wd)
        elif name == "adam":
            opt = keras.optimizers.Adam(learning_rate=lr, beta_1=o["beta1"], beta_2=o["beta2"],
                                        epsilon=o["eps"], amsgrad=o.get("amsgrad", False), weight_decay=wd)
        else:
            opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=o["weight_decay"], beta_1=o["beta1"],
                                         beta_2=o["beta2"], epsilon=o["eps"], amsgrad=o.get("amsgrad", False))
        if exclude_bias:
            opt.exclude_from_weight_decay(var_names=["bias"])
        return opt

    regs = {}
    if reg is not None:
        for n, _ in shapes:
            regs[n] = reg[1]() if (not is_bias(n) or reg_bias) else None
    has_wd = bool(o.get("weight_decay", 0.0))
    decay_bias = (has_wd and not exclude_bias) or (reg is not None and reg_bias)
    if has_wd and reg is not None and (not exclude_bias) != reg_bias:
        raise ValueError("decay_bias must describe both the weight decay and the regularizer")
    spec = {"name": cid, "convention": "keras", "decay_bias": decay_bias, "optimizer": o}
    if reg is not None:
        spec["regularizers"] = [reg[0]]
    spec["schedule"] = s
    return Case(cid, "keras", desc, spec, run_keras(make_opt, regs), shapes, steps)


def keras_cases():
    import keras
    R = keras.regularizers
    C = []
    C.append(keras_case(
        "keras-sgd-l2reg-const", "Keras SGD with kernel_regularizer L2(5e-3): gradient fed to the optimizer is g + 2*l2*w (full convention); bias not regularized.",
        sgd_opt(0.05), sched(), reg=({"name": "l2", "lambda": 5e-3}, lambda: R.L2(5e-3))))
    C.append(keras_case(
        "keras-sgd-momentum-l1reg-step", "Keras SGD momentum (v = mu*v - lr*g; w += v) with kernel L1(2e-3) regularizer, ExponentialDecay(staircase, 15 steps, 0.5).",
        sgd_opt(0.03, momentum=0.9), sched("step", step_size=15, gamma=0.5),
        reg=({"name": "l1", "lambda": 2e-3}, lambda: R.L1(2e-3))))
    C.append(keras_case(
        "keras-sgd-nesterov-l1l2-cosine", "Keras SGD Nesterov with L1L2(l1=1e-3, l2=5e-3) on kernels and biases, CosineDecay(55, alpha=0.1).",
        sgd_opt(0.02, momentum=0.9, nesterov=True), sched("cosine", t0=55, min_multiplier=0.1),
        reg=({"name": "elastic", "l1": 1e-3, "l2": 5e-3, "convention": "full"}, lambda: R.L1L2(l1=1e-3, l2=5e-3)),
        reg_bias=True, shapes=SHAPES4))
    C.append(keras_case(
        "keras-adam-l2reg-multistep", "Keras Adam (eps added to sqrt(v), bias correction folded into alpha) with kernel L2(0.02), eps=1e-3, PiecewiseConstantDecay == multistep [20, 40] x0.1.",
        adam_opt("adam", 0.01, 0.0, eps=1e-3), sched("multistep", milestones=[20, 40], gamma=0.1),
        reg=({"name": "l2", "lambda": 0.02}, lambda: R.L2(0.02))))
    C.append(keras_case(
        "keras-adam-amsgrad-wd-const", "Keras 3 Adam(weight_decay=0.05, amsgrad): decoupled w -= lr*wd*w applied to every variable before the Adam step.",
        adam_opt("adam", 0.01, 0.05, b1=0.8, b2=0.99, eps=1e-7, amsgrad=True), sched(), shapes=SHAPES4))
    C.append(keras_case(
        "keras-adamw-warmup-cosine", "Keras AdamW(weight_decay=0.04) with CosineDecay warm-up (0.1*lr -> lr over 5 steps, then cosine 50 steps, alpha=0.05).",
        adam_opt("adamw", 0.01, 0.04, eps=1e-7), sched("cosine", t0=50, min_multiplier=0.05, warmup=5, warmup_start=0.1)))
    C.append(keras_case(
        "keras-adamw-restarts", "Keras AdamW with CosineDecayRestarts(first_decay_steps=10, t_mul=2, m_mul=1, alpha=0.02).",
        adam_opt("adamw", 0.005, 0.1, b2=0.98, eps=1e-4), sched("cosine_restarts", t0=10, t_mult=2, min_multiplier=0.02),
        steps=60))
    C.append(keras_case(
        "keras-adamw-exclude-bias", "Keras AdamW with exclude_from_weight_decay(var_names=['bias']): biases not decayed, exponential lr decay.",
        adam_opt("adamw", 0.01, 0.1, eps=1e-7, amsgrad=True), sched("exponential", gamma=0.98),
        exclude_bias=True, shapes=SHAPES4))
    C.append(keras_case(
        "keras-sgd-momentum-wd-cosine", "Keras SGD momentum with optimizer weight_decay=0.01 (decoupled, scaled by scheduled lr), CosineDecay(55, alpha=0).",
        sgd_opt(0.05, wd=0.01, momentum=0.9), sched("cosine", t0=55)))
    C.append(keras_case(
        "keras-sgd-nesterov-wd-const", "Keras SGD Nesterov (w += mu*v - lr*g) with optimizer weight_decay=0.02, constant lr.",
        sgd_opt(0.03, wd=0.02, momentum=0.95, nesterov=True), sched(), shapes=SHAPES4))
    C.append(keras_case(
        "keras-adam-l2reg-and-wd", "Keras Adam with kernel and bias L2(0.02) regularizer AND optimizer weight_decay=0.02: coupled full L2 plus decoupled decay on the same tensors.",
        adam_opt("adam", 0.01, 0.02, eps=1e-7), sched("step", step_size=20, gamma=0.5),
        reg=({"name": "l2", "lambda": 0.02, "convention": "full"}, lambda: R.L2(0.02)), reg_bias=True))
    return C


# =========================================================================== optax
def optax_schedule(s: dict, lr: float):
    import optax
    name, w = s["name"], int(s.get("warmup", 0))
    m = float(s.get("min_multiplier", 0.0))
    if name == "cosine" and w:
        return optax.warmup_cosine_decay_schedule(init_value=lr * s["warmup_start"], peak_value=lr,
                                                  warmup_steps=w, decay_steps=w + s["t0"], end_value=lr * m)
    if name == "constant":
        main = optax.constant_schedule(lr)
    elif name == "step":
        main = optax.exponential_decay(lr, transition_steps=s["step_size"], decay_rate=s["gamma"], staircase=True)
    elif name == "exponential":
        main = optax.exponential_decay(lr, transition_steps=1, decay_rate=s["gamma"])
    elif name == "multistep":
        main = optax.piecewise_constant_schedule(lr, {int(x): s["gamma"] for x in s["milestones"]})
    elif name == "cosine":
        main = optax.cosine_decay_schedule(lr, decay_steps=s["t0"], alpha=m)
    elif name == "cosine_restarts":
        periods, t, ti = [], 0, int(s["t0"])
        while t < 1000:
            periods.append(ti)
            t += ti
            ti *= int(s.get("t_mult", 1))
        main = optax.join_schedules([optax.cosine_decay_schedule(lr, decay_steps=p, alpha=m) for p in periods],
                                    list(np.cumsum(periods)[:-1].tolist()))
    else:
        raise ValueError(name)
    if w:
        return optax.join_schedules([optax.linear_schedule(lr * s["warmup_start"], lr, w), main], [w])
    return main if name != "constant" else lr


def run_optax(make_tx):
    def run(params, grads):
        import jax.numpy as jnp
        import optax
        p = {n: jnp.asarray(v) for n, v in params.items()}
        tx = make_tx(p)
        state = tx.init(p)
        steps = next(iter(grads.values())).shape[0]
        traj = {n: [v.copy()] for n, v in params.items()}
        for k in range(steps):
            g = {n: jnp.asarray(grads[n][k]) for n in params}
            updates, state = tx.update(g, state, p)
            p = optax.apply_updates(p, updates)
            for n in params:
                traj[n].append(np.asarray(p[n]).copy())
        return {n: np.stack(t).astype(F32) for n, t in traj.items()}
    return run


def optax_cases():
    import optax
    C = []

    def mask_fn(p):
        return {n: not is_bias(n) for n in p}

    def adamw_case(cid, desc, o, s, masked, shapes=SHAPES3, steps=55):
        def make_tx(p):
            return optax.adamw(optax_schedule(s, o["lr"]), b1=o["beta1"], b2=o["beta2"], eps=o["eps"],
                               weight_decay=o["weight_decay"], mask=mask_fn if masked else None)
        spec = {"name": cid, "convention": "optax", "decay_bias": not masked, "optimizer": o, "schedule": s}
        if masked:
            spec["groups"] = [{"name": "no_decay", "match": {"role": ["bias"]}, "regularizers": [],
                               "optimizer": {"weight_decay": 0.0}}]
        return Case(cid, "optax", desc, spec, run_optax(make_tx), shapes, steps)

    C.append(adamw_case("optax-adamw-const", "optax.adamw (u = m_hat/(sqrt(v_hat)+eps) + wd*w; w -= lr*u) without mask: bias decayed, constant lr.",
                        adam_opt("adamw", 0.01, 0.1), sched(), masked=False))
    C.append(adamw_case("optax-adamw-mask-cosine", "optax.adamw with a mask excluding biases, cosine_decay_schedule(55, alpha=0.1).",
                        adam_opt("adamw", 0.01, 0.2, b1=0.85, b2=0.99, eps=1e-3), sched("cosine", t0=55, min_multiplier=0.1),
                        masked=True, shapes=SHAPES4))
    C.append(adamw_case("optax-adamw-warmup-cosine", "optax.adamw with warmup_cosine_decay_schedule (0 -> lr over 5 steps, cosine to 0.01*lr over the next 50).",
                        adam_opt("adamw", 0.005, 0.05, eps=1e-7), sched("cosine", t0=50, min_multiplier=0.01, warmup=5, warmup_start=0.0),
                        masked=False))
    C.append(adamw_case("optax-adamw-mask-warmup-const", "optax.adamw with bias mask and a linear warm-up (0.25*lr -> lr over 10 steps) joined to a constant lr.",
                        adam_opt("adamw", 0.01, 0.05), sched("constant", warmup=10, warmup_start=0.25),
                        masked=True, steps=50))

    def sgd_case(cid, desc, lr, mom, nest, s, wd=0.0, masked=False, shapes=SHAPES3, steps=55):
        def make_tx(p):
            sgd = optax.sgd(optax_schedule(s, lr), momentum=mom if mom else None, nesterov=nest)
            if wd:
                return optax.chain(optax.add_decayed_weights(wd, mask=mask_fn if masked else None), sgd)
            return sgd
        o = {"name": "sgd", "lr": lr, "momentum": mom, "nesterov": nest, "weight_decay": 0.0}
        spec = {"name": cid, "convention": "optax", "decay_bias": bool(wd) and not masked, "optimizer": o}
        if wd:
            # add_decayed_weights BEFORE the momentum trace: a coupled L2 (half) term
            spec["regularizers"] = [{"name": "l2", "lambda": wd, "convention": "half"}]
        spec["schedule"] = s
        if masked:
            spec["groups"] = [{"name": "no_decay", "match": {"role": ["bias"]}, "regularizers": []}]
        return Case(cid, "optax", desc, spec, run_optax(make_tx), shapes, steps)

    def family_case(cid, desc, o, s, masked, shapes=SHAPES3, steps=30):
        """optax.lamb / optax.lion with their own weight_decay (decoupled, inside lamb's ratio)."""
        def make_tx(p):
            mask = mask_fn if masked else None
            lr = optax_schedule(s, o["lr"])
            if o["name"] == "lamb":
                return optax.lamb(lr, b1=o["beta1"], b2=o["beta2"], eps=o["eps"], eps_root=o.get("eps_root", 0.0),
                                  weight_decay=o["weight_decay"], mask=mask)
            return optax.lion(lr, b1=o["beta1"], b2=o["beta2"], weight_decay=o["weight_decay"], mask=mask)
        spec = {"name": cid, "convention": "optax", "decay_bias": not masked, "optimizer": o, "schedule": s}
        if masked:
            spec["groups"] = [{"name": "no_decay", "match": {"role": ["bias"]}, "regularizers": [],
                               "optimizer": {"weight_decay": 0.0}}]
        return Case(cid, "optax", desc, spec, run_optax(make_tx), shapes, steps)

    C.append(family_case("optax-lamb-const", "optax.lamb (scale_by_adam, add_decayed_weights, scale_by_trust_ratio, lr): the decay inside the per-tensor trust ratio, bias decayed.",
                         {"name": "lamb", "lr": 0.01, "beta1": 0.9, "beta2": 0.999, "eps": 1e-6, "weight_decay": 0.1},
                         sched(), masked=False))
    C.append(family_case("optax-lamb-mask-epsroot-cosine", "optax.lamb with eps_root 1e-8, betas (0.85, 0.99), a bias mask and cosine_decay_schedule.",
                         {"name": "lamb", "lr": 0.02, "beta1": 0.85, "beta2": 0.99, "eps": 1e-4, "eps_root": 1e-8,
                          "weight_decay": 0.2}, sched("cosine", t0=30, min_multiplier=0.1), masked=True, shapes=SHAPES4))
    C.append(family_case("optax-lamb-nodecay-step", "optax.lamb without weight decay (trust ratio of Adam's direction alone), staircase exponential_decay == step(10, 0.5).",
                         {"name": "lamb", "lr": 0.01, "beta1": 0.9, "beta2": 0.99, "eps": 1e-6, "weight_decay": 0.0},
                         sched("step", step_size=10, gamma=0.5), masked=False))
    # lion is the external plugin plugins/lion (ConformanceTests compiles the shipped plugins)
    C.append(family_case("optax-lion-const", "optax.lion (sign of (1-b1)*g + b1*m; m = b2*m + (1-b2)*g) with weight_decay 0.1 (decoupled, lr-scaled), bias decayed; replayed through the external plugin plugins/lion.",
                         {"name": "lion", "lr": 0.003, "beta1": 0.9, "beta2": 0.99, "weight_decay": 0.1}, sched(), masked=False))
    C.append(family_case("optax-lion-mask-cosine", "optax.lion betas (0.95, 0.98), weight_decay 0.3 with a bias mask, cosine_decay_schedule; replayed through plugins/lion.",
                         {"name": "lion", "lr": 0.002, "beta1": 0.95, "beta2": 0.98, "weight_decay": 0.3},
                         sched("cosine", t0=30, min_multiplier=0.1), masked=True, shapes=SHAPES4))
    C.append(sgd_case("optax-chain-decay-sgd-momentum-const", "optax.chain(add_decayed_weights(0.01), sgd(momentum=0.9)): decay added to the gradient before the trace, i.e. coupled L2.",
                      0.03, 0.9, False, sched(), wd=0.01))
    C.append(sgd_case("optax-chain-decay-sgd-nesterov-restarts", "optax.chain(add_decayed_weights(0.02, mask=no bias), sgd(nesterov)) with cosine restarts built by join_schedules (T_0=10, T_mult=2).",
                      0.05, 0.9, True, sched("cosine_restarts", t0=10, t_mult=2, min_multiplier=0.0),
                      wd=0.02, masked=True, shapes=SHAPES4, steps=60))
    C.append(sgd_case("optax-sgd-momentum-multistep", "optax.sgd(momentum=0.8) (trace t = g + mu*t) with piecewise_constant_schedule == multistep [20, 40] x0.1, no decay.",
                      0.05, 0.8, False, sched("multistep", milestones=[20, 40], gamma=0.1)))
    C.append(sgd_case("optax-sgd-nesterov-step", "optax.sgd(momentum=0.9, nesterov=True) with staircase exponential_decay == step(15, 0.5), no decay.",
                      0.02, 0.9, True, sched("step", step_size=15, gamma=0.5), shapes=SHAPES4))
    C.append(sgd_case("optax-chain-decay-sgd-exponential", "optax.chain(add_decayed_weights(0.05), sgd) without momentum, exponential_decay(0.96 per step).",
                      0.1, 0.0, False, sched("exponential", gamma=0.96), wd=0.05))
    return C


# =========================================================================== Caffe (transcription)
def caffe_sgd_solver(params, grads, *, base_lr, momentum, weight_decay, regularization_type,
                     lr_policy, gamma=0.0, stepsize=0, stepvalue=(), lr_mult=None, decay_mult=None):
    """float32 NumPy transcription of Caffe's SGDSolver for one solver step per gradient.

    Source: BVLC/caffe, src/caffe/solvers/sgd_solver.cpp (commit e86b9cb):
      GetLearningRate(): fixed: base_lr; step: base_lr * gamma^(iter / stepsize);
        exp: base_lr * gamma^iter; multistep: current_step_ advances when
        iter >= stepvalue(current_step_), rate = base_lr * gamma^current_step_.
        `iter_` is the number of updates already done (ApplyUpdate increments it after Update()).
      Regularize(): local_decay = weight_decay * decay_mult;
        L2: caffe_axpy(local_decay, data, diff)             diff += local_decay * w
        L1: caffe_cpu_sign(data, temp); caffe_axpy(local_decay, temp, diff)   diff += local_decay * sign(w)
      ComputeUpdateValue(): local_rate = rate * lr_mult;
        caffe_cpu_axpby(local_rate, diff, momentum, history)   history = local_rate*diff + momentum*history
        caffe_copy(history, diff)
      Net::Update() -> Blob::Update(): data = data - diff     (caffe_axpy(-1, diff, data))
    caffe_cpu_axpby is cblas_saxpby: scal(beta, Y) then axpy(alpha, X, Y) (util/mkl_alternate.hpp).
    caffe_cpu_sign is (0 < x) - (x < 0) (util/math_functions.hpp).  All in Dtype = float.
    """
    lr_mult = lr_mult or {}
    decay_mult = decay_mult or {}
    names = list(params)
    data = {n: params[n].astype(F32).copy() for n in names}
    history = {n: np.zeros_like(data[n]) for n in names}
    steps = grads[names[0]].shape[0]
    traj = {n: [data[n].copy()] for n in names}
    current_step = 0
    for it in range(steps):
        if lr_policy == "fixed":
            rate = F32(base_lr)
        elif lr_policy == "step":
            current_step = it // stepsize
            rate = F32(F32(base_lr) * math.pow(F32(gamma), current_step))
        elif lr_policy == "exp":
            rate = F32(F32(base_lr) * math.pow(F32(gamma), it))
        elif lr_policy == "multistep":
            if current_step < len(stepvalue) and it >= stepvalue[current_step]:
                current_step += 1
            rate = F32(F32(base_lr) * math.pow(F32(gamma), current_step))
        else:
            raise ValueError(lr_policy)
        for n in names:
            diff = grads[n][it].astype(F32).copy()
            local_decay = F32(F32(weight_decay) * F32(decay_mult.get(n, 1.0)))
            if local_decay:
                if regularization_type == "L2":
                    diff = local_decay * data[n] + diff
                elif regularization_type == "L1":
                    sign = ((0 < data[n]).astype(F32) - (data[n] < 0).astype(F32))
                    diff = local_decay * sign + diff
                else:
                    raise ValueError(regularization_type)
            local_rate = F32(rate * F32(lr_mult.get(n, 1.0)))
            history[n] = F32(momentum) * history[n]
            history[n] = local_rate * diff + history[n]
            diff = history[n].copy()
            data[n] = data[n] - diff
            traj[n].append(data[n].copy())
    return {n: np.stack(t).astype(F32) for n, t in traj.items()}


def caffe_cases():
    C = []

    def case(cid, desc, solver: dict, s: dict, shapes=SHAPES3, steps=55, bias_mults=None):
        def run(params, grads):
            lm = dm = None
            if bias_mults:
                lm = {n: bias_mults[0] for n in params if is_bias(n)}
                dm = {n: bias_mults[1] for n in params if is_bias(n)}
            return caffe_sgd_solver(params, grads, lr_mult=lm, decay_mult=dm, **solver)
        l1 = solver["regularization_type"] == "L1"
        o = {"name": "sgd", "lr": solver["base_lr"], "momentum": solver["momentum"],
             "weight_decay": 0.0 if l1 else solver["weight_decay"]}
        decay_bias = not (bias_mults and bias_mults[1] == 0)
        spec = {"name": cid, "convention": "caffe", "decay_bias": decay_bias, "optimizer": o}
        if l1:
            spec["regularizers"] = [{"name": "l1", "lambda": solver["weight_decay"]}]
        spec["schedule"] = s
        if bias_mults:
            spec["groups"] = [{"name": "bias", "match": {"role": ["bias"]}, "lr_multiplier": float(bias_mults[0])}]
        return Case(cid, "caffe", desc, spec, run, shapes, steps)

    C.append(case("caffe-sgd-l2-fixed", "Caffe SGDSolver momentum 0.9, weight_decay 5e-3 regularization_type L2 (diff += wd*w), lr_policy fixed; history = lr*diff + mu*history.",
                  dict(base_lr=0.02, momentum=0.9, weight_decay=5e-3, regularization_type="L2", lr_policy="fixed"), sched()))
    C.append(case("caffe-sgd-l1-step", "Caffe SGDSolver regularization_type L1 (diff += wd*sign(w)), lr_policy step (stepsize 20, gamma 0.1): lr inside the momentum history.",
                  dict(base_lr=0.05, momentum=0.9, weight_decay=1e-2, regularization_type="L1", lr_policy="step",
                       gamma=0.1, stepsize=20), sched("step", step_size=20, gamma=0.1)))
    C.append(case("caffe-sgd-l2-multistep-biasmult", "Caffe SGDSolver L2 with the classic bias params lr_mult 2, decay_mult 0; lr_policy multistep (stepvalue 20, 40, gamma 0.1).",
                  dict(base_lr=0.02, momentum=0.9, weight_decay=1e-2, regularization_type="L2", lr_policy="multistep",
                       gamma=0.1, stepvalue=(20, 40)), sched("multistep", milestones=[20, 40], gamma=0.1),
                  shapes=SHAPES4, bias_mults=(2.0, 0.0)))
    C.append(case("caffe-sgd-l2-exp", "Caffe SGDSolver L2 without momentum, lr_policy exp (gamma 0.97).",
                  dict(base_lr=0.1, momentum=0.0, weight_decay=2e-2, regularization_type="L2", lr_policy="exp",
                       gamma=0.97), sched("exponential", gamma=0.97)))
    return C


# =========================================================================== paper (transcription)
def paper_multiplier(s: dict, k: int) -> float:
    """SetScheduleMultiplier for update k (0-based): constant, cosine annealing, or SGDR's
    warm restarts (Loshchilov & Hutter 2017, eq. 5: eta_min + (1-eta_min)/2 (1 + cos(pi T_cur/T_i)))."""
    name = s["name"]
    m = float(s.get("min_multiplier", 0.0))
    if name == "constant":
        return 1.0
    if name == "cosine":
        return m + 0.5 * (1 - m) * (1 + math.cos(math.pi * k / s["t0"]))
    if name == "cosine_restarts":
        ti, tcur = int(s["t0"]), k
        while tcur >= ti:
            tcur -= ti
            ti *= int(s.get("t_mult", 1))
        return m + 0.5 * (1 - m) * (1 + math.cos(math.pi * tcur / ti))
    raise ValueError(name)


def paper_period(s: dict, k: int) -> int:
    if s["name"] != "cosine_restarts":
        return None
    ti, tcur = int(s["t0"]), k
    while tcur >= ti:
        tcur -= ti
        ti *= int(s.get("t_mult", 1))
    return ti


def paper_algorithm(params, grads, *, algo, alpha, s, beta1=0.9, beta2=0.999, eps=1e-8,
                    l2=0.0, wd=0.0, wd_norm=None):
    """float32 NumPy transcription of Loshchilov & Hutter (2019), ICLR, Algorithm 1
    (SGD with L2 regularization / SGD with decoupled weight decay, SGDW) and Algorithm 2
    (Adam with L2 / AdamW), with the schedule multiplier eta_t (SetScheduleMultiplier):

      Alg. 1:  g_t = grad f_t(theta_{t-1}) [+ lambda_L2 theta_{t-1}]
               m_t = beta1 m_{t-1} + eta_t alpha g_t
               theta_t = theta_{t-1} - m_t - eta_t lambda theta_{t-1}
      Alg. 2:  g_t = grad f_t(theta_{t-1}) [+ lambda_L2 theta_{t-1}]
               m_t = beta1 m_{t-1} + (1 - beta1) g_t ; v_t = beta2 v_{t-1} + (1 - beta2) g_t^2
               m_hat = m_t / (1 - beta1^t) ; v_hat = v_t / (1 - beta2^t)
               theta_t = theta_{t-1} - eta_t (alpha m_hat / (sqrt(v_hat) + eps) + lambda theta_{t-1})
    Normalized weight decay (paper Appendix B.1): lambda = lambda_norm sqrt(b / (B T)), T the
    number of epochs of the run or, with warm restarts, of the current period.
    Update t = k + 1 uses eta(k) (k = updates already done), the same time convention as the
    other fixtures.  wd_norm = (lambda_norm, b, B, T_epochs or None for restarts).
    """
    names = list(params)
    th = {n: params[n].astype(F32).copy() for n in names}
    m = {n: np.zeros_like(th[n]) for n in names}
    v = {n: np.zeros_like(th[n]) for n in names}
    steps = grads[names[0]].shape[0]
    traj = {n: [th[n].copy()] for n in names}
    for k in range(steps):
        t = k + 1
        eta = F32(paper_multiplier(s, k))
        lam = wd
        if wd_norm is not None:
            lam_norm, b, B, T = wd_norm
            if T is None:
                T = paper_period(s, k) * b / B
            lam = lam_norm * math.sqrt(b / (B * T))
        lam = F32(lam)
        for n in names:
            g = grads[n][k].astype(F32)
            if l2:
                g = g + F32(l2) * th[n]
            if algo == "sgd":
                m[n] = F32(beta1) * m[n] + eta * F32(alpha) * g
                th[n] = th[n] - m[n] - eta * lam * th[n]
            else:
                m[n] = F32(beta1) * m[n] + F32(1 - beta1) * g
                v[n] = F32(beta2) * v[n] + F32(1 - beta2) * (g * g)
                mh = m[n] / F32(1 - beta1 ** t)
                vh = v[n] / F32(1 - beta2 ** t)
                th[n] = th[n] - eta * (F32(alpha) * mh / (np.sqrt(vh) + F32(eps)) + lam * th[n])
            traj[n].append(th[n].copy())
    return {n: np.stack(t).astype(F32) for n, t in traj.items()}


def paper_cases():
    C = []

    def case(cid, desc, algo, alpha, s, shapes=SHAPES3, steps=55, l2=0.0, wd=0.0, wd_norm=None, **kw):
        def run(params, grads):
            return paper_algorithm(params, grads, algo=algo, alpha=alpha, s=s, l2=l2, wd=wd, wd_norm=wd_norm, **kw)
        if algo == "sgd":
            o = {"name": "sgdw" if (wd or wd_norm) else "sgd", "lr": alpha, "momentum": kw.get("beta1", 0.9),
                 "weight_decay": wd}
        else:
            o = {"name": "adamw" if (wd or wd_norm) else "adam", "lr": alpha, "beta1": kw.get("beta1", 0.9),
                 "beta2": kw.get("beta2", 0.999), "eps": kw.get("eps", 1e-8), "weight_decay": wd}
        spec = {"name": cid, "convention": "paper", "decay_bias": True, "optimizer": o}
        regs = []
        if l2:
            regs.append({"name": "l2", "lambda": l2, "convention": "half"})
        if wd_norm is not None:
            lam_norm, b, B, T = wd_norm
            r = {"name": "weight_decay", "lambda": lam_norm, "scale": "schedule", "normalized": True,
                 "batch_size": b, "train_size": B}
            if T is not None:
                r["epochs"] = T
            regs.append(r)
        if regs:
            spec["regularizers"] = regs
        spec["schedule"] = s
        return Case(cid, "paper", desc, spec, run, shapes, steps)

    C.append(case("paper-sgdw-cosine", "Paper SGDW (Alg. 1): m = beta1*m + eta*alpha*g, w -= m + eta*lambda*w, cosine annealing over 55 steps.",
                  "sgd", 0.05, sched("cosine", t0=55), wd=5e-3))
    C.append(case("paper-adamw-const", "Paper AdamW (Alg. 2) with constant multiplier: decay lambda*w not multiplied by alpha.",
                  "adam", 0.01, sched(), wd=2e-3, shapes=SHAPES4))
    C.append(case("paper-adamw-restarts-normalized", "Paper AdamW with warm restarts (T_0=20, T_mult=2) and normalized decay lambda = lambda_norm*sqrt(b/(B*T_i)) recomputed per restart period.",
                  "adam", 0.01, sched("cosine_restarts", t0=20, t_mult=2, min_multiplier=0.0), steps=60,
                  wd_norm=(0.05, 10, 100, None), beta2=0.99))
    C.append(case("paper-sgdw-restarts-normalized", "Paper SGDW with warm restarts (T_0=10, T_mult=2, eta_min=0.02) and normalized decay recomputed per restart period.",
                  "sgd", 0.03, sched("cosine_restarts", t0=10, t_mult=2, min_multiplier=0.02), steps=60,
                  wd_norm=(0.03, 10, 100, None), shapes=SHAPES4))
    C.append(case("paper-adamw-cosine-normalized", "Paper AdamW with cosine annealing over the whole run and normalized decay with T = 6 epochs (b=10, B=100, 60 steps).",
                  "adam", 0.005, sched("cosine", t0=60), steps=60, wd_norm=(0.1, 10, 100, 6)))
    C.append(case("paper-adam-l2-cosine", "Paper Adam with L2 regularization (Alg. 2 without decoupling: g += lambda*w seen by the moments), cosine.",
                  "adam", 0.01, sched("cosine", t0=55, min_multiplier=0.1), l2=0.01, eps=1e-3))
    C.append(case("paper-sgd-l2-const", "Paper SGD with L2 regularization and momentum (Alg. 1 without decoupling), constant multiplier.",
                  "sgd", 0.02, sched(), l2=0.02, beta1=0.8))
    return C


# =========================================================================== driver
def all_cases(kinds):
    cases = []
    builders = {"torch": lambda: torch_cases() + family_cases(), "keras": keras_cases, "optax": optax_cases,
                "caffe": caffe_cases, "paper": paper_cases}
    for k in kinds:
        cases += builders[k]()
    return cases


def available_kinds():
    kinds = []
    for k in ("torch", "keras", "optax"):
        try:
            if k != "torch":
                import jax  # noqa: F401
            __import__(k)
            kinds.append(k)
        except ImportError:
            print(f"note: {k} not importable, skipping its cases", file=sys.stderr)
    return kinds + ["caffe", "paper"]


def write_case(case: Case, out_dir: str, rtol: float) -> dict:
    import h5py
    params, grads = make_data(case.id, case.shapes, case.steps, case.seed)
    traj = case.run(params, grads)
    spec_text = to_toml(case.spec)
    path = os.path.join(out_dir, case.id + ".h5")
    tmp = path + ".tmp"
    with h5py.File(tmp, "w", track_order=True) as f:
        f.attrs["spec"] = spec_text
        f.attrs["framework"] = framework_string(case.kind)
        f.attrs["case"] = case.id
        f.attrs["description"] = case.description
        for grp, data in (("params", params), ("grads", grads), ("trajectory", traj)):
            g = f.create_group(grp, track_order=True)
            for n, _ in case.shapes:
                arr = np.ascontiguousarray(data[n], dtype=F32)
                g.create_dataset(n, data=arr)
    os.replace(tmp, path)
    chk = spec_replay.check_file(path, with_sensitivity=True)
    status = "ok" if chk["rel_error"] <= rtol else "MISMATCH"
    # eps placement only shows when eps is not negligible against sqrt(v): not required
    weak = {k: v for k, v in chk["sensitivity"].items() if v < 20 * rtol and k != "swap_eps_placement"}
    if weak and not case.random:  # random cases are about matching, not about separating readings
        status = "WEAK"  # the fixture cannot tell a wrong reading of its spec apart
    sens = " ".join(f"{k}={v:.1e}" for k, v in chk["sensitivity"].items())
    print(f"{status:8s} {case.id:46s} rel {chk['rel_error']:.1e} max|w| {chk['max_abs_trajectory']:.2f} | {sens}")
    o = case.spec["optimizer"]
    return {
        "case": case.id,
        "file": case.id + ".h5",
        "framework": framework_string(case.kind),
        "kind": case.kind,
        "convention": case.spec["convention"],
        "optimizer": o["name"],
        "regularizers": [r["name"] for r in case.spec.get("regularizers", [])],
        "schedule": case.spec["schedule"]["name"] + (
            "+warmup" if case.spec["schedule"].get("warmup") else ""),
        "decay_bias": case.spec["decay_bias"],
        "steps": case.steps,
        "tensors": {n: list(sh) for n, sh in case.shapes},
        "random": case.random,
        "description": case.description,
        "max_abs_trajectory": chk["max_abs_trajectory"],
        "spec_replay_rel_error": chk["rel_error"],
        "sensitivity": chk["sensitivity"],
        "bytes": os.path.getsize(path),
        "_ok": status == "ok",
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=DEFAULT_OUT, help="output directory (default: the committed fixtures)")
    ap.add_argument("--only", default="*", help="glob over case ids")
    ap.add_argument("--random", type=int, default=0, metavar="N",
                    help="instead of the curated matrix, write N fresh random PyTorch cases")
    ap.add_argument("--seed", type=int, default=0, help="seed of --random")
    ap.add_argument("--with-random", type=int, default=0, metavar="N",
                    help="also write N random PyTorch cases (seed --seed) next to the curated ones")
    ap.add_argument("--rtol", type=float, default=2e-5, help="self-check tolerance (spec_replay)")
    ap.add_argument("--list", action="store_true", help="list the cases and exit")
    a = ap.parse_args(argv)

    os.environ.setdefault("KERAS_BACKEND", "jax")
    if a.random:
        cases = random_torch_cases(a.random, a.seed)
    else:
        cases = all_cases(available_kinds())
        if a.with_random:
            cases += random_torch_cases(a.with_random, a.seed)
    cases = [c for c in cases if fnmatch.fnmatch(c.id, a.only)]
    if a.list:
        for c in cases:
            print(f"{c.id:50s} {c.kind:6s} {c.spec['convention']:8s} {c.description}")
        return 0
    os.makedirs(a.out, exist_ok=True)
    entries = [write_case(c, a.out, a.rtol) for c in cases]
    bad = [e["case"] for e in entries if not e.pop("_ok")]

    man_path = os.path.join(a.out, "manifest.json")
    old = {}
    if os.path.exists(man_path):  # keep entries of cases not regenerated now (--only, missing framework)
        with open(man_path) as f:
            old = {e["case"]: e for e in json.load(f).get("cases", [])
                   if os.path.exists(os.path.join(a.out, e["file"]))}
    for e in entries:
        old[e["case"]] = e
    merged = sorted(old.values(), key=lambda e: (e["random"], e["kind"], e["case"]))
    total = sum(e["bytes"] for e in merged)
    manifest = {
        "format": "decoupled-reference-fixtures",
        "format_version": 1,
        "generator": "scripts/reference/make_fixtures.py",
        "layout": {"params": "/params/<name> float32", "grads": "/grads/<name> float32 [steps, ...]",
                   "trajectory": "/trajectory/<name> float32 [steps+1, ...]",
                   "attributes": ["spec", "framework", "case", "description"]},
        "schedule_time": "update k (0-based, k = updates already done) uses multiplier eta(k)",
        "suggested_rtol": "max |ours - trajectory| <= 1e-5 * max|trajectory| (float32 replays); "
                          "spec_replay.py (float64) is within spec_replay_rel_error",
        "total_bytes": total,
        "cases": merged,
    }
    with open(man_path, "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(f"{len(entries)} written to {a.out}, total fixtures {total / 1024:.1f} KiB")
    if bad:
        print("spec/trajectory mismatch in: " + ", ".join(bad), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
