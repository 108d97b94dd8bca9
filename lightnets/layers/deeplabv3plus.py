"""The DeepLabV3+ decoder and head (Chen et al., "Encoder-Decoder with Atrous Separable
Convolution for Semantic Image Segmentation", ECCV 2018, Sec. 3.1, Fig. 2 and Table 2).

The encoder's ASPP output (at output stride 16) is bilinearly upsampled to the low-level
features of stride 4, which a 1x1 convolution first projects to 48 channels ("[1x1, 48]" was
best in Table 1) so they do not outweigh the rich encoder features; the two are concatenated
and refined by two 3x3 convolutions of 256 channels ("[3x3, 256] x 2", Table 2). With
``separable=True`` (the paper's final design, Sec. 4.3) the ASPP branches and the decoder's
convolutions are depthwise-separable, with BN and ReLU after each depthwise convolution.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.aspp import ASPP
from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.separable import DepthwiseSeparableConv


class DeepLabV3PlusDecoder(nn.Module):
    """``forward(low, high)``: project ``low`` to ``low_level_channels``, upsample ``high`` to
    its size, concatenate ``[high, low]`` and apply two 3x3 convolutions (+ BN + ReLU) of
    ``channels``."""

    def __init__(self, low_channels: int, high_channels: int, channels: int = 256,
                 low_level_channels: int = 48, separable: bool = True) -> None:
        super().__init__()
        conv = DepthwiseSeparableConv if separable else ConvNormAct
        self.project = ConvNormAct(low_channels, low_level_channels, 1)
        self.fuse = nn.Sequential(conv(high_channels + low_level_channels, channels, 3),
                                  conv(channels, channels, 3))
        self.out_channels = channels

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        high = F.interpolate(high, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([high, self.project(low)], 1))


class DeepLabV3PlusHead(nn.Module):
    """``forward(low, high)``: ASPP on ``high``, the decoder with ``low`` (stride 4), and a 1x1
    classifier at the low-level map's size. The ASPP dropout is 0.1, as in the DeepLab
    release."""

    def __init__(self, low_channels: int, high_channels: int, num_classes: int,
                 rates: Sequence[int] = (6, 12, 18), channels: int = 256,
                 low_level_channels: int = 48, separable: bool = True) -> None:
        super().__init__()
        self.aspp = ASPP(high_channels, rates, channels, separable, drop_rate=0.1)
        self.decoder = DeepLabV3PlusDecoder(low_channels, channels, channels, low_level_channels,
                                            separable)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final 1x1 convolution for ``num_classes``."""
        self.classifier = nn.Conv2d(self.decoder.out_channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.decoder(low, self.aspp(high)))
