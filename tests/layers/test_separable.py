"""Depthwise-separable and spatially separable convolutions: shapes, parameter savings, options."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers import DepthwiseSeparableConv, SpatiallySeparableConv
from tests.conftest import grads_flow


def test_depthwise_separable_conv():
    block = DepthwiseSeparableConv(8, 16, stride=2)
    out = grads_flow(block, torch.randn(2, 8, 9, 9))
    assert out.shape == (2, 16, 5, 5)
    assert block.depthwise.conv.groups == 8 and block.pointwise.conv.kernel_size == (1, 1)
    full = 8 * 16 * 9
    separable = 8 * 9 + 8 * 16
    assert sum(p.numel() for p in (block.depthwise.conv.weight, block.pointwise.conv.weight)) \
        == separable < full
    xception_style = DepthwiseSeparableConv(8, 8, dw_norm=False, dw_act=False, pw_act=False,
                                            residual=True)
    assert isinstance(xception_style.depthwise.norm, nn.Identity)
    assert xception_style.has_residual
    x = torch.randn(1, 8, 5, 5)
    with torch.no_grad():
        assert torch.allclose(xception_style(x), xception_style.pointwise(
            xception_style.depthwise(x)) + x)


@pytest.mark.parametrize("order", ["kx1", "1xk"])
def test_spatially_separable_conv(order):
    block = SpatiallySeparableConv(4, 6, kernel_size=7, mid_channels=5, order=order)
    out = grads_flow(block, torch.randn(2, 4, 12, 10))
    assert out.shape == (2, 6, 12, 10)
    first = (7, 1) if order == "kx1" else (1, 7)
    assert block.first.conv.kernel_size == first
    assert block.second.conv.kernel_size == first[::-1]
    assert sum(p.numel() for p in block.parameters() if p.dim() == 4) == 4 * 5 * 7 + 5 * 6 * 7
    with pytest.raises(ValueError, match="order"):
        SpatiallySeparableConv(4, 4, order="diagonal")


def test_spatially_separable_stride():
    block = SpatiallySeparableConv(2, 2, kernel_size=3, stride=2)
    assert block(torch.randn(1, 2, 9, 9)).shape == (1, 2, 5, 5)
