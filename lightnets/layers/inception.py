"""Inception modules: parallel branches of different receptive fields, concatenated.

* :class:`InceptionModule`: GoogLeNet's four-branch module (Szegedy et al., "Going Deeper with
  Convolutions", CVPR 2015, Fig. 2b): 1x1 | 1x1 -> 3x3 | 1x1 -> 5x5 | 3x3 max-pool -> 1x1.
* Inception v3's factorised modules (Szegedy et al., "Rethinking the Inception Architecture for
  Computer Vision", CVPR 2016), in the layout of the released network (TF-slim, torchvision):
  :class:`InceptionA` (35x35 grid, Fig. 5), :class:`InceptionB` (grid reduction 35 -> 17,
  Fig. 10), :class:`InceptionC` (17x17 grid, ``n x n`` factorised into ``1 x n`` and ``n x 1``,
  Fig. 6), :class:`InceptionD` (reduction 17 -> 8) and :class:`InceptionE` (8x8 grid, expanded
  filter bank, Fig. 7).
* The auxiliary classifiers: :class:`GoogLeNetAuxHead` (2015, Sec. 5) and
  :class:`InceptionV3AuxHead` (2016, Sec. 4 and Fig. 8).
* :class:`TransformInput`: torchvision's ``transform_input``, which its pretrained GoogLeNet and
  Inception v3 weights (ported from TensorFlow, trained on ``(x - 0.5) / 0.5`` inputs) need.

Every convolution is a :class:`ConvNormAct` with BatchNorm (eps 0.001, as in the releases) and
ReLU; ``norm_layer=None`` gives biased convolutions without normalisation (GoogLeNet as published).

For a trunk at output stride below 32 (:mod:`lightnets.models.stages`) the modules that can
sit in a dilated stage take ``dilation`` (every spatial kernel and pool is dilated), and the
grid reductions ``stride=1``: their unpadded stride-2 convolutions and pools then become
"same"-padded stride-1 ones, so every branch keeps the size.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.helpers import LayerFactory
from lightnets.layers.pooling import avg_pool, max_pool
from lightnets.layers.separable import SpatiallySeparableConv
from lightnets.constants import IMAGENET_MEAN, IMAGENET_STD

inception_norm: LayerFactory = partial(nn.BatchNorm2d, eps=1e-3)
"""BatchNorm with the epsilon of the Inception releases (0.001)."""




class TransformInput(nn.Module):
    """Turns an input normalised with ImageNet's mean and std into ``(x - 0.5) / 0.5``, per
    channel ``x * std / 0.5 + (mean - 0.5) / 0.5``, as torchvision's ``transform_input``. For
    one channel the statistics are the RGB averages (what grey preprocessing uses): a grey
    image then gets exactly the input the 3-channel network would see for it."""

    def __init__(self, in_chans: int = 3) -> None:
        super().__init__()
        if in_chans not in (1, 3):
            raise ValueError(f"transform_input needs 1 or 3 input channels, got {in_chans}")
        mean, std = IMAGENET_MEAN, IMAGENET_STD
        if in_chans == 1:
            mean, std = (sum(mean) / 3,), (sum(std) / 3,)
        # plain floats, not buffers: nothing to load, and a model built on the meta device
        # has nothing left to materialise
        self.scale = [s / 0.5 for s in std]
        self.shift = [(m - 0.5) / 0.5 for m in mean]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.tensor(self.scale, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        shift = torch.tensor(self.shift, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
        return x * scale + shift


class ParallelBranches(nn.Module):
    """Runs every branch on the same input and concatenates the outputs along channels; the
    branches' order is the order of concatenation (and of the parameters)."""

    def __init__(self, out_channels: int, **branches: nn.Module) -> None:
        super().__init__()
        self.branches = nn.ModuleDict(branches)
        self.out_channels = out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([branch(x) for branch in self.branches.values()], 1)


class InceptionModule(ParallelBranches):
    """GoogLeNet's module; arguments are the columns of Szegedy et al. 2015, Table 1.

    ``large_kernel_size`` is the kernel of the "5x5" branch: 5 as in the paper, 3 in torchvision's
    GoogLeNet. The pool branch is a 3x3 stride-1 max-pool followed by a 1x1 projection.
    """

    def __init__(self, in_channels: int, ch1x1: int, ch3x3_reduce: int, ch3x3: int,
                 ch5x5_reduce: int, ch5x5: int, pool_proj: int, large_kernel_size: int = 5,
                 norm_layer: LayerFactory | None = inception_norm, dilation: int = 1) -> None:
        if large_kernel_size < 1 or large_kernel_size % 2 == 0:
            raise ValueError(f"large_kernel_size must be a positive odd integer, "
                             f"got {large_kernel_size!r}")
        conv = partial(ConvNormAct, norm_layer=norm_layer)
        super().__init__(
            ch1x1 + ch3x3 + ch5x5 + pool_proj,
            conv1x1=conv(in_channels, ch1x1, 1),
            conv3x3=nn.Sequential(conv(in_channels, ch3x3_reduce, 1),
                                  conv(ch3x3_reduce, ch3x3, 3, dilation=dilation)),
            conv5x5=nn.Sequential(conv(in_channels, ch5x5_reduce, 1),
                                  conv(ch5x5_reduce, ch5x5, large_kernel_size,
                                       dilation=dilation)),
            pool=nn.Sequential(max_pool(3, 1, padding=1, dilation=dilation, ceil_mode=True),
                               conv(in_channels, pool_proj, 1)))


class InceptionA(ParallelBranches):
    """35x35 module: 1x1 (64) | 1x1 -> 5x5 (64) | 1x1 -> 3x3 -> 3x3 (96) | avg-pool -> 1x1.

    The paper's Fig. 5 replaces the 5x5 by two 3x3 convolutions; the released network keeps a
    5x5 branch beside the double-3x3 one.
    """

    def __init__(self, in_channels: int, pool_channels: int,
                 norm_layer: LayerFactory | None = inception_norm, dilation: int = 1) -> None:
        conv = partial(ConvNormAct, norm_layer=norm_layer)
        spatial = partial(conv, dilation=dilation)
        super().__init__(
            64 + 64 + 96 + pool_channels,
            conv1x1=conv(in_channels, 64, 1),
            conv5x5=nn.Sequential(conv(in_channels, 48, 1), spatial(48, 64, 5)),
            double3x3=nn.Sequential(conv(in_channels, 64, 1), spatial(64, 96, 3),
                                    spatial(96, 96, 3)),
            pool=nn.Sequential(avg_pool(3, 1, padding=1, dilation=dilation),
                               conv(in_channels, pool_channels, 1)))


class InceptionB(ParallelBranches):
    """Grid reduction 35 -> 17 (Fig. 10): stride-2 3x3 (384) | 1x1 -> 3x3 -> stride-2 3x3 (96)
    | stride-2 3x3 max-pool, all unpadded, so the grid shrinks and widens in parallel."""

    def __init__(self, in_channels: int, norm_layer: LayerFactory | None = inception_norm,
                 stride: int = 2, dilation: int = 1) -> None:
        conv = partial(ConvNormAct, norm_layer=norm_layer)
        reduce = partial(conv, stride=stride, padding=0 if stride > 1 else None,
                         dilation=dilation)
        super().__init__(
            384 + 96 + in_channels,
            conv3x3=reduce(in_channels, 384, 3),
            double3x3=nn.Sequential(conv(in_channels, 64, 1), conv(64, 96, 3, dilation=dilation),
                                    reduce(96, 96, 3)),
            pool=max_pool(3, stride, dilation=dilation))


class InceptionC(ParallelBranches):
    """17x17 module (Fig. 6, n = 7): 1x1 (192) | 1x1 -> 1x7 -> 7x1 (192) |
    1x1 -> 7x1 -> 1x7 -> 7x1 -> 1x7 (192) | avg-pool -> 1x1 (192); ``mid_channels`` is the width
    inside the factorised branches."""

    def __init__(self, in_channels: int, mid_channels: int, kernel_size: int = 7,
                 norm_layer: LayerFactory | None = inception_norm, dilation: int = 1) -> None:
        conv = partial(ConvNormAct, norm_layer=norm_layer)
        separable = partial(SpatiallySeparableConv, kernel_size=kernel_size,
                            mid_channels=mid_channels, norm_layer=norm_layer, dilation=dilation)
        super().__init__(
            4 * 192,
            conv1x1=conv(in_channels, 192, 1),
            conv7x7=nn.Sequential(conv(in_channels, mid_channels, 1),
                                  separable(mid_channels, 192, order="1xk")),
            double7x7=nn.Sequential(conv(in_channels, mid_channels, 1),
                                    separable(mid_channels, mid_channels, order="kx1"),
                                    separable(mid_channels, 192, order="kx1")),
            pool=nn.Sequential(avg_pool(3, 1, padding=1, dilation=dilation),
                               conv(in_channels, 192, 1)))


class InceptionD(ParallelBranches):
    """Grid reduction 17 -> 8: 1x1 -> stride-2 3x3 (320) | 1x1 -> 1x7 -> 7x1 -> stride-2 3x3
    (192) | stride-2 3x3 max-pool; the strided convolutions are unpadded."""

    def __init__(self, in_channels: int, norm_layer: LayerFactory | None = inception_norm,
                 stride: int = 2, dilation: int = 1) -> None:
        conv = partial(ConvNormAct, norm_layer=norm_layer)
        reduce = partial(conv, stride=stride, padding=0 if stride > 1 else None,
                         dilation=dilation)
        super().__init__(
            320 + 192 + in_channels,
            conv3x3=nn.Sequential(conv(in_channels, 192, 1), reduce(192, 320, 3)),
            conv7x7x3=nn.Sequential(conv(in_channels, 192, 1),
                                    SpatiallySeparableConv(192, 192, 7, order="1xk",
                                                           norm_layer=norm_layer,
                                                           dilation=dilation),
                                    reduce(192, 192, 3)),
            pool=max_pool(3, stride, dilation=dilation))


def expanded_filter_bank(channels: int, norm_layer: LayerFactory | None,
                         dilation: int = 1) -> ParallelBranches:
    """A ``1x3`` and a ``3x1`` convolution side by side on the same input (Fig. 7): the output
    has ``2 * channels`` channels."""
    conv = partial(ConvNormAct, norm_layer=norm_layer, dilation=dilation)
    return ParallelBranches(2 * channels, conv1x3=conv(channels, channels, (1, 3)),
                            conv3x1=conv(channels, channels, (3, 1)))


class InceptionE(ParallelBranches):
    """8x8 module with expanded filter banks (Fig. 7): 1x1 (320) | 1x1 -> [1x3 | 3x1] (768) |
    1x1 -> 3x3 -> [1x3 | 3x1] (768) | avg-pool -> 1x1 (192); 2048 channels out."""

    def __init__(self, in_channels: int, norm_layer: LayerFactory | None = inception_norm,
                 dilation: int = 1) -> None:
        conv = partial(ConvNormAct, norm_layer=norm_layer)
        bank = partial(expanded_filter_bank, 384, norm_layer, dilation)
        super().__init__(
            320 + 768 + 768 + 192,
            conv1x1=conv(in_channels, 320, 1),
            conv3x3=nn.Sequential(conv(in_channels, 384, 1), bank()),
            double3x3=nn.Sequential(conv(in_channels, 448, 1),
                                    conv(448, 384, 3, dilation=dilation), bank()),
            pool=nn.Sequential(avg_pool(3, 1, padding=1, dilation=dilation),
                               conv(in_channels, 192, 1)))


class GoogLeNetAuxHead(nn.Module):
    """GoogLeNet's auxiliary classifier (Sec. 5): average pool to 4x4 (the paper's 5x5/3 pool
    on the 14x14 grid; adaptive here, as in torchvision, so any input size works), 1x1 conv to
    128, FC 1024 + ReLU, dropout 0.7, linear classifier."""

    def __init__(self, in_channels: int, num_classes: int, drop_rate: float = 0.7,
                 norm_layer: LayerFactory | None = inception_norm) -> None:
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.conv = ConvNormAct(in_channels, 128, 1, norm_layer=norm_layer)
        self.fc1 = nn.Linear(128 * 4 * 4, 1024)
        self.act = nn.ReLU(inplace=True)
        self.drop = nn.Dropout(drop_rate)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final layer for ``num_classes`` (``nn.Identity`` for 0)."""
        self.fc2 = nn.Linear(1024, num_classes) if num_classes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.pool(x)).flatten(1)
        return self.fc2(self.drop(self.act(self.fc1(x))))


class InceptionV3AuxHead(nn.Module):
    """Inception v3's auxiliary classifier on the 17x17 grid (Fig. 8): 5x5/3 average pool
    (17 -> 5), 1x1 conv to 128, 5x5 conv to 768 (5 -> 1), linear classifier; both convolutions
    batch-normalised (the paper's "BN-auxiliary").

    Below a 17x17 grid (inputs under ~299 px) the fixed pool would leave less than 5x5 for the
    5x5 convolution, so such grids are average-pooled adaptively to 5x5 instead; at 17x17 and
    above the head computes exactly the reference's function.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 norm_layer: LayerFactory | None = inception_norm) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(5, stride=3)
        self.conv1x1 = ConvNormAct(in_channels, 128, 1, norm_layer=norm_layer)
        self.conv5x5 = ConvNormAct(128, 768, 5, padding=0, norm_layer=norm_layer)
        self.reset_classifier(num_classes)

    def reset_classifier(self, num_classes: int) -> None:
        """A fresh final layer for ``num_classes`` (``nn.Identity`` for 0)."""
        self.fc = nn.Linear(768, num_classes) if num_classes else nn.Identity()

    def init_weights(self) -> None:
        """The reference's smaller initial scales for this head: truncated N(0, 0.01) for the
        5x5 convolution, N(0, 0.001) for the classifier."""
        nn.init.trunc_normal_(self.conv5x5.conv.weight, std=0.01, a=-2, b=2)
        if isinstance(self.fc, nn.Linear):
            nn.init.trunc_normal_(self.fc.weight, std=0.001, a=-2, b=2)
            nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(x) if min(x.shape[-2:]) >= 17 else F.adaptive_avg_pool2d(x, 5)
        x = self.conv5x5(self.conv1x1(x))
        return self.fc(F.adaptive_avg_pool2d(x, 1).flatten(1))
