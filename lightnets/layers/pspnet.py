"""The pyramid pooling module and PSPNet head (Zhao et al., "Pyramid Scene Parsing Network",
CVPR 2017, arXiv:1612.01105, Sec. 3.2 and Fig. 3).

The map is average-pooled into 1x1, 2x2, 3x3 and 6x6 bins (the global context at four
scales), each reduced by a 1x1 convolution to ``1/N`` of the channels (N = 4 levels),
upsampled bilinearly to the map's size and concatenated with it; a 1x1 convolution fuses them
(to 512 channels), dropout 0.2, and a 3x3 convolution classifies. The 1x1 level has no
BatchNorm (one value per channel gives it no statistics in a batch of one). These settings,
the bilinear upsampling with ``align_corners=True`` and reading the encoder at stride 8 give
segmentation_models_pytorch's ``PSPNet`` parameter shapes and function.

The bins are pooled by slicing rows then columns (the bins of ``adaptive_avg_pool2d``,
which are products of a row range and a column range): the graph then exports to ONNX with a
dynamic height and width, which adaptive pooling to more than one bin does not.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct

PSP_BINS = (1, 2, 3, 6)


def adaptive_average(x: torch.Tensor, bins: int) -> torch.Tensor:
    """``F.adaptive_avg_pool2d(x, bins)``: bin ``i`` of ``n`` rows spans rows
    ``floor(i n / bins)`` to ``ceil((i + 1) n / bins)``, the same for the columns."""
    def pooled(t: torch.Tensor, dim: int) -> torch.Tensor:
        n = t.shape[dim]
        # the ceiling by non-negative integers only: ONNX's integer division truncates
        starts = [i * n // bins for i in range(bins)]
        ends = [((i + 1) * n + bins - 1) // bins for i in range(bins)]
        return torch.cat([t.narrow(dim, start, end - start).mean(dim, keepdim=True)
                          for start, end in zip(starts, ends)], dim)

    return pooled(pooled(x, 2), 3)


class PyramidPoolingBranch(nn.Module):
    """Average-pool to ``bins`` x ``bins``, 1x1 convolution (+ BN unless one bin) + ReLU,
    bilinear upsampling back to the map's size."""

    def __init__(self, in_channels: int, out_channels: int, bins: int) -> None:
        super().__init__()
        self.bins = bins
        self.conv = ConvNormAct(in_channels, out_channels, 1,
                                norm_layer=None if bins == 1 else nn.BatchNorm2d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.conv(adaptive_average(x, self.bins))
        return F.interpolate(pooled, size=x.shape[-2:], mode="bilinear", align_corners=True)


class PyramidPooling(nn.Module):
    """``[branch(x) for each bin size] + [x]`` concatenated; ``out_channels`` says how wide."""

    def __init__(self, in_channels: int, bins: Sequence[int] = PSP_BINS) -> None:
        super().__init__()
        width = in_channels // len(bins)
        self.branches = nn.ModuleList(PyramidPoolingBranch(in_channels, width, size)
                                      for size in bins)
        self.out_channels = in_channels + width * len(bins)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches] + [x], 1)


class PSPHead(nn.Module):
    """``forward(x, size)``: pyramid pooling on ``x``, a 1x1 fusion to ``channels`` + BN + ReLU,
    2D dropout, a 3x3 classifier, and the logits upsampled bilinearly to ``size``."""

    def __init__(self, in_channels: int, num_classes: int, channels: int = 512,
                 bins: Sequence[int] = PSP_BINS, drop_rate: float = 0.2) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"decoder_channels must be a positive width, got {channels}")
        self.pool = PyramidPooling(in_channels, bins)
        self.fuse = ConvNormAct(self.pool.out_channels, channels, 1)
        self.drop = nn.Dropout2d(drop_rate)
        self.channels = channels
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final 3x3 convolution for ``num_classes``."""
        self.classifier = nn.Conv2d(self.channels, num_classes, 3, padding=1)

    def forward(self, x: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
        logits = self.classifier(self.drop(self.fuse(self.pool(x))))
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=True)
