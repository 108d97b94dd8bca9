"""The U-Net decoder and head (Ronneberger, Fischer & Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015, arXiv:1505.04597, Fig. 1), on a classifier's
trunk as an encoder.

From the deepest map up, each block upsamples to the size of the next shallower map (nearest
neighbour, so odd sizes are met exactly rather than by doubling), concatenates that map (the
skip connection that carries the fine detail the encoder pooled away) and applies two 3x3
convolutions with BN and ReLU; a last block without a skip returns to the input's size, where a
3x3 convolution classifies. The paper's crop of the skip maps is not needed: convolutions here
are padded. The widths by default, 256, 128, 64, 32, 16 from the deepest block, and the
optional center block (two more 3x3 convolutions on the deepest map, which
segmentation_models_pytorch adds on VGG encoders) give segmentation_models_pytorch's ``Unet``
parameter shapes and order. ``separable=True`` makes every 3x3 convolution depthwise-separable
(a light decoder: about ``1/out + 1/9`` of the multiply-adds).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.separable import DepthwiseSeparableConv

UNET_CHANNELS = (256, 128, 64, 32, 16)  # the decoder blocks' widths, deepest first


def conv3x3(in_channels: int, out_channels: int, separable: bool) -> nn.Module:
    """A 3x3 convolution + BN + ReLU, depthwise-separable when asked."""
    conv = DepthwiseSeparableConv if separable else ConvNormAct
    return conv(in_channels, out_channels, 3)


class UNetBlock(nn.Module):
    """``forward(x, size, skips)``: ``x`` upsampled to ``size`` (nearest), concatenated with the
    maps in ``skips`` (one, or none for the last block), then two 3x3 convolutions."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int,
                 separable: bool = False) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_channels + skip_channels, out_channels, separable)
        self.conv2 = conv3x3(out_channels, out_channels, separable)

    def forward(self, x: torch.Tensor, size: Sequence[int],
                skips: Sequence[torch.Tensor]) -> torch.Tensor:
        x = F.interpolate(x, size=size, mode="nearest")
        return self.conv2(self.conv1(torch.cat([x, *skips], 1)))


class UNetHead(nn.Module):
    """``forward(*maps, size)``: the decoder on the encoder's ``maps`` (shallowest first, the
    deepest last; ``channels`` are theirs) and a 3x3 classifier, logits at ``size``.

    There is one block per skip map and one more to the input's size; ``decoder_channels``
    gives their widths, deepest first (default :data:`UNET_CHANNELS`, its first ones when the
    encoder has fewer maps). ``center=True`` adds two 3x3 convolutions on the deepest map."""

    def __init__(self, channels: Sequence[int], num_classes: int,
                 decoder_channels: Sequence[int] | None = None, center: bool = False,
                 separable: bool = False) -> None:
        super().__init__()
        deepest, skips = channels[-1], list(channels[:-1])[::-1]
        blocks = len(skips) + 1
        if decoder_channels is None:
            decoder_channels = UNET_CHANNELS[:blocks]
        decoder_channels = list(decoder_channels)
        if len(decoder_channels) != blocks or min(decoder_channels) < 1:
            raise ValueError(f"decoder_channels must be {blocks} positive widths (one per U-Net "
                             f"block on this encoder), got {decoder_channels}")
        self.center = (nn.Sequential(conv3x3(deepest, deepest, separable),
                                     conv3x3(deepest, deepest, separable))
                       if center else nn.Identity())
        inputs = [deepest, *decoder_channels[:-1]]
        self.blocks = nn.ModuleList(
            UNetBlock(width_in, skip, width_out, separable)
            for width_in, skip, width_out in zip(inputs, [*skips, 0], decoder_channels))
        self.out_channels = decoder_channels[-1]
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final 3x3 convolution for ``num_classes``."""
        self.classifier = nn.Conv2d(self.out_channels, num_classes, 3, padding=1)

    def forward(self, *maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        x = self.center(maps[-1])
        skips = maps[:-1][::-1]
        for block, skip in zip(self.blocks, skips):
            x = block(x, skip.shape[-2:], [skip])
        return self.classifier(self.blocks[-1](x, size, []))
