"""Ghost module and Ghost bottleneck (Han et al., "GhostNet: More Features from Cheap
Operations", CVPR 2020, Fig. 2 and Fig. 3).

A Ghost module makes ``out / ratio`` "intrinsic" feature maps with an ordinary (1x1) convolution
and derives the other ``out - out / ratio`` "ghost" maps from them by a cheap depthwise 3x3
convolution, so its cost is about ``1 / ratio`` of a plain convolution's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.drop_path import drop_path
from lightnets.layers.helpers import LayerFactory, make_layer


class GhostModule(nn.Module):
    """Primary ``kernel_size`` conv to ``ceil(out / ratio)`` channels, then a depthwise
    ``dw_size`` conv making ``ratio - 1`` ghost maps from each; both are concatenated and the
    first ``out_channels`` kept (the surplus is at most ``ratio - 1`` channels for odd counts).

    ``act_layer=None`` leaves both parts linear (the second module of a Ghost bottleneck);
    ``dilation`` dilates the cheap depthwise convolution (a trunk at output stride below 32).
    """

    def __init__(self, in_channels: int, out_channels: int, ratio: int = 2, kernel_size: int = 1,
                 dw_size: int = 3, stride: int = 1, act_layer: LayerFactory | None = nn.ReLU,
                 norm_layer: LayerFactory = nn.BatchNorm2d, dilation: int = 1) -> None:
        super().__init__()
        if not isinstance(ratio, int) or ratio < 2:
            raise ValueError(f"GhostModule ratio must be an integer >= 2, got {ratio!r}")
        primary_channels = math.ceil(out_channels / ratio)
        self.primary = ConvNormAct(in_channels, primary_channels, kernel_size, stride,
                                   norm_layer=norm_layer, act_layer=act_layer)
        self.cheap = ConvNormAct(primary_channels, primary_channels * (ratio - 1), dw_size,
                                 dilation=dilation, groups=primary_channels,
                                 norm_layer=norm_layer, act_layer=act_layer)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        intrinsic = self.primary(x)
        out = torch.cat([intrinsic, self.cheap(intrinsic)], dim=1)
        return out[:, :self.out_channels]


class GhostBottleneck(nn.Module):
    """Ghost module (expand, with activation) -> [depthwise ``k x k`` stride 2 + BN]
    -> [squeeze-excite] -> Ghost module (linear projection), plus a shortcut.

    The depthwise convolution is present only in a downsampling block (``stride > 1``). The
    shortcut is the identity when the block does not downsample and widths match, otherwise a
    depthwise ``k x k`` (with the stride) and a pointwise conv, each followed by BN and no
    activation, as in the official release.

    In a trunk at output stride below 32, ``strided=True`` builds the downsampling block at
    stride 1: its depthwise convolutions (and the first Ghost module's) are dilated by
    ``first_dilation``, the second Ghost module's by ``dilation`` (see
    :mod:`lightnets.models.stages`). ``drop_path_rate``: stochastic depth of the Ghost branch
    (the shortcut, identity or not, always passes), as timm's GhostNet.
    """

    def __init__(self, in_channels: int, mid_channels: int, out_channels: int,
                 kernel_size: int = 3, stride: int = 1, act_layer: LayerFactory = nn.ReLU,
                 se_layer: LayerFactory | None = None,
                 norm_layer: LayerFactory = nn.BatchNorm2d, dilation: int = 1,
                 first_dilation: int | None = None, strided: bool | None = None,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"GhostBottleneck stride must be 1 or 2, got {stride!r}")
        strided = stride > 1 if strided is None else strided
        first_dilation = first_dilation or dilation
        self.ghost1 = GhostModule(in_channels, mid_channels, act_layer=act_layer,
                                  norm_layer=norm_layer, dilation=first_dilation)
        self.depthwise = (ConvNormAct(mid_channels, mid_channels, kernel_size, stride,
                                      first_dilation, groups=mid_channels, norm_layer=norm_layer,
                                      act_layer=None) if strided else nn.Identity())
        self.se = make_layer(se_layer, mid_channels)
        self.ghost2 = GhostModule(mid_channels, out_channels, act_layer=None,
                                  norm_layer=norm_layer, dilation=dilation)
        self.has_residual = not strided and in_channels == out_channels
        self.shortcut = nn.Identity() if self.has_residual else nn.Sequential(
            ConvNormAct(in_channels, in_channels, kernel_size, stride, first_dilation,
                        groups=in_channels, norm_layer=norm_layer, act_layer=None),
            ConvNormAct(in_channels, out_channels, 1, norm_layer=norm_layer, act_layer=None))
        self.drop_path = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.ghost2(self.se(self.depthwise(self.ghost1(x))))
        return self.drop_path(out) + self.shortcut(x)
