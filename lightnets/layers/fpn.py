"""The FPN segmentation decoder and head: a feature pyramid (Lin et al., "Feature Pyramid
Networks for Object Detection", CVPR 2017, arXiv:1612.03144, Sec. 3) merged into one map at
stride 4 as in the semantic branch of Panoptic FPN (Kirillov et al., "Panoptic Feature Pyramid
Networks", CVPR 2019, arXiv:1901.02446, Sec. 3 and Fig. 3).

Top-down pathway: the deepest of four maps (strides 4 to 32) is projected by a 1x1 convolution
to ``pyramid_channels``; each shallower level adds its own 1x1 projection (the lateral
connection) to the level above upsampled by nearest neighbour. Semantic branch: each level goes
through as many 3x3 convolution + GroupNorm(32) + ReLU stages, each followed by a bilinear
2x upsampling, as it takes to reach stride 4 (one stage without upsampling for stride 4
itself); the four maps are summed, and a 1x1 convolution classifies, upsampled bilinearly to
the input. Widths 256 and 128, dropout 0.2 before the classifier and ``align_corners=True``
give segmentation_models_pytorch's ``FPN`` parameter shapes and function. Upsampling goes to
the size of the level below rather than by a factor of two, so odd sizes meet exactly.
``separable=True`` makes the semantic branch's 3x3 convolutions depthwise-separable.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.separable import DepthwiseSeparableConv

FPN_LEVELS = 4  # strides 4, 8, 16 and 32 (P2 to P5)
GROUPS = 32  # GroupNorm's groups in the semantic branch (Panoptic FPN, Sec. 3)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(GROUPS, channels)


class SemanticStage(nn.Module):
    """3x3 convolution + GroupNorm + ReLU, then bilinear upsampling to ``size`` when given."""

    def __init__(self, in_channels: int, out_channels: int, separable: bool = False) -> None:
        super().__init__()
        conv = DepthwiseSeparableConv if separable else ConvNormAct
        self.conv = conv(in_channels, out_channels, 3, norm_layer=group_norm)

    def forward(self, x: torch.Tensor, size: Sequence[int] | None) -> torch.Tensor:
        x = self.conv(x)
        return x if size is None else F.interpolate(x, size=size, mode="bilinear",
                                                    align_corners=True)


class FPNHead(nn.Module):
    """``forward(*maps, size)``: the pyramid on four ``maps`` (strides 4 to 32, shallowest
    first; ``channels`` are theirs), the semantic branch, the classifier, logits at ``size``."""

    def __init__(self, channels: Sequence[int], num_classes: int, pyramid_channels: int = 256,
                 segmentation_channels: int = 128, drop_rate: float = 0.2,
                 separable: bool = False) -> None:
        super().__init__()
        if len(channels) != FPN_LEVELS:
            raise ValueError(f"the FPN head reads {FPN_LEVELS} maps, got {len(channels)}")
        for width in (pyramid_channels, segmentation_channels):
            if width < GROUPS or width % GROUPS:
                raise ValueError(f"FPN widths must be multiples of {GROUPS} (GroupNorm's "
                                 f"groups), got {pyramid_channels} and {segmentation_channels}")
        # deepest first: the top-down pathway's order
        self.lateral = nn.ModuleList(nn.Conv2d(width, pyramid_channels, 1)
                                     for width in channels[::-1])
        stage = partial(SemanticStage, separable=separable)
        self.semantic = nn.ModuleList(
            nn.ModuleList(stage(pyramid_channels if i == 0 else segmentation_channels,
                                segmentation_channels) for i in range(max(level, 1)))
            for level in range(FPN_LEVELS - 1, -1, -1))
        self.drop = nn.Dropout2d(drop_rate)
        self.channels = segmentation_channels
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final 1x1 convolution for ``num_classes``."""
        self.classifier = nn.Conv2d(self.channels, num_classes, 1)

    def forward(self, *maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        deepest_first = maps[::-1]
        pyramid = [self.lateral[0](deepest_first[0])]
        for lateral, skip in zip(self.lateral[1:], deepest_first[1:]):
            above = F.interpolate(pyramid[-1], size=skip.shape[-2:], mode="nearest")
            pyramid.append(above + lateral(skip))
        sizes = [level.shape[-2:] for level in pyramid]
        levels = [self.branch(stages, level, sizes[index + 1:])
                  for index, (stages, level) in enumerate(zip(self.semantic, pyramid))]
        merged = torch.stack(levels).sum(0)
        logits = self.classifier(self.drop(merged))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)

    @staticmethod
    def branch(stages: nn.ModuleList, x: torch.Tensor,
               sizes: Sequence[Sequence[int]]) -> torch.Tensor:
        """One level of the semantic branch: a stage per upsampling to the sizes below it (one
        without upsampling at stride 4)."""
        targets = list(sizes) or [None]
        for stage, target in zip(stages, targets):
            x = stage(x, target)
        return x
