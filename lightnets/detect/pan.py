"""A light path-aggregation neck on any classifier of the zoo: :class:`LightPAN`.

PANet (Liu et al., "Path Aggregation Network for Instance Segmentation", CVPR 2018,
arXiv:1803.01534) adds a bottom-up path to the FPN's top-down one, so the fine levels' detail
reaches the coarse levels in a few layers. NanoDet-Plus (RangiLyu 2021) builds it from Ghost
blocks (Han et al., "GhostNet", CVPR 2020, arXiv:1911.11907) at one narrow width and adds a
stride-64 level by stride-2 convolutions, which this neck follows with the library's blocks:

* a 1x1 convolution brings each trunk map to ``width`` channels;
* top-down: the coarser level upsampled (nearest) and concatenated with the finer one, fused by
  a block (``"ghost"``: :class:`~lightnets.layers.GhostBottleneck`; ``"separable"``: a 5x5
  :class:`~lightnets.layers.DepthwiseSeparableConv`) back to ``width``;
* bottom-up: the finer output downsampled by a stride-2 5x5 depthwise-separable convolution,
  concatenated with the top-down map and fused the same way;
* ``extra_levels`` coarser levels, each the sum of a stride-2 separable convolution of the
  coarsest lateral map and one of the coarsest output.

Concatenation over summation keeps both paths' channels apart for the fusing block, as
NanoDet-Plus and the YOLO necks do; width 96 is NanoDet-Plus's for ShuffleNetV2 1.0x.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from lightnets.layers import ConvNormAct, DepthwiseSeparableConv, GhostBottleneck
from lightnets.models.base import FeatureNet

NECK_BLOCKS = ("ghost", "separable")
KERNEL = 5  # NanoDet-Plus's depthwise kernel in the neck: a wider view for one cheap layer


def fuse_block(kind: str, in_channels: int, out_channels: int) -> nn.Module:
    """The block that fuses two concatenated maps back to ``out_channels``."""
    if kind == "ghost":
        return GhostBottleneck(in_channels, out_channels, out_channels, kernel_size=KERNEL)
    return DepthwiseSeparableConv(in_channels, out_channels, KERNEL)


def downsample(width: int) -> nn.Module:
    """A stride-2 5x5 depthwise-separable convolution at ``width`` channels."""
    return DepthwiseSeparableConv(width, width, KERNEL, stride=2)


def match_size(x: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``x`` resized (nearest) to ``like``'s height and width where they differ: trunks with
    unpadded layers (SqueezeNet) make maps that are not exact halves of each other."""
    if x.shape[-2:] == like.shape[-2:]:
        return x
    return F.interpolate(x, size=like.shape[-2:], mode="nearest")


class LightPAN(nn.Module):
    """The neck on ``in_channels`` maps (finest first, strides doubling); ``forward`` returns
    ``len(in_channels) + extra_levels`` maps of ``width`` channels, finest first."""

    def __init__(self, in_channels: Sequence[int], width: int = 96, extra_levels: int = 1,
                 block: str = "ghost") -> None:
        super().__init__()
        if block not in NECK_BLOCKS:
            raise ValueError(f"neck block must be one of {', '.join(NECK_BLOCKS)}, got {block!r}")
        if not isinstance(width, int) or isinstance(width, bool) or width < 8:
            raise ValueError(f"neck width must be an integer >= 8, got {width!r}")
        if not isinstance(extra_levels, int) or not 0 <= extra_levels <= 3:
            raise ValueError(f"extra_levels must be an integer from 0 to 3, got {extra_levels!r}")
        levels = len(in_channels)
        self.lateral = nn.ModuleList(ConvNormAct(c, width, 1) for c in in_channels)
        self.top_down = nn.ModuleList(fuse_block(block, 2 * width, width)
                                      for _ in range(levels - 1))
        self.down = nn.ModuleList(downsample(width) for _ in range(levels - 1))
        self.bottom_up = nn.ModuleList(fuse_block(block, 2 * width, width)
                                       for _ in range(levels - 1))
        self.extra_in = nn.ModuleList(downsample(width) for _ in range(extra_levels))
        self.extra_out = nn.ModuleList(downsample(width) for _ in range(extra_levels))
        self.width, self.levels = width, levels + extra_levels

    def forward(self, maps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        lateral = [layer(x) for layer, x in zip(self.lateral, maps)]
        inner = [lateral[-1]]  # top-down, coarsest first
        for index in range(len(lateral) - 2, -1, -1):
            finer = lateral[index]
            up = match_size(inner[0], finer)
            inner.insert(0, self.top_down[index](torch.cat([up, finer], dim=1)))
        outs = [inner[0]]  # bottom-up, finest first
        for index, coarser in enumerate(inner[1:]):
            down = match_size(self.down[index](outs[-1]), coarser)
            outs.append(self.bottom_up[index](torch.cat([down, coarser], dim=1)))
        top = lateral[-1]
        for from_input, from_output in zip(self.extra_in, self.extra_out):
            top = from_input(top)
            outs.append(top + match_size(from_output(outs[-1]), top))
        return outs


class PANBackbone(nn.Module):
    """``body`` (the trunk's maps) and ``neck`` (:class:`LightPAN`); ``strides`` are the strides
    of the output levels, ``out_channels`` their width."""

    def __init__(self, body: FeatureNet, width: int = 96, extra_levels: int = 1,
                 block: str = "ghost") -> None:
        super().__init__()
        self.body = body
        self.neck = LightPAN(body.channels, width, extra_levels, block)
        last = body.reductions[-1]
        self.strides = [*body.reductions, *(last * 2 ** (i + 1) for i in range(extra_levels))]
        self.out_channels = width

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return self.neck(self.body(x))
