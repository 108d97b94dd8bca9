"""Building blocks of modern CNN design, one small file per kind, shared by every family."""

from lightnets.layers.conv_norm_act import ConvNormAct, transposed_padding
from lightnets.layers.helpers import make_divisible, same_padding
from lightnets.layers.inverted_residual import InvertedResidual
from lightnets.layers.separable import DepthwiseSeparableConv, SpatiallySeparableConv
from lightnets.layers.shuffle import ChannelShuffle, channel_shuffle
from lightnets.layers.squeeze_excite import SqueezeExcite

__all__ = [
    "ChannelShuffle", "ConvNormAct", "DepthwiseSeparableConv", "InvertedResidual",
    "SpatiallySeparableConv", "SqueezeExcite", "channel_shuffle", "make_divisible",
    "same_padding", "transposed_padding",
]
