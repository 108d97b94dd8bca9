"""The optimiser's parts: warm-up then cosine schedule, no weight decay on norms and biases."""

from __future__ import annotations

import math

import torch
from torch import nn

from lightnets.train.optim import build_optimizer, param_groups, warmup_cosine


def test_warmup_then_cosine():
    factor = warmup_cosine(warmup_steps=4, total_steps=12)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0 and math.isclose(factor(8), 0.5) and factor(12) == 0.0
    assert all(factor(s) >= factor(s + 1) for s in range(4, 12))


def test_no_weight_decay_on_norms_and_biases():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 0.1)
    assert [p.shape for p in decay["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert len(no_decay["params"]) == 4 and no_decay["weight_decay"] == 0.0
    sgd = build_optimizer(model, "sgd", 0.1, 1e-4)
    assert sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["weight_decay"] == 1e-4
    assert isinstance(build_optimizer(model, "adamw", 1e-3, 0.05), torch.optim.AdamW)
