#!/usr/bin/env python3
"""Independent NumPy interpreter of OUR replay-spec semantics (docs/config.md).

This is not a framework: it reads the `spec` attribute of a reference fixture,
replays `/grads` from `/params` the way the Decoupled toolkit is meant to (in
float64), and compares with the framework-made `/trajectory`.  The generator
(make_fixtures.py) runs it on every fixture it writes, so a spec that does not
describe what the framework did is caught before a fixture is committed.

It needs only numpy and h5py (no framework):

    python3 scripts/reference/spec_replay.py Tests/DecoupledTrainingTests/Fixtures/reference

exits non-zero when some fixture's relative error exceeds --rtol.

Semantics implemented (see scripts/reference/README.md for the full text):
  step k = 0, 1, ... (k = number of updates already done) uses multiplier eta(k);
  lr_k = lr * eta(k) * group lr_multiplier;
  1. coupled terms:   g <- g + dR(w)      (l2 half/full, l1 sign, elastic, coupled weight_decay)
  2. direction:       per convention's momentum / Adam form
  3. decoupled decay: w <- w - s_k * lambda * w_{k}   (s_k = lr_k | eta(k) | 1)
  4. apply.
Biases (role "bias": last name component "bias") get no decay/regularizer unless
`decay_bias = true` or a matching [[groups]] entry sets `regularizers` / an
`optimizer.weight_decay` override explicitly.
"""
from __future__ import annotations

import argparse
import fnmatch
import math
import sys
import tomllib

import numpy as np

CONVENTIONS = ("pytorch", "keras", "caffe", "optax", "paper")


# --------------------------------------------------------------------------- schedule
def _base_multiplier(s: dict, t: int) -> float:
    name = s.get("name", "constant")
    m = float(s.get("min_multiplier", 0.0))
    if name == "constant":
        return 1.0
    if name == "step":
        return float(s["gamma"]) ** (t // int(s["step_size"]))
    if name == "multistep":
        n = sum(1 for ms in s["milestones"] if t >= int(ms))
        return float(s["gamma"]) ** n
    if name == "exponential":
        return float(s["gamma"]) ** t
    if name == "cosine":
        t0 = int(s["t0"])
        tc = min(t, t0)  # held at the minimum after t0 (optax/keras); fixtures never go past t0
        return m + (1.0 - m) * (1.0 + math.cos(math.pi * tc / t0)) / 2.0
    if name == "cosine_restarts":
        tcur, ti = restart_position(s, t)
        return m + (1.0 - m) * (1.0 + math.cos(math.pi * tcur / ti)) / 2.0
    raise ValueError(f"unknown schedule {name!r}")


def restart_position(s: dict, t: int) -> tuple[int, int]:
    """(T_cur, T_i) of cosine_restarts at time t (PyTorch CosineAnnealingWarmRestarts)."""
    ti = int(s["t0"])
    mult = int(s.get("t_mult", 1))
    tcur = t
    while tcur >= ti:
        tcur -= ti
        ti *= mult
    return tcur, ti


def multiplier(spec: dict, k: int) -> float:
    s = spec.get("schedule", {"name": "constant"})
    if s.get("unit", "epoch") != "step":
        raise ValueError("fixtures use schedule unit = \"step\"")
    w = int(s.get("warmup", 0))
    if k < w:
        start = float(s.get("warmup_start", 0.0))
        return start + (1.0 - start) * k / w
    return _base_multiplier(s, k - w)


def current_period(spec: dict, k: int) -> int | None:
    """Length in steps of the current cosine_restarts period (None for other schedules)."""
    s = spec.get("schedule", {})
    if s.get("name") != "cosine_restarts":
        return None
    w = int(s.get("warmup", 0))
    return restart_position(s, max(k - w, 0))[1]


# --------------------------------------------------------------------------- groups
def role(name: str) -> str:
    last = name.split(".")[-1].lower()
    if last == "bias":
        return "bias"
    if "norm" in name.lower() and last in ("weight", "gamma", "beta", "scale"):
        return "norm"
    return "weight"


def match_group(spec: dict, name: str, shape) -> dict | None:
    for g in spec.get("groups", []):
        m = g.get("match", {})
        ok = True
        if "role" in m:
            roles = m["role"] if isinstance(m["role"], list) else [m["role"]]
            ok &= role(name) in roles
        if "pattern" in m:
            ok &= fnmatch.fnmatchcase(name, m["pattern"])
        if "max_rank" in m:
            ok &= len(shape) <= int(m["max_rank"])
        if ok:
            return g
    return None


class TensorConfig:
    def __init__(self, spec: dict, name: str, shape):
        self.conv = spec.get("convention", "pytorch")
        assert self.conv in CONVENTIONS, self.conv
        g = match_group(spec, name, shape)
        opt = dict(spec["optimizer"])
        if g is not None:
            opt.update(g.get("optimizer", {}))
        self.opt = opt
        self.lr_mult = float(g.get("lr_multiplier", 1.0)) if g else 1.0
        exempt = role(name) != "weight" and not spec.get("decay_bias", False)
        if g is not None and "regularizers" in g:
            self.regs = list(g["regularizers"])
        else:
            self.regs = [] if exempt else list(spec.get("regularizers", []))
        wd_explicit = g is not None and "weight_decay" in g.get("optimizer", {})
        self.wd = float(opt.get("weight_decay", 0.0))
        if exempt and not wd_explicit:
            self.wd = 0.0


# --------------------------------------------------------------------------- replay
def optimizer_decay_kind(conv: str, name: str, decoupled_switch: bool = False) -> tuple[str, str]:
    """Where `optimizer.weight_decay` goes (docs/config.md table): (coupled|decoupled, scale)."""
    if conv == "pytorch":  # PyTorch's Adafactor decays decoupled
        return ("decoupled" if name in ("adamw", "sgdw", "adafactor") or decoupled_switch else "coupled"), "lr"
    if conv in ("keras", "optax"):
        return "decoupled", "lr"
    if conv == "caffe":
        return "coupled", "lr"
    return ("decoupled" if name in ("adamw", "sgdw") else "coupled"), "schedule"  # paper


def _l2_factor(conv: str, reg: dict) -> float:
    c = reg.get("convention", "full" if conv == "keras" else "half")
    return 2.0 if c == "full" else 1.0


def normalized_lambda(reg: dict, spec: dict, k: int) -> float:
    lam = float(reg["lambda"])
    if not reg.get("normalized", False):
        return lam
    b = float(reg["batch_size"])
    B = float(reg["train_size"])
    period = current_period(spec, k)
    if period is not None:
        T = period * b / B  # restart period in epochs, recomputed at each restart
    else:
        T = float(reg["epochs"])
    return lam * math.sqrt(b / (B * T))


def replay(spec: dict, params: dict, grads: dict, time_offset: int = 0, variant=()) -> dict:
    """Return {name: array [steps+1, ...]} in float64.  time_offset != 0 is only for
    the sensitivity check (a deliberately wrong schedule time convention)."""
    out = {}
    for name, p0 in params.items():
        cfg = TensorConfig(spec, name, p0.shape)
        out[name] = _replay_tensor(spec, cfg, np.asarray(p0, np.float64),
                                   np.asarray(grads[name], np.float64), time_offset, variant)
    return out


def _replay_tensor(spec, cfg: TensorConfig, w, G, time_offset=0, variant=()):
    conv, opt = cfg.conv, cfg.opt
    name = opt["name"]
    lr = float(opt["lr"])
    mu = float(opt.get("momentum", 0.0))
    damp = float(opt.get("dampening", 0.0))
    nesterov = bool(opt.get("nesterov", False))
    b1 = float(opt.get("beta1", 0.9))
    b2 = float(opt.get("beta2", 0.999))
    eps = float(opt.get("eps", 1e-7 if conv == "keras" else 1e-8))
    ams = bool(opt.get("amsgrad", False))
    wd = cfg.wd
    adam = name in ("adam", "adamw")
    mconv = conv
    if "swap_momentum" in variant:  # lr outside the buffer <-> lr inside the buffer
        mconv = {"pytorch": "caffe", "optax": "caffe", "keras": "pytorch",
                 "caffe": "pytorch", "paper": "pytorch"}[conv]

    wd_kind, wd_scale = optimizer_decay_kind(conv, name, bool(opt.get("decoupled_weight_decay", False)))

    if "swap_coupling" in variant:
        wd_kind = "decoupled" if wd_kind == "coupled" else "coupled"
    if "swap_decay_scale" in variant:
        wd_scale = "lr" if wd_scale == "schedule" else "schedule"

    steps = G.shape[0]
    traj = np.empty((steps + 1,) + w.shape)
    traj[0] = w
    buf = None
    family_state = None
    m = np.zeros_like(w)
    v = np.zeros_like(w)
    vmax = np.zeros_like(w)
    for k in range(steps):
        eta = multiplier(spec, k + time_offset)
        lr_k = lr * eta * cfg.lr_mult
        g = G[k].copy()
        w_prev = w.copy()
        decays = []  # (scale, lambda) applied to w_prev
        # 1. coupled
        if wd and wd_kind == "coupled":
            g += wd * w_prev
        elif wd:
            decays.append((wd_scale, wd))
        for reg in cfg.regs:
            r = reg["name"]
            if r == "l2":
                g += _l2_factor(conv, reg) * float(reg["lambda"]) * w_prev
            elif r == "l1":
                g += float(reg["lambda"]) * np.sign(w_prev)
            elif r == "elastic":
                g += float(reg.get("l1", 0.0)) * np.sign(w_prev)
                g += _l2_factor(conv, reg) * float(reg.get("l2", 0.0)) * w_prev
            elif r == "weight_decay":
                sc = reg.get("scale", "lr")
                if "swap_decay_scale" in variant:
                    sc = "lr" if sc == "schedule" else "schedule"
                decays.append((sc, normalized_lambda(reg, spec, k)))
            else:
                raise ValueError(f"unknown regularizer {r!r}")
        # 2. direction and 4. apply (the step does not depend on w, so order is free)
        if name == "lamb":  # the decoupled decay is part of u, inside the trust ratio
            lam = sum({"lr": lr_k, "schedule": eta, "constant": 1.0}[sc] * l for sc, l in decays) / lr_k
            decays = []
            family_state = {} if family_state is None else family_state
            step = _lamb(opt, family_state, g, k + 1, lr_k, w_prev, lam)
        elif name == "adafactor":  # RMS(w) before the decay sets the step size
            family_state = {} if family_state is None else family_state
            step = _adafactor(opt, family_state, g, k + 1, lr_k, w_prev)
        elif name in FAMILY:
            if family_state is None:
                family_state = {}
            step = FAMILY[name](opt, family_state, g, k + 1, lr_k)
        elif adam:
            t = k + 1
            m = b1 * m + (1 - b1) * g
            v = b2 * v + (1 - b2) * g * g
            vv = v
            if ams:
                vmax = np.maximum(vmax, v)
                vv = vmax
            if (conv == "keras") != ("swap_eps" in variant):
                alpha = lr_k * math.sqrt(1 - b2 ** t) / (1 - b1 ** t)
                step = alpha * m / (np.sqrt(vv) + eps)
            else:
                step = lr_k / (1 - b1 ** t) * m / (np.sqrt(vv) / math.sqrt(1 - b2 ** t) + eps)
        else:  # sgd / sgdw
            if mu == 0.0:
                step = lr_k * g
            elif mconv in ("pytorch", "optax"):
                d = 0.0 if mconv == "optax" else damp
                buf = g.copy() if buf is None else mu * buf + (1 - d) * g
                step = lr_k * (g + mu * buf if nesterov else buf)
            elif mconv == "keras":
                buf = np.zeros_like(w) if buf is None else buf
                buf = mu * buf - lr_k * g
                step = -(mu * buf - lr_k * g) if nesterov else -buf
            else:  # caffe, paper: V = mu V + lr_k g ; w -= V
                buf = np.zeros_like(w) if buf is None else buf
                buf = mu * buf + lr_k * g
                step = buf
        # 3. decoupled decay on w_prev
        for scale, lam in decays:
            s = {"lr": lr_k, "schedule": eta, "constant": 1.0}[scale]
            w = w - s * lam * w_prev
        w = w - step
        traj[k + 1] = w
    return traj


# --------------------------------------------------------------------------- the torch.optim family
# Each returns the step (w <- w - step) from the gradient with its coupled terms, keeping
# its state in `st`; the formulas are PyTorch's _single_tensor_<name> (torch/optim/<name>.py).
def _zeros(st, key, g, init=0.0):
    if key not in st:
        st[key] = np.full_like(g, init)
    return st[key]


def _adagrad(o, st, g, t, lr):
    s = _zeros(st, "sum", g, float(o.get("initial_accumulator_value", 0.0)))
    s += g * g
    clr = lr / (1 + (t - 1) * float(o.get("lr_decay", 0.0)))
    return clr * g / (np.sqrt(s) + float(o.get("eps", 1e-10)))


def _rmsprop(o, st, g, t, lr):
    a, eps, mu = float(o.get("alpha", 0.99)), float(o.get("eps", 1e-8)), float(o.get("momentum", 0.0))
    v = _zeros(st, "v", g)
    v[...] = a * v + (1 - a) * g * g
    if o.get("centered", False):
        ga = _zeros(st, "ga", g)
        ga[...] = a * ga + (1 - a) * g
        avg = np.sqrt(v - ga * ga) + eps
    else:
        avg = np.sqrt(v) + eps
    if mu > 0:
        b = _zeros(st, "buf", g)
        b[...] = mu * b + g / avg
        return lr * b
    return lr * g / avg


def _adadelta(o, st, g, t, lr):
    rho, eps = float(o.get("rho", 0.9)), float(o.get("eps", 1e-6))
    v, u = _zeros(st, "v", g), _zeros(st, "u", g)
    v[...] = rho * v + (1 - rho) * g * g
    d = np.sqrt(u + eps) / np.sqrt(v + eps) * g
    u[...] = rho * u + (1 - rho) * d * d
    return lr * d


def _adamax(o, st, g, t, lr):
    b1, b2, eps = float(o.get("beta1", 0.9)), float(o.get("beta2", 0.999)), float(o.get("eps", 1e-8))
    m, u = _zeros(st, "m", g), _zeros(st, "u", g)
    m[...] = b1 * m + (1 - b1) * g
    u[...] = np.maximum(b2 * u, np.abs(g) + eps)
    return lr / (1 - b1 ** t) * m / u


def _nadam(o, st, g, t, lr):
    b1, b2, eps = float(o.get("beta1", 0.9)), float(o.get("beta2", 0.999)), float(o.get("eps", 1e-8))
    psi = float(o.get("momentum_decay", 4e-3))
    m, v = _zeros(st, "m", g), _zeros(st, "v", g)
    mu = lambda s: b1 * (1 - 0.5 * 0.96 ** (s * psi))  # noqa: E731
    st["prod"] = st.get("prod", 1.0) * mu(t)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    d = np.sqrt(v / (1 - b2 ** t)) + eps
    return lr * (1 - mu(t)) / (1 - st["prod"]) * g / d + lr * mu(t + 1) / (1 - st["prod"] * mu(t + 1)) * m / d


def _radam(o, st, g, t, lr):
    b1, b2, eps = float(o.get("beta1", 0.9)), float(o.get("beta2", 0.999)), float(o.get("eps", 1e-8))
    m, v = _zeros(st, "m", g), _zeros(st, "v", g)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    mh = m / (1 - b1 ** t)
    rho_inf = 2 / (1 - b2) - 1
    rho_t = rho_inf - 2 * t * b2 ** t / (1 - b2 ** t)
    if rho_t <= 5:
        return lr * mh
    r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
    return lr * mh * math.sqrt(1 - b2 ** t) / (np.sqrt(v) + eps) * r


def _lion(o, st, g, t, lr):
    b1, b2 = float(o.get("beta1", 0.9)), float(o.get("beta2", 0.99))
    m = _zeros(st, "m", g)
    c = b1 * m + (1 - b1) * g
    m[...] = b2 * m + (1 - b2) * g
    return lr * np.sign(c)


def _lamb(o, st, g, t, lr, w, lam):
    """optax.lamb: Adam's u plus lam*w, scaled by the trust ratio |w|/|u| per tensor."""
    b1, b2 = float(o.get("beta1", 0.9)), float(o.get("beta2", 0.999))
    eps, eps_root = float(o.get("eps", 1e-6)), float(o.get("eps_root", 0.0))
    m, v = _zeros(st, "m", g), _zeros(st, "v", g)
    m[...] = b1 * m + (1 - b1) * g
    v[...] = b2 * v + (1 - b2) * g * g
    u = m / (1 - b1 ** t) / (np.sqrt(v / (1 - b2 ** t) + eps_root) + eps) + lam * w
    wn, un = np.linalg.norm(w), np.linalg.norm(u)
    return lr * (1.0 if wn == 0 or un == 0 else wn / un) * u


def _adafactor(o, st, g, t, lr, w):
    """torch.optim.Adafactor: factored over the last two dimensions of >= 2-D tensors."""
    eps1 = o.get("eps1", float(np.finfo(np.float32).eps))
    eps2, d = float(o.get("eps2", 1e-3)), float(o.get("d", 1.0))
    b2 = t ** float(o.get("beta2_decay", -0.8))
    rho = min(lr, 1 / math.sqrt(t))
    alpha = max(eps2, np.linalg.norm(w) / math.sqrt(w.size)) * rho
    if g.ndim > 1:
        r = _zeros(st, "r", (g * g).mean(axis=-1, keepdims=True))
        c = _zeros(st, "c", (g * g).mean(axis=-2, keepdims=True))
        r += b2 * ((g * g).mean(axis=-1, keepdims=True) - r)
        c += b2 * ((g * g).mean(axis=-2, keepdims=True) - c)
        v = r * c / np.maximum(r.mean(axis=-2, keepdims=True), eps1)
    else:
        v = _zeros(st, "v", g)
        v += b2 * (g * g - v)
    u = g / np.sqrt(np.maximum(v, eps1 * eps1))
    return alpha / max(1.0, np.linalg.norm(u) / (math.sqrt(u.size) * d)) * u


FAMILY = {"lion": _lion, "adagrad": _adagrad, "rmsprop": _rmsprop, "adadelta": _adadelta, "adamax": _adamax,
          "nadam": _nadam, "radam": _radam}


def _rel(a: dict, b: dict) -> float:
    scale = max(float(np.max(np.abs(t))) for t in b.values())
    return max(float(np.max(np.abs(a[n] - b[n].astype(np.float64)))) for n in b) / scale


def sensitivity(spec: dict, params: dict, grads: dict, traj: dict) -> dict:
    """Relative error of deliberately wrong readings of the spec: each should be far above
    the tolerance, or the fixture cannot tell that mistake apart."""
    import copy
    out = {}
    has_decay = bool(spec["optimizer"].get("weight_decay", 0.0)) or bool(spec.get("regularizers"))
    if has_decay:
        v = copy.deepcopy(spec)
        v["optimizer"]["weight_decay"] = 0.0
        v["regularizers"] = []
        for g in v.get("groups", []):
            g.pop("regularizers", None)
            g.get("optimizer", {}).pop("weight_decay", None)
        out["no_decay"] = _rel(replay(v, params, grads), traj)
        if any(role(n) == "bias" for n in params):
            v = copy.deepcopy(spec)
            v["decay_bias"] = not spec.get("decay_bias", False)
            for g in v.get("groups", []):
                g.pop("regularizers", None)
                g.get("optimizer", {}).pop("weight_decay", None)
            out["flip_decay_bias"] = _rel(replay(v, params, grads), traj)
        regs = [r for r in spec.get("regularizers", []) if r["name"] in ("l2", "elastic")]
        if regs:
            v = copy.deepcopy(spec)
            conv = spec.get("convention", "pytorch")
            for r in v["regularizers"]:
                if r["name"] in ("l2", "elastic"):
                    cur = r.get("convention", "full" if conv == "keras" else "half")
                    r["convention"] = "half" if cur == "full" else "full"
            out["swap_l2_convention"] = _rel(replay(v, params, grads), traj)
    o = spec["optimizer"]
    kind, _ = optimizer_decay_kind(spec.get("convention", "pytorch"), o["name"], bool(o.get("decoupled_weight_decay", False)))
    wd = float(o.get("weight_decay", 0.0))
    plain_sgd = o["name"] in ("sgd", "sgdw") and not float(o.get("momentum", 0.0))
    if wd and not plain_sgd:  # for plain SGD coupled and lr-scaled decoupled decay coincide
        out["swap_coupling"] = _rel(replay(spec, params, grads, variant=("swap_coupling",)), traj)
    if (wd and kind == "decoupled") or any(r["name"] == "weight_decay" for r in spec.get("regularizers", [])):
        out["swap_decay_scale"] = _rel(replay(spec, params, grads, variant=("swap_decay_scale",)), traj)
    sch = spec.get("schedule", {})
    varying_lr = sch.get("name", "constant") != "constant" or bool(sch.get("warmup"))
    if o["name"] in ("adam", "adamw"):
        out["swap_eps_placement"] = _rel(replay(spec, params, grads, variant=("swap_eps",)), traj)
    elif o["name"] in ("sgd", "sgdw") and float(o.get("momentum", 0.0)) and (varying_lr or float(o.get("dampening", 0.0))):
        # with a constant lr and no dampening the two forms are the same algorithm
        out["swap_momentum_form"] = _rel(replay(spec, params, grads, variant=("swap_momentum",)), traj)
    if varying_lr:
        out["schedule_time_plus_1"] = _rel(replay(spec, params, grads, time_offset=1), traj)
    return out


def check_file(path: str, with_sensitivity: bool = False) -> dict:
    import h5py
    with h5py.File(path, "r") as f:
        spec = tomllib.loads(f.attrs["spec"])
        params = {n: f["params"][n][()] for n in f["params"]}
        grads = {n: f["grads"][n][()] for n in f["grads"]}
        traj = {n: f["trajectory"][n][()] for n in f["trajectory"]}
    ref = replay(spec, params, grads)
    max_abs = max(float(np.max(np.abs(t))) for t in traj.values())
    max_err = max(float(np.max(np.abs(ref[n] - traj[n].astype(np.float64)))) for n in traj)
    # error of the last step relative to the largest total movement of a tensor
    move = max(float(np.max(np.abs(traj[n][-1].astype(np.float64) - traj[n][0]))) for n in traj)
    r = {"max_abs_trajectory": max_abs, "max_abs_error": max_err,
         "rel_error": max_err / max(max_abs, 1e-30), "max_movement": move}
    if with_sensitivity:
        r["sensitivity"] = sensitivity(spec, params, grads, traj)
    return r


def main(argv=None):
    import glob
    import os
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("paths", nargs="+", help="fixture files or directories")
    ap.add_argument("--rtol", type=float, default=2e-5,
                    help="max |ours - framework| / max|trajectory| (default 2e-5)")
    a = ap.parse_args(argv)
    files = []
    for p in a.paths:
        files += sorted(glob.glob(os.path.join(p, "*.h5"))) if os.path.isdir(p) else [p]
    bad = 0
    for fn in files:
        r = check_file(fn)
        ok = r["rel_error"] <= a.rtol
        bad += not ok
        print(f"{'ok  ' if ok else 'FAIL'} {os.path.basename(fn):50s} rel {r['rel_error']:.2e} "
              f"abs {r['max_abs_error']:.2e} max|w| {r['max_abs_trajectory']:.3f}")
    print(f"{len(files) - bad} passed, {bad} failed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
