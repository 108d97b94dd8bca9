"""ResNet's BasicBlock and Bottleneck: shortcuts, strides, ResNeXt widths, SE, zero init."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.layers.resnet_blocks import BasicBlock, Bottleneck, bottleneck_width
from lightnets.layers.squeeze_excite import SqueezeExcite


def output_size(block: nn.Module, in_channels: int, size: int = 8) -> torch.Size:
    return block(torch.randn(2, in_channels, size, size)).shape


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
@pytest.mark.parametrize("stride", [1, 2])
def test_block_shapes_and_shortcut_kind(block_cls, stride):
    out = 16 * block_cls.expansion
    same = block_cls(out, out, stride)
    assert output_size(same, out) == (2, out, 8 // stride, 8 // stride)
    assert isinstance(same.downsample, nn.Identity) == (stride == 1)
    wider = block_cls(8, out, stride)
    assert output_size(wider, 8) == (2, out, 8 // stride, 8 // stride)
    projection = wider.downsample
    assert projection.conv.kernel_size == (1, 1) and projection.conv.stride == (stride, stride)
    assert isinstance(projection.norm, nn.BatchNorm2d) and isinstance(projection.act, nn.Identity)


def test_odd_size_and_dilation_arithmetic():
    block = Bottleneck(16, 64, stride=2)
    assert output_size(block, 16, size=7) == (2, 64, 4, 4)  # ceil(7 / 2)
    dilated = Bottleneck(16, 64, dilation=2, first_dilation=1)
    assert dilated.conv2.conv.dilation == (1, 1)  # the first block keeps the previous dilation
    dilated = Bottleneck(64, 64, dilation=4)
    assert dilated.conv2.conv.dilation == (4, 4) and dilated.conv2.conv.padding == (4, 4)
    assert output_size(dilated, 64, size=9) == (2, 64, 9, 9)


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
def test_gradient_reaches_every_parameter(block_cls):
    torch.manual_seed(0)
    block = block_cls(16, 32 * block_cls.expansion, stride=2, se_layer=SqueezeExcite)
    x = torch.randn(2, 16, 6, 6, requires_grad=True)
    block(x).square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in block.parameters())


def test_stride_placement():
    v15 = Bottleneck(64, 128, stride=2)
    paper = Bottleneck(64, 128, stride=2, stride_in_1x1=True)
    assert v15.conv1.conv.stride == (1, 1) and v15.conv2.conv.stride == (2, 2)
    assert paper.conv1.conv.stride == (2, 2) and paper.conv2.conv.stride == (1, 1)
    assert output_size(paper, 64) == output_size(v15, 64) == (2, 128, 4, 4)


def test_resnext_width_and_groups():
    assert bottleneck_width(64) == 64
    assert bottleneck_width(64, groups=32, base_width=4) == 128
    assert bottleneck_width(512, groups=32, base_width=8) == 2048
    block = Bottleneck(256, 256, groups=32, base_width=4)
    assert block.conv2.conv.groups == 32
    assert block.conv2.conv.in_channels == block.conv2.conv.out_channels == 128
    assert block.conv1.conv.groups == block.conv3.conv.groups == 1


def test_squeeze_excite_gates_the_residual_branch():
    block = Bottleneck(64, 64, se_layer=SqueezeExcite).eval()
    assert isinstance(block.se, SqueezeExcite) and block.se.fc1.out_channels == 4
    assert isinstance(Bottleneck(64, 64).se, nn.Identity)
    # a closed gate leaves only the shortcut: relu(0 + x)
    nn.init.zeros_(block.se.fc2.weight)
    nn.init.constant_(block.se.fc2.bias, -1e4)
    x = torch.randn(2, 64, 5, 5)
    torch.testing.assert_close(block(x), x.relu())


@pytest.mark.parametrize("block_cls", [BasicBlock, Bottleneck])
def test_zero_init_last_turns_the_block_into_its_shortcut(block_cls):
    block = block_cls(32, 32).eval()
    x = torch.randn(2, 32, 5, 5)
    assert not torch.allclose(block(x), x.relu())
    block.zero_init_last()
    torch.testing.assert_close(block(x), x.relu())


def test_passed_in_downsample_is_used():
    shortcut = nn.Sequential(nn.AvgPool2d(2), nn.Conv2d(16, 64, 1))  # ResNet-D style
    block = Bottleneck(16, 64, stride=2, downsample=shortcut)
    assert block.downsample is shortcut
    assert output_size(block, 16) == (2, 64, 4, 4)


def test_block_bad_arguments():
    with pytest.raises(ValueError, match="multiple of the block's expansion 4"):
        Bottleneck(64, 66)
    with pytest.raises(ValueError, match="stride must be a positive integer"):
        BasicBlock(64, 64, stride=0)
    with pytest.raises(ValueError, match="divisible by groups"):
        BasicBlock(64, 64, groups=3)
