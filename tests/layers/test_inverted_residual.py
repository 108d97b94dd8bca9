"""``InvertedResidual``: residual rule, linear bottleneck, MobileNetV3 options and dilation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers import InvertedResidual, SqueezeExcite
from tests.conftest import grads_flow


@pytest.mark.parametrize("inp,out,mid,stride,residual", [
    (16, 16, 96, 1, True), (16, 24, 96, 2, False), (16, 24, 96, 1, False), (32, 32, 32, 1, True)])
def test_inverted_residual(inp, out, mid, stride, residual):
    block = InvertedResidual(inp, out, mid, stride=stride)
    assert block.has_residual is residual
    assert isinstance(block.expand, nn.Identity) is (mid == inp)
    assert isinstance(block.project.act, nn.Identity), "linear bottleneck"
    y = grads_flow(block, torch.randn(2, inp, 8, 8))
    assert y.shape == (2, out, 8 // stride, 8 // stride)


def test_inverted_residual_v3_options():
    block = InvertedResidual(16, 24, 64, stride=2, kernel_size=5, act_layer=nn.Hardswish,
                             se_layer=lambda c: SqueezeExcite(c, 0.25, rd_divisor=8,
                                                              gate_layer=nn.Hardsigmoid))
    assert block.depthwise.conv.kernel_size == (5, 5)
    assert isinstance(block.depthwise.act, nn.Hardswish) and isinstance(block.se, SqueezeExcite)
    assert grads_flow(block, torch.randn(1, 16, 9, 9)).shape == (1, 24, 5, 5)


def test_inverted_residual_dilation_keeps_size():
    block = InvertedResidual(8, 8, 48, stride=1, dilation=2)
    assert block(torch.randn(1, 8, 10, 10)).shape == (1, 8, 10, 10)
    assert block.depthwise.conv.dilation == (2, 2) and block.depthwise.conv.padding == (2, 2)
