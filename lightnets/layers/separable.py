"""Factorised convolutions.

* :class:`DepthwiseSeparableConv`: a depthwise ``k x k`` convolution followed by a pointwise 1x1
  one (Sifre 2014; Howard et al., "MobileNets", 2017, Fig. 3). Cost ratio to a full convolution:
  ``1/out + 1/k^2``.
* :class:`SpatiallySeparableConv`: a ``k x 1`` then a ``1 x k`` convolution in place of ``k x k``
  (Szegedy et al., "Rethinking the Inception Architecture", 2016, Sec. 3.2).
"""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.helpers import LayerFactory, make_layer


class DepthwiseSeparableConv(nn.Module):
    """Depthwise ``k x k`` -> [squeeze-excite] -> pointwise 1x1, each followed by norm/act.

    ``dw_norm``/``dw_act`` drop the norm/activation between the two convolutions (Xception's
    separable convolution has neither); ``pw_act=False`` leaves the projection linear
    (MobileNetV3's first block). ``residual=True`` adds the input when the shapes allow.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 dilation: int = 1, norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU, se_layer: LayerFactory | None = None,
                 dw_norm: bool = True, dw_act: bool = True, pw_act: bool = True,
                 residual: bool = False) -> None:
        super().__init__()
        self.depthwise = ConvNormAct(in_channels, in_channels, kernel_size, stride, dilation,
                                     groups=in_channels,
                                     norm_layer=norm_layer if dw_norm else None,
                                     act_layer=act_layer if dw_act else None, bias=False)
        self.se = make_layer(se_layer, in_channels)
        self.pointwise = ConvNormAct(in_channels, out_channels, 1, norm_layer=norm_layer,
                                     act_layer=act_layer if pw_act else None)
        self.has_residual = residual and stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.pointwise(self.se(self.depthwise(x)))
        return out + x if self.has_residual else out


class SpatiallySeparableConv(nn.Module):
    """``k x 1`` then ``1 x k`` (``order="kx1"``) or the reverse (``order="1xk"``), each a
    :class:`ConvNormAct`; ``mid_channels`` is the width between them (default ``out_channels``)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3,
                 mid_channels: int | None = None, order: str = "kx1", stride: int = 1,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU, dilation: int = 1) -> None:
        super().__init__()
        if order not in ("kx1", "1xk"):
            raise ValueError(f"order must be 'kx1' or '1xk', got {order!r}")
        mid_channels = mid_channels or out_channels
        kernels = [(kernel_size, 1), (1, kernel_size)]
        strides = [(stride, 1), (1, stride)]
        if order == "1xk":
            kernels.reverse()
            strides.reverse()
        self.first = ConvNormAct(in_channels, mid_channels, kernels[0], strides[0], dilation,
                                 norm_layer=norm_layer, act_layer=act_layer)
        self.second = ConvNormAct(mid_channels, out_channels, kernels[1], strides[1], dilation,
                                  norm_layer=norm_layer, act_layer=act_layer)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))
