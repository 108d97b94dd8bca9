"""Channel shuffle: the permutation, its inverse, bad groups, tracing and export."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers import ChannelShuffle, channel_shuffle


@pytest.mark.parametrize("channels,groups", [(12, 3), (8, 2), (24, 8), (6, 1), (6, 6)])
def test_channel_shuffle_inverse_and_order(channels, groups):
    x = torch.arange(channels, dtype=torch.float32).view(1, channels, 1, 1).repeat(2, 1, 3, 3)
    shuffled = channel_shuffle(x, groups)
    per_group = channels // groups
    expected = [g * per_group + i for i in range(per_group) for g in range(groups)]
    assert shuffled[0, :, 0, 0].tolist() == expected
    torch.testing.assert_close(channel_shuffle(shuffled, per_group), x)
    assert ChannelShuffle(groups)(x).equal(shuffled)


def test_channel_shuffle_bad_groups():
    with pytest.raises(ValueError, match="not divisible"):
        channel_shuffle(torch.randn(1, 10, 2, 2), 3)


def test_channel_shuffle_traces_and_exports_with_dynamic_batch():
    module = nn.Sequential(nn.Conv2d(6, 6, 1), ChannelShuffle(3))
    traced = torch.jit.trace(module, torch.randn(2, 6, 4, 4))
    x = torch.randn(5, 6, 4, 4)
    torch.testing.assert_close(traced(x), module(x))
    batch = torch.export.Dim("batch", min=1, max=32)
    program = torch.export.export(module, (torch.randn(2, 6, 4, 4),), dynamic_shapes=({0: batch},))
    torch.testing.assert_close(program.module()(x), module(x))
