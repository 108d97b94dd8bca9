"""Building blocks of modern CNN design, one small file per kind, shared by every family."""

from lightnets.layers.conv_norm_act import ConvNormAct, transposed_padding
from lightnets.layers.drop_path import drop_path, drop_path_rates
from lightnets.layers.fire import Fire
from lightnets.layers.ghost import GhostBottleneck, GhostModule
from lightnets.layers.helpers import make_divisible, same_padding
from lightnets.layers.inception import (
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionModule,
)
from lightnets.layers.inverted_residual import InvertedResidual
from lightnets.layers.resnet_blocks import BasicBlock, Bottleneck
from lightnets.layers.separable import DepthwiseSeparableConv, SpatiallySeparableConv
from lightnets.layers.shuffle import ChannelShuffle, channel_shuffle
from lightnets.layers.shufflenet_units import ShuffleV1Unit, ShuffleV2Unit
from lightnets.layers.squeeze_excite import SqueezeExcite
from lightnets.layers.xception_block import XceptionBlock

__all__ = [
    "BasicBlock", "Bottleneck", "ChannelShuffle", "ConvNormAct", "DepthwiseSeparableConv", "Fire",
    "GhostBottleneck", "GhostModule", "InceptionA", "InceptionB", "InceptionC", "InceptionD",
    "InceptionE", "InceptionModule", "InvertedResidual", "ShuffleV1Unit", "ShuffleV2Unit",
    "SpatiallySeparableConv", "SqueezeExcite", "XceptionBlock", "channel_shuffle",
    "drop_path", "drop_path_rates", "make_divisible", "same_padding", "transposed_padding",
]
