"""Xception's residual block of separable convolutions (Chollet, "Xception: Deep Learning with
Depthwise Separable Convolutions", CVPR 2017, Fig. 5).

Each unit is ``ReLU -> SeparableConv -> BN``, where the separable convolution is a depthwise
``3 x 3`` directly followed by a pointwise 1x1 (no norm or activation between them). A block
stacks such units, optionally ends with a ``3 x 3`` stride-2 max-pool, and adds a shortcut: a
strided 1x1 convolution + BN when the shape changes, the identity otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.drop_path import drop_path
from lightnets.layers.helpers import LayerFactory, make_layer
from lightnets.layers.pooling import max_pool
from lightnets.layers.separable import DepthwiseSeparableConv


class XceptionUnit(nn.Sequential):
    """``[act] -> depthwise k x k -> pointwise 1x1 -> norm`` (the act is left out with
    ``act_layer=None``, as in the first unit of Xception's first block)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 dilation: int = 1, norm_layer: LayerFactory = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU) -> None:
        super().__init__()
        self.act = make_layer(act_layer)
        self.conv = DepthwiseSeparableConv(in_channels, out_channels, kernel_size,
                                           dilation=dilation, norm_layer=norm_layer,
                                           act_layer=act_layer, dw_norm=False, dw_act=False,
                                           pw_act=False)


class XceptionBlock(nn.Module):
    """Units of ``channels`` (one separable convolution each), a max-pool when ``stride > 1``
    and a residual shortcut.

    ``leading_act=False`` drops the activation before the first unit (Xception's first block
    follows a ReLU already). The shortcut sees the block input before that activation.
    ``strided=True`` builds a downsampling block at stride 1 (a trunk at output stride below
    32): its max-pool then keeps the size, dilated by ``dilation`` like the units.
    ``drop_path_rate``: stochastic depth of the units' branch (the shortcut always passes).
    """

    def __init__(self, in_channels: int, channels: Sequence[int], stride: int = 1,
                 leading_act: bool = True, kernel_size: int = 3, dilation: int = 1,
                 norm_layer: LayerFactory = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU, strided: bool | None = None,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if not channels:
            raise ValueError("channels must list at least one separable convolution width")
        if stride not in (1, 2):
            raise ValueError(f"stride must be 1 or 2, got {stride}")
        strided = stride > 1 if strided is None else strided
        units, width = [], in_channels
        for i, out in enumerate(channels):
            act = act_layer if i > 0 or leading_act else None
            units.append(XceptionUnit(width, out, kernel_size, dilation, norm_layer, act))
            width = out
        self.units = nn.Sequential(*units)
        # "same" max-pool: ceil(n / 2) outputs, matching the strided 1x1 shortcut
        self.pool = max_pool(3, stride, 1, dilation) if strided else nn.Identity()
        self.shortcut = (ConvNormAct(in_channels, width, 1, stride, norm_layer=norm_layer,
                                     act_layer=None)
                         if strided or in_channels != width else nn.Identity())
        self.in_channels, self.out_channels, self.stride = in_channels, width, stride
        self.drop_path = drop_path(drop_path_rate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop_path(self.pool(self.units(x))) + self.shortcut(x)
