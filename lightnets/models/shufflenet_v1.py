"""ShuffleNet V1 (Zhang et al., "ShuffleNet: An Extremely Efficient Convolutional Neural Network
for Mobile Devices", CVPR 2018).

A 24-channel 3x3/2 stem and a 3x3/2 max pool, three stages of 4 / 8 / 4 :class:`ShuffleV1Unit`
(the first of each with stride 2), global average pooling and a linear classifier (Table 1).
``shufflenet_v1_g{1,2,3,4,8}_x{1_0,0_5,0_25}`` are the paper's group counts and widths ("sx"
scales the number of filters, Table 2). The paper publishes no parameter counts; MACs at 224x224:

=====  ======================================  ======================================
width  measured, g = 1 / 2 / 3 / 4 / 8          paper
=====  ======================================  ======================================
1x     143.1 / 140.8 / 137.5 / 134.3 / 138.4M  143 / 140 / 137 / 133 / 137M
0.5x   38.5 / 38.9 / 37.6 / 37.9 / 36.6M       38M (per width, not per group count)
0.25x  13.2 / 13.5 / 13.3 / 13.5 / 12.4M       13M
=====  ======================================  ======================================

Choices the paper leaves open, and deviations:

* Stage widths at scale ``s`` (not stated in the paper): ``width * s`` rounded to a multiple of
  ``4 * groups``, so the bottleneck (``width / 4``) splits evenly into the groups. Every width
  of Table 1 already is such a multiple, so 1x is exact.
* Stem width: scaled like the stages, as in the official release (12 channels at 0.5x, 48 at
  2x), but never below 12 channels, and rounded *down* to a multiple of ``groups`` (the first
  unit's main branch outputs ``stage width - stem width`` through a group conv). The floor of 12
  is what reproduces the paper's 0.25x MACs: a 6-channel stem gives 11.0M even for g=1, where
  no rounding is involved. Rounding down keeps g=8 at 0.5x within the paper's 38M (a 16-channel
  stem gives 40.5M). This reproduces the official 0.5x g=3 widths (12 / 120 / 240 / 480).
* As in the paper, the first 1x1 conv of stage 2 is dense; the channel shuffle after it is
  kept, as the official release does.
* ReLU follows the addition / concatenation (Fig. 2b/c); the official release applies it to the
  main branch before concatenating, which is the same because the pooled shortcut is a pooled
  ReLU output.
* The classifier has a bias (the official release has none); ``drop_rate`` defaults to 0 (no
  dropout in the paper or the release).
* Initialisation follows the official release: convolutions N(0, 1 / fan-in-per-group)
  (the stem N(0, 0.01)), norms weight 1 and bias 1e-4, classifier N(0, 0.01) and zero bias.
* ``feature_info`` lists the stem (stride 2), the max pool (4) and stages 2-4 (8, 16, 32);
  ``min_input_size`` is 32x32 (the last stage is then 1x1).

``output_stride=16`` or ``8`` builds the downsampling units of the last stages at stride 1
(their average-pool shortcut keeps the size) and dilates the depthwise convolutions after them
(:mod:`lightnets.models.stages`); the first unit of a dilated stage keeps the previous dilation.
"""

from __future__ import annotations

from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.drop_path import drop_path_rates
from lightnets.layers.helpers import make_divisible
from lightnets.layers.pooling import max_pool
from lightnets.layers.shufflenet_units import ShuffleV1Unit
from lightnets.models.base import Classifier
from lightnets.models.stages import StageTracker
from lightnets.registry import register_model

# Zhang et al. 2018, Table 1: output channels of stages 2, 3, 4 per number of groups g
STAGE_WIDTHS = {1: (144, 288, 576), 2: (200, 400, 800), 3: (240, 480, 960),
                4: (272, 544, 1088), 8: (384, 768, 1536)}
STAGE_REPEATS = (4, 8, 4)  # Table 1: one strided unit + 3 / 7 / 3 units
STEM_WIDTH = 24
MIN_STEM_WIDTH = 12  # fits the paper's 0.25x MACs (see the module docstring)


def stem_width(width_mult: float, groups: int) -> int:
    """The stem's channels: ``24 * width_mult``, at least 12, rounded down to a multiple of
    ``groups`` (the first unit's grouped main branch outputs ``stage width - stem width``)."""
    return max(groups, int(max(STEM_WIDTH * width_mult, MIN_STEM_WIDTH)) // groups * groups)


def shufflenet_stem(in_chans: int, channels: int, tracker: StageTracker) -> list[nn.Module]:
    """The stem both ShuffleNets share (V1 Table 1, V2 Table 5): a 3x3/2 conv and a 3x3/2
    max-pool, each ending a stage (strides 2 and 4)."""
    layers = [ConvNormAct(in_chans, channels, 3, stride=tracker.layer(2).stride)]
    tracker.end_stage(channels, "features.0")
    layers.append(max_pool(3, tracker.layer(2).stride, 1))
    tracker.end_stage(channels, "features.1")
    return layers


def init_shufflenet_weights(model: nn.Module, stem: nn.Module) -> None:
    """The official release's initialisation (ShuffleNet V1 and V2): convolutions
    N(0, 1 / (in_channels / groups)), the stem N(0, 0.01); norms (1, 1e-4); linear N(0, 0.01)."""
    stem_convs = {id(m) for m in stem.modules()}
    for module in model.modules():
        if isinstance(module, nn.Conv2d):
            std = 0.01 if id(module) in stem_convs else 1.0 / module.weight.shape[1]
            nn.init.normal_(module.weight, 0, std)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            nn.init.ones_(module.weight)
            nn.init.constant_(module.bias, 1e-4)
        elif isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, 0, 0.01)
            if module.bias is not None:
                nn.init.zeros_(module.bias)


class ShuffleNetV1(Classifier):
    """Stem, max pool, three stages of ShuffleNet units with ``groups`` groups, classifier.
    ``drop_path_rate``: stochastic depth rising linearly to it at the last block
    (:func:`lightnets.layers.drop_path_rates`)."""

    family = "ShuffleNetV1"
    paper = ("Zhang et al., ShuffleNet: An Extremely Efficient Convolutional Neural Network for "
             "Mobile Devices, CVPR 2018")
    min_input_size = (32, 32)

    def __init__(self, groups: int = 3, width_mult: float = 1.0,
                 stage_widths: tuple[int, ...] | None = None,
                 stage_repeats: tuple[int, ...] = STAGE_REPEATS,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0,
                 output_stride: int = 32, drop_path_rate: float = 0.0) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if not isinstance(groups, int) or groups < 1:
            raise ValueError(f"groups must be a positive integer, got {groups!r}")
        if stage_widths is None:  # Table 1's row for this number of groups
            if groups not in STAGE_WIDTHS:
                raise ValueError(f"groups must be one of {', '.join(map(str, STAGE_WIDTHS))} "
                                 f"(Table 1), got {groups}; pass stage_widths= for others")
            stage_widths = STAGE_WIDTHS[groups]
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        if len(stage_widths) != len(stage_repeats):
            raise ValueError(f"stage_widths {stage_widths} and stage_repeats {stage_repeats} "
                             f"must have the same length")
        self.groups, self.width_mult = groups, width_mult
        channels = stem_width(width_mult, groups)
        tracker = self.track_stages(output_stride)
        layers = shufflenet_stem(in_chans, channels, tracker)
        rates = iter(drop_path_rates(drop_path_rate, sum(stage_repeats)))
        for index, (width, repeats) in enumerate(zip(stage_widths, stage_repeats)):
            width = make_divisible(width * width_mult, 4 * groups)
            units = []
            for i in range(repeats):
                step = tracker.layer(2 if i == 0 else 1)
                units.append(ShuffleV1Unit(channels, width, groups, stride=step.stride,
                                           group_first_conv=index > 0 or i > 0,
                                           dilation=step.first_dilation, strided=step.strided,
                                           drop_path_rate=next(rates)))
                channels = width
            layers.append(nn.Sequential(*units))
            tracker.end_stage(channels, f"features.{len(layers) - 1}")
        self.features = nn.Sequential(*layers)
        self.build_head(channels)
        init_shufflenet_weights(self, layers[0])


# Table 1 rows (groups) at the widths of Table 2 (1x, 0.5x, 0.25x)
@register_model
def shufflenet_v1_g1_x1_0(groups: int = 1, width_mult: float = 1.0,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g1_x0_5(groups: int = 1, width_mult: float = 0.5,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g1_x0_25(groups: int = 1, width_mult: float = 0.25,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g2_x1_0(groups: int = 2, width_mult: float = 1.0,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g2_x0_5(groups: int = 2, width_mult: float = 0.5,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g2_x0_25(groups: int = 2, width_mult: float = 0.25,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model(aliases=["shufflenet_v1"])
def shufflenet_v1_g3_x1_0(groups: int = 3, width_mult: float = 1.0,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g3_x0_5(groups: int = 3, width_mult: float = 0.5,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g3_x0_25(groups: int = 3, width_mult: float = 0.25,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g4_x1_0(groups: int = 4, width_mult: float = 1.0,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g4_x0_5(groups: int = 4, width_mult: float = 0.5,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g4_x0_25(groups: int = 4, width_mult: float = 0.25,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g8_x1_0(groups: int = 8, width_mult: float = 1.0,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g8_x0_5(groups: int = 8, width_mult: float = 0.5,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)


@register_model
def shufflenet_v1_g8_x0_25(groups: int = 8, width_mult: float = 0.25,
                          **kwargs) -> ShuffleNetV1:
    return ShuffleNetV1(groups, width_mult, **kwargs)
