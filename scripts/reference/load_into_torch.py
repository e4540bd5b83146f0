#!/usr/bin/env python3
"""Loads a Decoupled checkpoint of fmnist_2c2d(_bn), fmnist_mlp or fmnist_logreg into the equivalent torch.nn.Sequential
with load_state_dict and prints its test loss and accuracy (docs/problems.md).

Usage: python3 scripts/reference/load_into_torch.py RUN_DIR/checkpoints/ckpt-....h5 DATA.h5
Parameters are /params/<name> under PyTorch's names and layouts; batch-norm running
statistics are float32 bit patterns in the run state's "model" object (/meta/run_state).
"""
import json, sys
import h5py, numpy as np, torch
from fmnist_2c2d import evaluate, load, model_for

with h5py.File(sys.argv[1], "r") as f:
    state = {name: torch.from_numpy(f["params"][name][...]) for name in f["params"]}
    extra = json.loads(bytes(f["meta/run_state"][()]).decode()).get("model") or {}
state |= {k: torch.from_numpy(np.array(v, dtype=np.uint32).view(np.float32)) for k, v in extra.get("buffers", {}).items()}
state |= {k: torch.tensor(v) for k, v in extra.get("counters", {}).items()}
model = model_for(state)
model.load_state_dict(state)  # strict: every tensor of the torch model is present, shapes match
print(json.dumps(dict(zip(("test_loss", "test_acc"), evaluate(model, *load(sys.argv[2], "test"))))))
