"""``ConvNormAct``: same padding, transposed convolutions, optional parts, groups and dilation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers import ConvNormAct
from tests.conftest import grads_flow


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
