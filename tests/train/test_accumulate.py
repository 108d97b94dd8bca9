"""Gradient accumulation (--accumulate N): N batches make one optimiser step equal to that of
their union, and an epoch's last, shorter group still steps."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.train.optim import build_optimizer, build_scheduler
from lightnets.train.step import TrainStep, accumulation_group, optimizer_steps


class LinearTask:
    """The least a TrainStep needs of a task: a mean-squared-error forward."""

    name = "linear"

    def forward_loss(self, model, images, labels, aux_weight, label_smoothing, loss=None):
        outputs = model(images)
        return outputs, (outputs - labels).square().mean()


def trained(batches: list[tuple[torch.Tensor, torch.Tensor]], accumulate: int) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Linear(5, 3)
    optimizer = build_optimizer(model, "sgd", lr=0.1, weight_decay=0.01, fused=False)
    scheduler = build_scheduler(optimizer, 1, 4)
    step = TrainStep(model, optimizer, scheduler, task=LinearTask())
    for index, (images, labels) in enumerate(batches):
        group, last = accumulation_group(index, len(batches), accumulate)
        with step.syncing(last):
            _, loss = step.forward(images, labels)
            step.update(loss, group, last)
    assert scheduler.last_epoch == optimizer_steps(len(batches), accumulate)
    return model


def test_accumulation_equals_the_large_batch():
    torch.manual_seed(1)
    images, labels = torch.randn(24, 5), torch.randn(24, 3)
    large = trained([(images[:16], labels[:16]), (images[16:], labels[16:])], 1)
    # 16 = 4 x 4, then a last group of 2 x 4 standing for the last batch of 8
    small = trained([(images[i:i + 4], labels[i:i + 4]) for i in range(0, 24, 4)], 4)
    torch.testing.assert_close(small.weight, large.weight, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(small.bias, large.bias, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(small.weight, trained([(images, labels)], 1).weight)


@pytest.mark.parametrize("steps, accumulate, groups", [
    (3, 2, [(2, False), (2, True), (1, True)]),
    (4, 2, [(2, False), (2, True), (2, False), (2, True)]),
    (2, 1, [(1, True), (1, True)]),
    (2, 5, [(2, False), (2, True)]),
])
def test_groups_of_an_epoch(steps, accumulate, groups):
    assert [accumulation_group(step, steps, accumulate) for step in range(steps)] == groups
    assert optimizer_steps(steps, accumulate) == sum(last for _, last in groups)
