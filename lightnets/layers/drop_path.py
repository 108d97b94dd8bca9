"""Stochastic depth (Huang et al., "Deep Networks with Stochastic Depth", ECCV 2016,
arXiv:1603.09382): while training, a residual block's branch is dropped for a random part of
the batch, so the block passes its shortcut alone; the branches kept are scaled by
``1 / (1 - p)`` so that evaluation, which keeps every branch unscaled, sees the same expected
sum. Per sample ("row" mode), as timm's ``drop_path`` does, rather than the paper's whole
mini-batch: each image trains a different shallower network.

The layer is torchvision's :class:`torchvision.ops.StochasticDepth`; a rate of zero builds
``nn.Identity`` instead, so a model built without stochastic depth is the very network it was
before (same modules, same outputs bit for bit).
"""

from __future__ import annotations

from torch import nn
from torchvision.ops import StochasticDepth


def drop_path(rate: float) -> nn.Module:
    """The branch-dropping layer of one residual block: identity at ``rate`` 0."""
    if not 0 <= rate < 1:
        raise ValueError(f"drop path rate must be in [0, 1), got {rate}")
    return StochasticDepth(rate, "row") if rate > 0 else nn.Identity()


def drop_path_rates(rate: float, blocks: int) -> list[float]:
    """Each block's drop probability under Huang et al.'s linear decay rule: block ``l`` of
    ``L`` (counted from 1, the whole trunk's blocks, residual or not) drops with probability
    ``rate * l / L``, so the last block drops at ``rate`` and earlier, more basic features are
    dropped less. timm's ResNet and EfficientNet builders spread ``drop_path_rate`` linearly
    over the blocks the same way."""
    if not 0 <= rate < 1:
        raise ValueError(f"drop_path_rate must be in [0, 1), got {rate}")
    return [rate * (index + 1) / blocks for index in range(blocks)]
