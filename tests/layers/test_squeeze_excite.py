"""``SqueezeExcite``: one gate in (0, 1) per sample and channel, and the reduced width."""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers import SqueezeExcite
from tests.conftest import grads_flow


def test_squeeze_excite_rescales_channels():
    block = SqueezeExcite(32, rd_ratio=1 / 16)
    assert block.fc1.out_channels == 2
    x = torch.randn(2, 32, 5, 5)
    out = grads_flow(block, x)
    assert out.shape == x.shape
    scale = out / x
    # one gate per (sample, channel), in (0, 1)
    assert torch.allclose(scale, scale[:, :, :1, :1].expand_as(scale), atol=1e-5)
    assert (scale > 0).all() and (scale < 1).all()
    v3 = SqueezeExcite(72, rd_ratio=0.25, rd_divisor=8, gate_layer=nn.Hardsigmoid)
    assert v3.fc1.out_channels == 24
