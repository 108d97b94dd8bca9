"""Xception's block and unit: shapes, shortcuts, leading ReLU, dilation, bad arguments."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers.xception_block import XceptionBlock, XceptionUnit
from tests.conftest import grads_flow


@pytest.mark.parametrize("in_ch,widths,stride,size,expected_size", [
    (8, (16, 16), 2, 9, 5), (8, (16, 16), 2, 8, 4), (16, (16, 16, 16), 1, 7, 7),
    (8, (12,), 1, 6, 6), (4, (8, 12), 2, 1, 1)])
def test_xception_block_shapes_and_gradients(in_ch, widths, stride, size, expected_size):
    block = XceptionBlock(in_ch, widths, stride)
    out = grads_flow(block, torch.randn(2, in_ch, size, size))
    assert out.shape == (2, widths[-1], expected_size, expected_size)
    assert len(block.units) == len(widths)


def test_xception_block_shortcut_kinds():
    identity = XceptionBlock(16, (16, 16, 16))
    assert isinstance(identity.shortcut, nn.Identity) and isinstance(identity.pool, nn.Identity)
    downsample = XceptionBlock(16, (32, 32), stride=2)
    conv = downsample.shortcut.conv
    assert conv.kernel_size == (1, 1) and conv.stride == (2, 2) and conv.bias is None
    assert isinstance(downsample.shortcut.norm, nn.BatchNorm2d)
    assert isinstance(downsample.pool, nn.MaxPool2d)
    widen = XceptionBlock(16, (24,), stride=1)  # width change alone needs a projection
    assert widen.shortcut.conv.stride == (1, 1) and widen.shortcut.conv.out_channels == 24


def test_xception_block_is_identity_when_the_residual_branch_is_silenced():
    block = XceptionBlock(8, (8, 8, 8)).eval()
    last_norm = block.units[-1].conv.pointwise.norm
    nn.init.zeros_(last_norm.weight)
    nn.init.zeros_(last_norm.bias)
    x = torch.randn(2, 8, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x)


def test_leading_relu_and_pre_activation_shortcut():
    """A negative input is zeroed by the leading ReLU, so the residual branch gives 0 and the
    shortcut passes the raw (negative) input; without the leading ReLU the branch sees it."""
    x = -torch.rand(1, 8, 4, 4) - 0.1
    with_relu = XceptionBlock(8, (8, 8)).eval()
    without = XceptionBlock(8, (8, 8), leading_act=False).eval()
    without.load_state_dict(with_relu.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(with_relu(x), x)
        assert not torch.allclose(without(x), x)
    assert isinstance(without.units[0].act, nn.Identity)
    assert isinstance(without.units[1].act, nn.ReLU)


def test_separable_unit_has_no_norm_act_or_bias_inside():
    unit = XceptionUnit(6, 10)
    assert isinstance(unit.conv.depthwise.norm, nn.Identity)
    assert isinstance(unit.conv.depthwise.act, nn.Identity)
    assert isinstance(unit.conv.pointwise.act, nn.Identity)
    assert isinstance(unit.conv.pointwise.norm, nn.BatchNorm2d)
    assert all(m.bias is None for m in unit.modules() if isinstance(m, nn.Conv2d))
    # depthwise 3x3 + pointwise + BN (gamma, beta)
    assert sum(p.numel() for p in unit.parameters()) == 6 * 9 + 6 * 10 + 2 * 10


def test_xception_block_dilation_keeps_size():
    block = XceptionBlock(8, (8, 8), dilation=2)
    depthwise = block.units[0].conv.depthwise.conv
    assert depthwise.dilation == (2, 2) and depthwise.padding == (2, 2)
    assert grads_flow(block, torch.randn(1, 8, 9, 9)).shape == (1, 8, 9, 9)


@pytest.mark.parametrize("kwargs", [{"channels": ()}, {"channels": (8,), "stride": 3}])
def test_xception_block_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        XceptionBlock(8, **kwargs)
