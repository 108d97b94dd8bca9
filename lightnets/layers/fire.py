"""The Fire module of SqueezeNet (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x
fewer parameters and <0.5MB model size", 2016, Sec. 3.2 and Fig. 1), with the paper's optional
"simple bypass" (Sec. 6, Fig. 2)."""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.helpers import LayerFactory


class Fire(nn.Module):
    """Squeeze 1x1 -> act, then expand 1x1 -> act and expand 3x3 -> act side by side,
    concatenated (1x1 channels first).

    The squeeze layer narrows the input of the 3x3 filters (the paper's strategy 2); the expand
    layer mixes cheap 1x1 with 3x3 filters (strategy 1). Output channels:
    ``expand1x1_channels + expand3x3_channels``. ``residual=True`` adds the input (the paper's
    simple bypass) when input and output widths match, and is ignored otherwise, as the paper
    only bypasses the Fire modules whose widths match. ``dilation`` dilates the 3x3 expand
    filters (a trunk at output stride below 32).
    """

    def __init__(self, in_channels: int, squeeze_channels: int, expand1x1_channels: int,
                 expand3x3_channels: int, act_layer: LayerFactory = nn.ReLU,
                 norm_layer: LayerFactory | None = None, residual: bool = False,
                 dilation: int = 1) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("squeeze_channels", squeeze_channels),
                            ("expand1x1_channels", expand1x1_channels),
                            ("expand3x3_channels", expand3x3_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"Fire: {name} must be a positive integer, got {value!r}")
        self.squeeze = ConvNormAct(in_channels, squeeze_channels, 1, norm_layer=norm_layer,
                                   act_layer=act_layer)
        self.expand1x1 = ConvNormAct(squeeze_channels, expand1x1_channels, 1,
                                     norm_layer=norm_layer, act_layer=act_layer)
        self.expand3x3 = ConvNormAct(squeeze_channels, expand3x3_channels, 3, dilation=dilation,
                                     norm_layer=norm_layer, act_layer=act_layer)
        self.in_channels = in_channels
        self.out_channels = expand1x1_channels + expand3x3_channels
        self.has_residual = residual and in_channels == self.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        squeezed = self.squeeze(x)
        out = torch.cat([self.expand1x1(squeezed), self.expand3x3(squeezed)], dim=1)
        return out + x if self.has_residual else out
