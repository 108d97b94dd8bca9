"""Recomputing BatchNorm's running statistics from the current weights ("precise BN": Wu &
Johnson, "Rethinking 'Batch' in BatchNorm", 2021), for models whose BatchNorm averages slowly.

With momentum 0.01 (MobileNetV3's, after the TensorFlow reference's decay 0.99) the running
statistics average over the last few hundred steps, while on a short run the weights move much
faster: measured on the digits, MobileNetV3-Large reached 92% training accuracy while its
eval-mode predictions stayed at chance (10%); the same weights with recomputed statistics scored
98%. Recomputing over a few dozen training batches before each validation fixes it.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

# Below this momentum a BatchNorm's running average lags a short run's weights.
SLOW_MOMENTUM = 0.1


def batchnorms(model: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in model.modules()
            if isinstance(m, nn.modules.batchnorm._BatchNorm) and m.track_running_stats]


def has_slow_batchnorm(model: nn.Module) -> bool:
    """Whether some BatchNorm averages more slowly than PyTorch's default momentum."""
    return any(m.momentum is not None and m.momentum < SLOW_MOMENTUM for m in batchnorms(model))


@torch.no_grad()
def recompute_batchnorm_stats(model: nn.Module, images: Iterable[torch.Tensor]) -> int:
    """Replace every BatchNorm's running mean and variance by their plain average over the
    ``images`` batches, computed in training mode with the current weights. The model is left
    in eval mode; returns the number of batches used."""
    norms = batchnorms(model)
    momenta = [m.momentum for m in norms]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # cumulative average over the batches below
    model.train()
    count = 0
    try:
        for batch in images:
            model(batch)
            count += 1
    finally:
        for norm, momentum in zip(norms, momenta):
            norm.momentum = momentum
        model.eval()
    return count
