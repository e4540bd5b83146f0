#!/usr/bin/env python3
"""Writes Tests/DecoupledTrainingTests/Fixtures/layers/torch-layers.h5: one training step of a
small layer model in PyTorch — conv (same, strided, padded), batch norm 2d and 1d, ReLU, GELU,
tanh, max and average pooling, flatten, dense — so LayerConformanceTests can check that
Decoupled's forward pass, loss, gradients and batch-norm running statistics match PyTorch.

Layout: attribute `model` (the [model] table body in our config language), /x [40, 128]
float32, /y [40] int32, /params/<name> and /grads/<name> under nn.Sequential names, /loss
(float64 scalar, mean cross-entropy), /buffers/<name> (running statistics after the step).
Needs torch and h5py (never needed by CI); the output is deterministic (seed 0).
"""
import os

import h5py
import numpy as np
import torch
from torch import nn

MODEL = """input_shape = [2, 8, 8]
layers = [
  { type = "conv2d", filters = 4, kernel = 3, padding = "same" }, { type = "batch_norm" }, { type = "relu" },
  { type = "max_pool", size = 2 },
  { type = "conv2d", filters = 3, kernel = [3, 2], stride = 2, padding = 1 }, { type = "gelu" },
  { type = "avg_pool", size = 2, stride = 1, padding = 1 }, { type = "flatten" },
  { type = "dense", units = 12 }, { type = "batch_norm", momentum = 0.2 }, { type = "tanh" },
  { type = "dense", units = 5 },
]"""


def main():
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(2, 4, 3, padding="same"), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 3, (3, 2), stride=2, padding=1), nn.GELU(), nn.AvgPool2d(2, stride=1, padding=1),
        nn.Flatten(), nn.Linear(36, 12), nn.BatchNorm1d(12, momentum=0.2), nn.Tanh(), nn.Linear(12, 5))
    with torch.no_grad():  # non-trivial batch-norm parameters
        for i in (1, 9):
            model[i].weight.uniform_(0.5, 1.5)
            model[i].bias.uniform_(-0.3, 0.3)
    x = torch.randn(40, 2, 8, 8)
    y = torch.randint(0, 5, (40,))
    params = {k: v.detach().clone() for k, v in model.named_parameters()}
    loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    out = os.path.join(os.path.dirname(__file__), "../../Tests/DecoupledTrainingTests/Fixtures/layers/torch-layers.h5")
    with h5py.File(out, "w") as f:
        f.attrs["model"] = MODEL
        f.attrs["framework"] = f"torch {torch.__version__}"
        f["x"] = x.reshape(40, -1).numpy()
        f["y"] = y.numpy().astype(np.int32)
        f["loss"] = np.float64(loss.item())
        for k, v in params.items():
            f[f"params/{k}"] = v.numpy()
            f[f"grads/{k}"] = dict(model.named_parameters())[k].grad.numpy()
        for k, v in model.state_dict().items():
            if "running" in k:
                f[f"buffers/{k}"] = v.numpy()


if __name__ == "__main__":
    main()
