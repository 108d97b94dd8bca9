"""MobileNet V1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", 2017).

A strided 3x3 stem and 13 depthwise-separable layers (depthwise 3x3 + BN + ReLU, pointwise 1x1 +
BN + ReLU; Table 1), global average pooling and one fully-connected layer. The width multiplier
``alpha`` (Sec. 3.3, Table 6) scales every layer, the 1024-channel last one and the classifier's
input included. Measured at 224x224 against the paper (Table 6/7):

=====  ================  ==============
alpha  params (paper)    MACs (paper)
=====  ================  ==============
1.0    4,231,976 (4.2M)  568.7M (569M)
0.75   2,585,560 (2.6M)  325.4M (325M)
0.5    1,331,592 (1.3M)  149.5M (149M)
0.25     470,072 (0.5M)   41.0M (41M)
=====  ================  ==============

(The paper rounds params to 0.1M: 0.47M is its "0.5M".)

Choices where the paper is silent or loose:

* Channel rounding: the paper scales channels by ``alpha``; the TF-slim release truncates,
  ``max(int(c * alpha), 8)``. lightnets does the same by default (``round_to=1``); the paper's
  four multipliers give multiples of 8 either way. ``round_to=8`` rounds to multiples of 8 with
  :func:`make_divisible`, as MobileNetV2 does, for other multipliers.
* Table 1 lists the last depthwise layer with stride 2, but its input and output are both 7x7:
  a known typo; it has stride 1 here (as in the release), so the total stride is 32.
* Activation: ReLU as in the paper (the TF release uses ReLU6; pass ``act_layer="relu6"`` or
  ``nn.ReLU6``). timm's ``mobilenetv1_100`` uses ReLU6 too: its weights load with
  ``act_layer="relu6"`` (:mod:`lightnets.weights`; the rules renaming its keys are at the
  bottom).
* Dropout: the paper uses little regularisation and names none; the TF release keeps 99.9% of
  the pooled features, so ``drop_rate`` defaults to 0.001.
* Initialisation: truncated normal, standard deviation 0.09 cut at two deviations, for every
  convolution and the classifier, as in the TF-slim release; BN starts at identity.

``output_stride=16`` or ``8`` dilates the last stages (:mod:`lightnets.models.stages`); the
first layer of a dilated stage keeps the previous dilation, as TF-slim's ``mobilenet_v1``
does with its ``output_stride``.
"""

from __future__ import annotations

from torch import nn

from lightnets.layers import ConvNormAct, DepthwiseSeparableConv, make_divisible
from lightnets.layers.helpers import LayerFactory
from lightnets.models.base import Classifier, trunc_normal_init
from lightnets.models.mobilenet_v2 import TIMM_STEM, timm_block_keys
from lightnets.registry import Peer, PeerWeights, register_model

# Howard et al. 2017, Table 1: (output channels, stride) of each depthwise-separable layer,
# after a 32-channel 3x3 stride-2 stem
LAYERS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
          (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]
STEM_CHANNELS = 32
INIT_STD = 0.09  # TF-slim mobilenet_v1 weights_initializer
ACTIVATIONS = {"relu": nn.ReLU, "relu6": nn.ReLU6}


def scale_channels(channels: int, width_mult: float, round_to: int = 1) -> int:
    """``channels * width_mult``: truncated and at least 8 (TF-slim) for ``round_to=1``,
    otherwise rounded to a multiple of ``round_to``."""
    if round_to > 1:
        return make_divisible(channels * width_mult, round_to)
    return max(8, int(channels * width_mult))


class MobileNetV1(Classifier):
    """A 3x3 stride-2 stem and the depthwise-separable layers of ``layers``, all scaled by
    ``width_mult``."""

    family = "MobileNetV1"
    paper = ("Howard et al., MobileNets: Efficient Convolutional Neural Networks for Mobile "
             "Vision Applications, arXiv:1704.04861, 2017")
    min_input_size = (32, 32)  # the total stride: the last map is then 1x1

    def __init__(self, layers: list[tuple[int, int]] = LAYERS, width_mult: float = 1.0,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.001,
                 round_to: int = 1, act_layer: LayerFactory | str = "relu",
                 output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if isinstance(act_layer, str):  # a name keeps the checkpoint's arguments plain data
            if act_layer not in ACTIVATIONS:
                raise ValueError(f"act_layer must be one of {', '.join(ACTIVATIONS)} or a "
                                 f"module class, got {act_layer!r}")
            act_layer = ACTIVATIONS[act_layer]
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if not isinstance(round_to, int) or round_to < 1:
            raise ValueError(f"round_to must be a positive integer, got {round_to!r}")
        self.width_mult = width_mult
        channels = scale_channels(STEM_CHANNELS, width_mult, round_to)
        tracker = self.track_stages(output_stride)
        blocks: list[nn.Module] = [ConvNormAct(in_chans, channels, 3,
                                               stride=tracker.layer(2).stride,
                                               act_layer=act_layer)]
        for out, stride in layers:
            if stride > 1:  # the previous layer ends a stage
                tracker.end_stage(channels, f"features.{len(blocks) - 1}")
            out = scale_channels(out, width_mult, round_to)
            step = tracker.layer(stride)
            blocks.append(DepthwiseSeparableConv(channels, out, 3, step.stride,
                                                 step.first_dilation, act_layer=act_layer))
            channels = out
        tracker.end_stage(channels, f"features.{len(blocks) - 1}")
        self.features = nn.Sequential(*blocks)
        self.build_head(channels)
        self.init_weights()

    def init_weights(self) -> None:
        """Truncated normal (std 0.09, cut at 2 std) for convolutions and the classifier, zero
        biases, identity BN, as in the TF-slim release."""
        trunc_normal_init(self, std=INIT_STD, cutoff=2 * INIT_STD)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
# timm's depthwise-separable blocks, grouped in stages of 1, 2, 2, 6 and 2: conv_dw / bn1, conv_pw
# / bn2; no head convolution
TIMM_KEYS = [*TIMM_STEM, *timm_block_keys([1, 2, 2, 6, 2]),
             (r"\.conv_dw\.", ".depthwise.conv."), (r"\.bn1\.", ".depthwise.norm."),
             (r"\.conv_pw\.", ".pointwise.conv."), (r"\.bn2\.", ".pointwise.norm.")]
TIMM_WEIGHTS = PeerWeights(TIMM_KEYS, options={"act_layer": "relu6"},  # tag ra4_e3600_r224_in1k
                           preprocess={"mean": (0.5,) * 3, "std": (0.5,) * 3})


@register_model(aliases=["mobilenet_v1"],
                peers={"timm": Peer("mobilenetv1_100", weights=TIMM_WEIGHTS)})
def mobilenet_v1_x1_0(width_mult: float = 1.0, **kwargs) -> MobileNetV1:
    return MobileNetV1(LAYERS, width_mult=width_mult, **kwargs)


@register_model
def mobilenet_v1_x0_75(width_mult: float = 0.75, **kwargs) -> MobileNetV1:
    return MobileNetV1(LAYERS, width_mult=width_mult, **kwargs)


@register_model
def mobilenet_v1_x0_5(width_mult: float = 0.5, **kwargs) -> MobileNetV1:
    return MobileNetV1(LAYERS, width_mult=width_mult, **kwargs)


@register_model
def mobilenet_v1_x0_25(width_mult: float = 0.25, **kwargs) -> MobileNetV1:
    return MobileNetV1(LAYERS, width_mult=width_mult, **kwargs)
