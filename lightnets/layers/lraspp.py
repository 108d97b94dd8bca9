"""The Lite R-ASPP head (Howard et al., "Searching for MobileNetV3", ICCV 2019, Sec. 6.4 and
Fig. 10).

On the last (high-level) feature map: a 1x1 conv + BN + ReLU, gated channel by channel by a
global-average-pooled 1x1 conv with a sigmoid (an attention in the manner of squeeze-excite),
bilinearly upsampled to the low-level map (stride 8), classified there and added to a 1x1
classifier of the low-level features. The paper pools with a 49x49 kernel at stride (16, 20),
fitted to 1024x2048 Cityscapes crops; global pooling, as torchvision does, fits any input. The
parameter shapes and order equal torchvision's ``LRASPPHead``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct


class LRASPPHead(nn.Module):
    """``forward(low, high)``:
    ``low_classifier(low) + high_classifier(up(cbr(high) * scale(high)))`` at the low-level map's
    size; ``channels`` is the width of the high-level branch (128)."""

    def __init__(self, low_channels: int, high_channels: int, num_classes: int,
                 channels: int = 128) -> None:
        super().__init__()
        self.cbr = ConvNormAct(high_channels, channels, 1)
        self.scale = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            ConvNormAct(high_channels, channels, 1, bias=False, norm_layer=None,
                        act_layer=nn.Sigmoid))
        self.low_channels, self.channels = low_channels, channels
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh final 1x1 convolutions (low- and high-level) for ``num_classes``."""
        self.low_classifier = nn.Conv2d(self.low_channels, num_classes, 1)
        self.high_classifier = nn.Conv2d(self.channels, num_classes, 1)

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        x = self.cbr(high) * self.scale(high)
        x = F.interpolate(x, size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.low_classifier(low) + self.high_classifier(x)
