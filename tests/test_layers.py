"""The shared building blocks: shapes, gradients, stride/dilation arithmetic, shuffle algebra."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers import (
    ChannelShuffle,
    ConvNormAct,
    DepthwiseSeparableConv,
    InvertedResidual,
    SpatiallySeparableConv,
    SqueezeExcite,
    channel_shuffle,
    make_divisible,
)


def grads_flow(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run forward and backward; every parameter and the input must receive a gradient."""
    x = x.clone().requires_grad_(True)
    out = module(x)
    out.square().mean().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    for name, param in module.named_parameters():
        assert param.grad is not None, f"no gradient for {name}"
    return out


@pytest.mark.parametrize("value,divisor,expected", [
    (32, 8, 32), (32 * 0.35, 8, 16), (24 * 0.5, 8, 16), (96 * 0.35, 8, 32), (3, 8, 8),
    (16 * 0.25, 8, 8), (10, 4, 12), (91, 8, 88), (100, 8, 104)])
def test_make_divisible(value, divisor, expected):
    assert make_divisible(value, divisor) == expected
    assert make_divisible(value, divisor) % divisor == 0


@pytest.mark.parametrize("kernel,stride,dilation,size,expected", [
    (3, 1, 1, 17, 17), (3, 2, 1, 17, 9), (3, 2, 1, 16, 8), (5, 1, 2, 15, 15), (3, 1, 4, 20, 20),
    (7, 2, 1, 224, 112), (1, 2, 1, 7, 4), ((1, 7), 1, 1, 9, 9)])
def test_conv_norm_act_same_padding(kernel, stride, dilation, size, expected):
    block = ConvNormAct(4, 6, kernel, stride=stride, dilation=dilation)
    out = grads_flow(block, torch.randn(2, 4, size, size))
    assert out.shape == (2, 6, expected, expected)
    assert (out >= 0).all(), "ReLU output"


@pytest.mark.parametrize("kernel,stride,dilation", [(3, 2, 1), (2, 2, 1), (4, 2, 1), (3, 1, 1),
                                                    (3, 2, 2), (1, 2, 1), (5, 3, 1)])
def test_transposed_conv_multiplies_size_by_stride(kernel, stride, dilation):
    block = ConvNormAct(4, 2, kernel, stride=stride, dilation=dilation, transposed=True)
    out = grads_flow(block, torch.randn(1, 4, 5, 7))
    assert out.shape == (1, 2, 5 * stride, 7 * stride)
    assert isinstance(block.conv, nn.ConvTranspose2d)


def test_conv_norm_act_parts_and_groups():
    plain = ConvNormAct(8, 8, 1, norm_layer=None, act_layer=None)
    assert isinstance(plain.norm, nn.Identity) and isinstance(plain.act, nn.Identity)
    assert plain.conv.bias is not None, "without a norm the conv keeps its bias"
    grouped = ConvNormAct(8, 16, 3, groups=4)
    assert grouped.conv.weight.shape == (16, 2, 3, 3) and grouped.conv.bias is None
    depthwise = ConvNormAct(8, 8, 3, groups=8)
    assert depthwise.conv.weight.shape == (8, 1, 3, 3)
    with pytest.raises(ValueError, match="divisible by groups"):
        ConvNormAct(6, 8, 3, groups=4)


def test_dilation_grows_receptive_field_not_size():
    block = ConvNormAct(1, 1, 3, dilation=3, norm_layer=None, act_layer=None)
    nn.init.ones_(block.conv.weight)
    nn.init.zeros_(block.conv.bias)
    x = torch.zeros(1, 1, 13, 13)
    x[0, 0, 6, 6] = 1.0
    out = block(x)[0, 0]
    assert out.shape == (13, 13)
    # a dilated 3x3 touches the centre from offsets {-3, 0, 3} only
    assert set(map(tuple, out.nonzero().tolist())) == {(r, c) for r in (3, 6, 9) for c in (3, 6, 9)}


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
