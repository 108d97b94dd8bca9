"""GhostNet's blocks: the Ghost module's channel split and the Ghost bottleneck's shortcuts."""

from __future__ import annotations

import math
from functools import partial

import pytest
import torch
from torch import nn

from lightnets.layers import SqueezeExcite
from lightnets.layers.ghost import GhostBottleneck, GhostModule


# -- Ghost module ---------------------------------------------------------------------------------
@pytest.mark.parametrize("out_channels, ratio", [(16, 2), (15, 2), (1, 2), (7, 3), (9, 3)])
def test_ghost_module_output_channels(out_channels, ratio):
    module = GhostModule(5, out_channels, ratio=ratio)
    primary = math.ceil(out_channels / ratio)
    assert module.primary.conv.out_channels == primary
    assert module.cheap.conv.out_channels == primary * (ratio - 1)
    assert module.cheap.conv.groups == primary  # depthwise: each ghost map from one intrinsic one
    assert module(torch.randn(2, 5, 6, 6)).shape == (2, out_channels, 6, 6)


def test_ghost_module_first_channels_are_the_primary_maps():
    torch.manual_seed(0)
    module = GhostModule(4, 9).eval()
    x = torch.randn(1, 4, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(module(x)[:, :5], module.primary(x))


def test_ghost_module_activation_is_optional():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 5, 5)
    assert (GhostModule(4, 8)(x) >= 0).all()
    linear = GhostModule(4, 8, act_layer=None)
    assert isinstance(linear.primary.act, nn.Identity) and isinstance(linear.cheap.act, nn.Identity)
    assert (linear(x) < 0).any()


def test_ghost_module_stride_and_bad_ratio():
    assert GhostModule(3, 8, stride=2)(torch.randn(1, 3, 7, 7)).shape == (1, 8, 4, 4)
    with pytest.raises(ValueError, match="ratio"):
        GhostModule(3, 8, ratio=1)


# -- Ghost bottleneck -----------------------------------------------------------------------------
@pytest.mark.parametrize("size", [8, 9])
def test_ghost_bottleneck_stride_2_shapes(size):
    block = GhostBottleneck(16, 48, 24, kernel_size=5, stride=2)
    assert not block.has_residual
    assert block.depthwise.conv.stride == (2, 2) and block.depthwise.conv.kernel_size == (5, 5)
    assert block.shortcut[0].conv.stride == (2, 2) and block.shortcut[0].conv.groups == 16
    out = block(torch.randn(2, 16, size, size))
    assert out.shape == (2, 24, math.ceil(size / 2), math.ceil(size / 2))


def test_ghost_bottleneck_residual_on_and_off():
    identity = GhostBottleneck(16, 32, 16).eval()
    assert identity.has_residual and isinstance(identity.shortcut, nn.Identity)
    assert isinstance(identity.depthwise, nn.Identity)
    # a zero-initialised last BN makes the residual block the identity
    for norm in (identity.ghost2.primary.norm, identity.ghost2.cheap.norm):
        nn.init.zeros_(norm.weight)
    x = torch.randn(1, 16, 5, 5)
    with torch.no_grad():
        torch.testing.assert_close(identity(x), x)
    widening = GhostBottleneck(16, 32, 24)
    assert not widening.has_residual and isinstance(widening.shortcut, nn.Sequential)
    assert widening(x).shape == (1, 24, 5, 5)
    with pytest.raises(ValueError, match="stride"):
        GhostBottleneck(16, 32, 16, stride=3)


def test_ghost_bottleneck_gradient_flow_with_se():
    se = partial(SqueezeExcite, rd_ratio=0.25, rd_divisor=4, gate_layer=nn.Hardsigmoid)
    block = GhostBottleneck(8, 24, 12, stride=2, se_layer=se)
    x = torch.randn(2, 8, 6, 6, requires_grad=True)
    block(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    missing = [n for n, p in block.named_parameters() if p.grad is None]
    assert not missing, missing
