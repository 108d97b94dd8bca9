"""The optimiser's parts: warm-up then cosine schedule, no weight decay on norms and biases,
fused updates equal to the loop's."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from lightnets.train.optim import build_optimizer, fused_by_default, param_groups, warmup_cosine


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


def test_optimizers_run_fused_on_the_cpu_and_match_the_loop():
    torch.manual_seed(0)  # (no bias before the norm: Adam would amplify its zero gradient's noise)
    model = nn.Sequential(nn.Conv2d(3, 4, 3, bias=False), nn.BatchNorm2d(4), nn.Flatten(),
                          nn.Linear(16, 2))
    looped = copy.deepcopy(model)
    x = torch.randn(8, 3, 4, 4)
    loops = {"sgd": lambda groups: torch.optim.SGD(groups, lr=0.1, momentum=0.9, nesterov=True,
                                                   foreach=False),
             "adamw": lambda groups: torch.optim.AdamW(groups, lr=0.1, foreach=False)}
    assert fused_by_default(torch.device("cpu"))
    for name, make_loop in loops.items():
        fused = build_optimizer(model, name, 0.1, 0.01)
        assert fused.param_groups[0]["fused"] is True
        for optimizer, net in ((fused, model), (make_loop(param_groups(looped, 0.01)), looped)):
            for _ in range(3):
                optimizer.zero_grad()
                net(x).square().mean().backward()
                optimizer.step()
        for a, b in zip(model.parameters(), looped.parameters()):
            assert torch.allclose(a, b, atol=1e-6), name
