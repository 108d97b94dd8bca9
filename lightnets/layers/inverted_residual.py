"""Inverted residual with linear bottleneck (Sandler et al., "MobileNetV2", CVPR 2018, Table 1),
with the squeeze-excite and activation options of MobileNetV3 (Howard et al., ICCV 2019)."""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.drop_path import drop_path
from lightnets.layers.helpers import LayerFactory, make_layer


class InvertedResidual(nn.Module):
    """1x1 expand -> depthwise ``k x k`` -> [squeeze-excite] -> 1x1 linear projection.

    The expansion is left out when ``mid_channels == in_channels`` (expansion ratio 1). The
    projection has no activation: the paper shows a non-linearity in the narrow bottleneck
    destroys information. The identity shortcut is used when the block does not downsample
    and widths match; ``strided=True`` marks a downsampling block built at stride 1 (its stride
    replaced by ``dilation``), which keeps no shortcut. ``drop_path_rate`` drops the branch of
    a block with a shortcut for that share of the images while training (stochastic depth).
    """

    def __init__(self, in_channels: int, out_channels: int, mid_channels: int, stride: int = 1,
                 kernel_size: int = 3, dilation: int = 1, act_layer: LayerFactory = nn.ReLU6,
                 se_layer: LayerFactory | None = None,
                 norm_layer: LayerFactory = nn.BatchNorm2d,
                 strided: bool | None = None, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        self.expand = (nn.Identity() if mid_channels == in_channels else
                       ConvNormAct(in_channels, mid_channels, 1, norm_layer=norm_layer,
                                   act_layer=act_layer))
        self.depthwise = ConvNormAct(mid_channels, mid_channels, kernel_size, stride, dilation,
                                     groups=mid_channels, norm_layer=norm_layer,
                                     act_layer=act_layer)
        self.se = make_layer(se_layer, mid_channels)
        self.project = ConvNormAct(mid_channels, out_channels, 1, norm_layer=norm_layer,
                                   act_layer=None)
        strided = stride > 1 if strided is None else strided
        self.has_residual = not strided and in_channels == out_channels
        self.drop_path = drop_path(drop_path_rate if self.has_residual else 0.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.se(self.depthwise(self.expand(x))))
        return self.drop_path(out) + x if self.has_residual else out
