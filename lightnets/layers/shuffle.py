"""Channel shuffle (Zhang et al., "ShuffleNet", CVPR 2018, Sec. 3.1): lets information flow
between the groups of consecutive group convolutions."""

from __future__ import annotations

import torch
from torch import nn


def channel_shuffle(x: torch.Tensor, groups: int) -> torch.Tensor:
    """Interleave the channels of ``groups`` groups: ``(g, c/g) -> (c/g, g)``.

    Only the channel axis is reshaped (no size is read from the batch or spatial axes), so the
    op traces and exports with a dynamic batch. ``channel_shuffle(channel_shuffle(x, g), c // g)``
    is the identity.
    """
    if x.shape[1] % groups:
        raise ValueError(f"channel_shuffle: {x.shape[1]} channels not divisible by {groups} groups")
    return x.unflatten(1, (groups, -1)).transpose(1, 2).flatten(1, 2)


class ChannelShuffle(nn.Module):
    """Module form of :func:`channel_shuffle`."""

    def __init__(self, groups: int) -> None:
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return channel_shuffle(x, self.groups)

    def extra_repr(self) -> str:
        return f"groups={self.groups}"
