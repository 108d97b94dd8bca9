"""Convolution + normalisation + activation: the unit every network in the zoo is made of.

Plain, 1x1 (pointwise), group, depthwise, dilated (atrous; Yu & Koltun 2016, Chen et al. 2017)
and transposed (Zeiler et al. 2010) convolutions are all expressed through :class:`ConvNormAct`
by its arguments; padding is derived from kernel size and dilation so the output is
``ceil(input / stride)`` for odd kernels (or ``input * stride`` for a transposed convolution).
"""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.helpers import LayerFactory, make_act, make_layer, same_padding, to_pair


def transposed_padding(kernel_size: int | tuple[int, int], stride: int | tuple[int, int],
                       dilation: int | tuple[int, int] = 1
                       ) -> tuple[tuple[int, int], tuple[int, int]]:
    """``(padding, output_padding)`` making a transposed convolution map ``n`` to ``n * stride``.

    From ``out = (n - 1) * s - 2p + d * (k - 1) + output_padding + 1``, solved for ``out = n * s``.
    """
    pads, extras = [], []
    for k, s, d in zip(to_pair(kernel_size), to_pair(stride), to_pair(dilation)):
        excess = d * (k - 1) + 1 - s
        pad = max(0, (excess + 1) // 2)
        pads.append(pad)
        extras.append(2 * pad - excess)
    return (pads[0], pads[1]), (extras[0], extras[1])


class ConvNormAct(nn.Module):
    """``conv -> norm -> act``; ``norm_layer=None`` or ``act_layer=None`` leaves that part out.

    ``groups=in_channels`` gives a depthwise convolution, ``kernel_size=1`` a pointwise one,
    ``dilation>1`` an atrous one and ``transposed=True`` a learned up-sampling.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int | tuple[int, int] = 3,
                 stride: int | tuple[int, int] = 1, dilation: int | tuple[int, int] = 1,
                 groups: int = 1, bias: bool | None = None,
                 norm_layer: LayerFactory | None = nn.BatchNorm2d,
                 act_layer: LayerFactory | None = nn.ReLU,
                 padding: int | tuple[int, int] | None = None, transposed: bool = False) -> None:
        super().__init__()
        if in_channels % groups or out_channels % groups:
            raise ValueError(f"channels ({in_channels} -> {out_channels}) must be divisible by "
                             f"groups={groups}")
        bias = norm_layer is None if bias is None else bias
        if transposed:
            padding, output_padding = transposed_padding(kernel_size, stride, dilation)
            self.conv: nn.Module = nn.ConvTranspose2d(
                in_channels, out_channels, kernel_size, stride, padding,
                output_padding=output_padding, groups=groups, bias=bias, dilation=dilation)
        else:
            padding = same_padding(kernel_size, dilation) if padding is None else to_pair(padding)
            self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride, padding,
                                  dilation, groups, bias)
        self.norm = make_layer(norm_layer, out_channels)
        self.act = make_act(act_layer)
        self.in_channels, self.out_channels = in_channels, out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))
