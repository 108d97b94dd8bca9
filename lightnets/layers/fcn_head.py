"""The FCN head (Long, Shelhamer & Darrell, "Fully Convolutional Networks for Semantic
Segmentation", CVPR 2015), in the form torchvision puts on dilated ResNets.

A 3x3 convolution to a quarter of the input width + BN + ReLU, dropout 0.1 and a 1x1
classifier, read on the last feature map; the logits are upsampled to the input by the
segmenter. The same head is every segmenter's auxiliary classifier (on an earlier stage), as in
torchvision. The parameter shapes and order equal torchvision's ``FCNHead``.
"""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct


class FCNHead(nn.Module):
    """``3x3 conv (in -> channels) + BN + ReLU -> dropout -> 1x1 conv (channels -> classes)``;
    ``channels`` defaults to ``in_channels // 4``."""

    def __init__(self, in_channels: int, num_classes: int, channels: int | None = None,
                 drop_rate: float = 0.1) -> None:
        super().__init__()
        self.channels = channels or in_channels // 4
        self.conv = ConvNormAct(in_channels, self.channels, 3)
        self.drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final 1x1 convolution for ``num_classes``."""
        self.classifier = nn.Conv2d(self.channels, num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.drop(self.conv(x)))
