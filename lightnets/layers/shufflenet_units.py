"""The building units of ShuffleNet V1 (Zhang et al., "ShuffleNet: An Extremely Efficient
Convolutional Neural Network for Mobile Devices", CVPR 2018, Fig. 2) and ShuffleNet V2 (Ma et
al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design", ECCV 2018,
Fig. 3c/d)."""

from __future__ import annotations

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.drop_path import drop_path
from lightnets.layers.helpers import LayerFactory
from lightnets.layers.pooling import avg_pool
from lightnets.layers.shuffle import ChannelShuffle


class ShuffleV1Unit(nn.Module):
    """1x1 group conv -> shuffle -> 3x3 depthwise (no activation) -> 1x1 group conv (linear),
    combined with the shortcut, then ReLU (V1 paper, Fig. 2b/c).

    At stride 1 the shortcut is the identity and is added (``in_channels == out_channels``). At
    stride 2 it is a 3x3/2 average pool, concatenated in front of the main branch, which
    therefore outputs ``out_channels - in_channels``. The bottleneck is ``out_channels // 4``
    unless given. ``group_first_conv=False`` leaves the first 1x1 conv dense, as the paper does
    for the first unit of stage 2 whose input is narrow. ``dilation`` dilates the depthwise
    convolution (and the shortcut's pool); ``strided=True`` builds the downsampling unit at
    stride 1, for a trunk at output stride below 32. ``drop_path_rate``: stochastic depth of
    the main branch where it is added to the identity (stride 1); the downsampling unit
    concatenates, so it keeps its branch.
    """

    def __init__(self, in_channels: int, out_channels: int, groups: int, stride: int = 1,
                 bottleneck_channels: int | None = None, group_first_conv: bool = True,
                 act_layer: LayerFactory = nn.ReLU,
                 norm_layer: LayerFactory = nn.BatchNorm2d, dilation: int = 1,
                 strided: bool | None = None, drop_path_rate: float = 0.0) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ShuffleV1Unit: stride must be 1 or 2, got {stride}")
        strided = stride > 1 if strided is None else strided
        if not strided and in_channels != out_channels:
            raise ValueError(f"ShuffleV1Unit: stride 1 adds the identity, so in_channels "
                             f"({in_channels}) must equal out_channels ({out_channels})")
        if strided and out_channels <= in_channels:
            raise ValueError(f"ShuffleV1Unit: stride 2 concatenates the input, so out_channels "
                             f"({out_channels}) must exceed in_channels ({in_channels})")
        mid = out_channels // 4 if bottleneck_channels is None else bottleneck_channels
        main_out = out_channels - in_channels if strided else out_channels
        self.compress = ConvNormAct(in_channels, mid, 1, groups=groups if group_first_conv else 1,
                                    norm_layer=norm_layer, act_layer=act_layer)
        self.shuffle = ChannelShuffle(groups) if groups > 1 else nn.Identity()
        self.depthwise = ConvNormAct(mid, mid, 3, stride, dilation, groups=mid,
                                     norm_layer=norm_layer, act_layer=None)
        self.expand = ConvNormAct(mid, main_out, 1, groups=groups, norm_layer=norm_layer,
                                  act_layer=None)
        self.shortcut = avg_pool(3, stride, 1, dilation) if strided else nn.Identity()
        self.concat_shortcut = strided
        self.drop_path = drop_path(0.0 if strided else drop_path_rate)
        self.act = act_layer()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(self.depthwise(self.shuffle(self.compress(x))))
        shortcut = self.shortcut(x)
        out = (torch.cat((shortcut, out), 1) if self.concat_shortcut
               else self.drop_path(out) + shortcut)
        return self.act(out)


class ShuffleV2Unit(nn.Module):
    """Two branches, concatenated, then a 2-group channel shuffle (V2 paper, Fig. 3c/d).

    Stride 1 (Fig. 3c): the input is split in two halves; the first passes unchanged, the second
    goes through 1x1 -> 3x3 depthwise (no activation) -> 1x1. Stride 2 (Fig. 3d): both branches
    see the whole input; the shortcut branch is 3x3/2 depthwise -> 1x1, the main branch
    1x1 -> 3x3/2 depthwise -> 1x1, with ``out_channels // 2`` channels inside.

    Widths of the downsampling unit's branches: by default each outputs ``out_channels // 2``
    (torchvision's form); ``keep_input_width=True`` keeps the shortcut branch at ``in_channels``
    and gives the main branch ``out_channels - in_channels`` (the official release's form).
    ``dilation`` dilates the depthwise convolutions; ``strided=True`` builds the downsampling
    unit at stride 1, for a trunk at output stride below 32.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 keep_input_width: bool = False, act_layer: LayerFactory = nn.ReLU,
                 norm_layer: LayerFactory = nn.BatchNorm2d, dilation: int = 1,
                 strided: bool | None = None) -> None:
        super().__init__()
        if stride not in (1, 2):
            raise ValueError(f"ShuffleV2Unit: stride must be 1 or 2, got {stride}")
        if out_channels % 2:
            raise ValueError(f"ShuffleV2Unit: out_channels must be even, got {out_channels}")
        mid = out_channels // 2
        strided = stride > 1 if strided is None else strided
        self.split_input = not strided
        if not strided:
            if in_channels != out_channels:
                raise ValueError(f"ShuffleV2Unit: stride 1 keeps the width, so in_channels "
                                 f"({in_channels}) must equal out_channels ({out_channels})")
            main_in, main_out = mid, mid
            self.shortcut: nn.Module = nn.Identity()
        else:
            shortcut_out = in_channels if keep_input_width else mid
            main_in, main_out = in_channels, out_channels - shortcut_out
            if main_out < 1:
                raise ValueError(f"ShuffleV2Unit: out_channels ({out_channels}) must exceed "
                                 f"in_channels ({in_channels}) with keep_input_width=True")
            self.shortcut = nn.Sequential(
                ConvNormAct(in_channels, in_channels, 3, stride, dilation, groups=in_channels,
                            norm_layer=norm_layer, act_layer=None),
                ConvNormAct(in_channels, shortcut_out, 1, norm_layer=norm_layer,
                            act_layer=act_layer))
        self.main = nn.Sequential(
            ConvNormAct(main_in, mid, 1, norm_layer=norm_layer, act_layer=act_layer),
            ConvNormAct(mid, mid, 3, stride, dilation, groups=mid, norm_layer=norm_layer,
                        act_layer=None),
            ConvNormAct(mid, main_out, 1, norm_layer=norm_layer, act_layer=act_layer))
        self.shuffle = ChannelShuffle(2)  # a module, so pruning can find it (lightnets.prune)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.split_input:
            shortcut_in, main_in = x.chunk(2, dim=1)
        else:
            shortcut_in = main_in = x
        out = torch.cat((self.shortcut(shortcut_in), self.main(main_in)), 1)
        return self.shuffle(out)
