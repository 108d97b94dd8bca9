"""Residual blocks (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016, Fig. 5)
with the aggregated group convolution of ResNeXt (Xie et al., "Aggregated Residual
Transformations for Deep Neural Networks", CVPR 2017, Fig. 3c) and the squeeze-excite gate of
SE-ResNet (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018, Fig. 3).

Both blocks compute ``act(se(residual(x)) + shortcut(x))``. The shortcut is the identity when the
shapes agree, else a projection (1x1 convolution + norm, the paper's option B) that the block
builds itself unless one is passed as ``downsample``. ``drop_path_rate`` drops the residual
branch (stochastic depth, Huang et al. 2016) for that share of the images while training, in
every block, the projection ones too, as timm's ResNet does.
"""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.drop_path import drop_path
from lightnets.layers.helpers import LayerFactory, make_layer


def bottleneck_width(planes: int, groups: int = 1, base_width: int = 64) -> int:
    """Width of the inner convolution(s): ``int(planes * base_width / 64) * groups``.

    ``groups=1, base_width=64`` gives ``planes`` (plain ResNet); ``groups=32, base_width=4`` gives
    ResNeXt's "32x4d" (Xie et al. 2017, Table 1); ``base_width=128`` a Wide ResNet's doubled width.
    """
    return int(planes * base_width / 64) * groups


def projection_shortcut(in_channels: int, out_channels: int, stride: int,
                        norm_layer: LayerFactory | None) -> nn.Module:
    """The shortcut for ``in_channels -> out_channels`` at ``stride``: the identity when the
    shapes agree, else a strided 1x1 convolution + norm (He et al. 2016, Sec. 3.3, option B)."""
    if stride == 1 and in_channels == out_channels:
        return nn.Identity()
    return ConvNormAct(in_channels, out_channels, 1, stride=stride, norm_layer=norm_layer,
                       act_layer=None)


def _check_common(in_channels: int, out_channels: int, stride: int, dilation: int,
                  groups: int, base_width: int, expansion: int) -> None:
    for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                        ("stride", stride), ("dilation", dilation), ("groups", groups),
                        ("base_width", base_width)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if out_channels % expansion:
        raise ValueError(f"out_channels={out_channels} must be a multiple of the block's "
                         f"expansion {expansion}")


class BasicBlock(nn.Module):
    """Two 3x3 convolutions (He et al. 2016, Fig. 5 left), used by ResNet-18/34.

    The first convolution carries the stride; both are grouped by ``groups`` and the width
    between them is :func:`bottleneck_width` of ``out_channels`` (``out_channels`` by default).
    """

    expansion = 1

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, first_dilation: int | None = None,
                 se_layer: LayerFactory | None = None,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        _check_common(in_channels, out_channels, stride, dilation, groups, base_width,
                      self.expansion)
        width = bottleneck_width(out_channels, groups, base_width)
        self.conv1 = ConvNormAct(in_channels, width, 3, stride, first_dilation or dilation,
                                 groups=groups, norm_layer=norm_layer, act_layer=act_layer)
        self.conv2 = ConvNormAct(width, out_channels, 3, 1, dilation, groups=groups,
                                 norm_layer=norm_layer, act_layer=None)
        self.se = make_layer(se_layer, out_channels)
        self.downsample = downsample if downsample is not None else projection_shortcut(
            in_channels, out_channels, stride, norm_layer)
        self.act = make_layer(act_layer)
        self.drop_path = drop_path(drop_path_rate)

    def zero_init_last(self) -> None:
        """Zero the last norm's scale so the block starts as (ReLU of) its shortcut
        (Goyal et al., "Accurate, Large Minibatch SGD", 2017, Sec. 5.1)."""
        if getattr(self.conv2.norm, "weight", None) is not None:
            nn.init.zeros_(self.conv2.norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.drop_path(self.se(self.conv2(self.conv1(x)))) + self.downsample(x))


class Bottleneck(nn.Module):
    """1x1 reduce -> 3x3 (grouped for ResNeXt) -> 1x1 expand to ``out_channels``
    (He et al. 2016, Fig. 5 right), used by ResNet-50/101/152, ResNeXt and SE-ResNet.

    The inner width is :func:`bottleneck_width` of ``planes = out_channels / 4``. The paper (and
    its Caffe release) strides the first 1x1 convolution (``stride_in_1x1=True``); torchvision's
    "ResNet v1.5" strides the 3x3 one (the default), which costs more MACs but is more accurate.
    """

    expansion = 4

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 downsample: nn.Module | None = None, groups: int = 1, base_width: int = 64,
                 dilation: int = 1, first_dilation: int | None = None,
                 se_layer: LayerFactory | None = None, stride_in_1x1: bool = False,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        _check_common(in_channels, out_channels, stride, dilation, groups, base_width,
                      self.expansion)
        width = bottleneck_width(out_channels // self.expansion, groups, base_width)
        stride_1x1, stride_3x3 = (stride, 1) if stride_in_1x1 else (1, stride)
        self.conv1 = ConvNormAct(in_channels, width, 1, stride_1x1, norm_layer=norm_layer,
                                 act_layer=act_layer)
        self.conv2 = ConvNormAct(width, width, 3, stride_3x3, first_dilation or dilation,
                                 groups=groups, norm_layer=norm_layer, act_layer=act_layer)
        self.conv3 = ConvNormAct(width, out_channels, 1, norm_layer=norm_layer, act_layer=None)
        self.se = make_layer(se_layer, out_channels)
        self.downsample = downsample if downsample is not None else projection_shortcut(
            in_channels, out_channels, stride, norm_layer)
        self.act = make_layer(act_layer)
        self.drop_path = drop_path(drop_path_rate)

    def zero_init_last(self) -> None:
        """Zero the last norm's scale so the block starts as (ReLU of) its shortcut."""
        if getattr(self.conv3.norm, "weight", None) is not None:
            nn.init.zeros_(self.conv3.norm.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.se(self.conv3(self.conv2(self.conv1(x))))
        return self.act(self.drop_path(out) + self.downsample(x))
