"""Atrous spatial pyramid pooling and the DeepLabV3 head (Chen et al., "Rethinking Atrous
Convolution for Semantic Image Segmentation", arXiv:1706.05587, 2017, Sec. 3.3 and Fig. 5).

ASPP looks at one feature map through parallel branches of different fields of view: a 1x1
convolution, 3x3 convolutions at several atrous rates, and image-level features (global
average pooling, a 1x1 convolution, bilinearly upsampled back), each with BN and ReLU; the
branches are concatenated and projected by a 1x1 convolution. The paper's rates are
(6, 12, 18) at output stride 16 and twice those at 8 (:func:`aspp_rates`). DeepLabV3+ (Chen et
al., ECCV 2018, Sec. 3.2) makes the 3x3 branches depthwise-separable (``separable=True``), with
BN and ReLU after the depthwise convolution too.

With ``separable=False`` the parameter shapes and order equal torchvision's ``ASPP`` and
``DeepLabHead``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.separable import DepthwiseSeparableConv

PAPER_RATES = (6, 12, 18)  # Chen et al. 2017, Sec. 4.1: at output stride 16


def aspp_rates(output_stride: int) -> tuple[int, ...]:
    """The atrous rates for a feature map at ``output_stride``: (6, 12, 18) at 16, doubled at 8
    (DeepLabV3, Sec. 4.1: the rates scale with the map, so they see the same image region)."""
    return tuple(rate * 16 // output_stride for rate in PAPER_RATES)


class ImagePooling(nn.Module):
    """ASPP's image-level branch: global average pool, 1x1 conv + BN + ReLU, bilinear upsample to
    the input's size (Sec. 3.3: "to incorporate global context information")."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ConvNormAct(in_channels, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(self.conv(self.pool(x)), size=x.shape[-2:], mode="bilinear",
                             align_corners=False)


class ASPP(nn.Module):
    """1x1 | 3x3 at each of ``rates`` | image pooling, concatenated, then 1x1 conv + BN + ReLU to
    ``out_channels`` and dropout (0.5, torchvision's; the DeepLab release uses 0.1).

    ``separable=True`` uses depthwise-separable 3x3 branches (DeepLabV3+), ``image_pool=False``
    leaves the image-level branch out.
    """

    def __init__(self, in_channels: int, rates: Sequence[int] = (12, 24, 36),
                 out_channels: int = 256, separable: bool = False, image_pool: bool = True,
                 drop_rate: float = 0.5) -> None:
        super().__init__()
        if not rates or any(not isinstance(r, int) or r < 1 for r in rates):
            raise ValueError(f"ASPP rates must be positive integers, got {tuple(rates)!r}")
        branches: list[nn.Module] = [ConvNormAct(in_channels, out_channels, 1)]
        for rate in rates:
            branches.append(
                DepthwiseSeparableConv(in_channels, out_channels, 3, dilation=rate) if separable
                else ConvNormAct(in_channels, out_channels, 3, dilation=rate))
        if image_pool:
            branches.append(ImagePooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = ConvNormAct(len(branches) * out_channels, out_channels, 1)
        self.drop = nn.Dropout(drop_rate)
        self.rates, self.out_channels = tuple(rates), out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.project(torch.cat([branch(x) for branch in self.branches], 1)))


class DeepLabV3Head(nn.Module):
    """ASPP, a 3x3 conv + BN + ReLU and a 1x1 classifier: DeepLabV3 on the last feature map
    (torchvision's ``DeepLabHead``)."""

    def __init__(self, in_channels: int, num_classes: int, rates: Sequence[int] = (12, 24, 36),
                 channels: int = 256, separable: bool = False) -> None:
        super().__init__()
        self.aspp = ASPP(in_channels, rates, channels, separable)
        self.conv = ConvNormAct(channels, channels, 3)
        self.channels = channels
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final 1x1 convolution for ``num_classes``."""
        self.classifier = nn.Conv2d(self.channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.conv(self.aspp(x)))
