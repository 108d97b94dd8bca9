"""ShuffleNet V2 (Ma et al., "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture
Design", ECCV 2018).

A 24-channel 3x3/2 stem and a 3x3/2 max pool, three stages of 4 / 8 / 4 :class:`ShuffleV2Unit`
(the first of each with stride 2), a 1x1 conv to 1024 (2048 at 2x), global average pooling and a
linear classifier (Table 5).

By default the parameter shapes equal torchvision's ``shufflenet_v2_x*``, in the same order (a
torchvision checkpoint loads by position): 1,366,792 / 2,278,604 / 3,503,624 / 7,393,996 params,
40.5M / 144.9M / 295.8M / 583.3M MACs at 224x224 for 0.5x / 1x / 1.5x / 2x.

Deviations and options:

* torchvision's downsampling unit gives each branch half of the output channels. The official
  release keeps the shortcut branch at the input width and gives the main branch
  ``out - in`` channels; ``official_downsample=True`` builds that form, which reproduces the
  paper's MACs: 40.5M / 145.8M / 299.0M / 590.8M (paper: 41 / 146 / 299 / 591M). At 0.5x every
  downsampling unit has ``in = out / 2``, so both forms are the same network; its 40.5M is 1.3%
  under the paper's rounded "41M", the others are within 0.2%.
* The official release shuffles at the start of each stride-1 unit (splitting even and odd
  channels) rather than at the end of every unit; both orders give the same function up to a
  fixed permutation of the learned weights. The shuffle at the end (torchvision's order) is used
  for both forms.
* The classifier has a bias, like torchvision's (the official release has none). ``drop_rate``
  defaults to 0 like torchvision (the official 2x used dropout 0.2 before the classifier).
* Initialisation follows the official release (see ``init_shufflenet_weights``); torchvision
  keeps PyTorch's default initialisation. Only the starting point differs.
* ``feature_info`` lists the stem (stride 2), the max pool (4), stages 2 and 3 (8, 16) and the
  final 1x1 conv (32); ``min_input_size`` is 32x32.

``output_stride=16`` or ``8`` builds the downsampling units of the last stages at stride 1 and
dilates the depthwise convolutions after them (:mod:`lightnets.models.stages`); the first unit
of a dilated stage keeps the previous dilation.

Pretrained weights (:mod:`lightnets.weights`): torchvision's names (``conv1``, ``stageN``,
``branch1`` for our shortcut branch, ``branch2`` for the main one, ``conv5``, ``fc``) are renamed
by the rules at the bottom; the tensors are the same.
"""

from __future__ import annotations

from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.shufflenet_units import ShuffleV2Unit
from lightnets.models.base import Classifier
from lightnets.models.shufflenet_v1 import init_shufflenet_weights, shufflenet_stem
from lightnets.registry import Peer, PeerWeights, register_model

# Ma et al. 2018, Table 5: output channels of conv1, stages 2-4 and conv5, per width
WIDTHS = {0.5: (24, 48, 96, 192, 1024), 1.0: (24, 116, 232, 464, 1024),
          1.5: (24, 176, 352, 704, 1024), 2.0: (24, 244, 488, 976, 2048)}
STAGE_REPEATS = (4, 8, 4)  # Table 5: one strided unit + 3 / 7 / 3 units


class ShuffleNetV2(Classifier):
    """Stem, max pool, three stages of ShuffleNet V2 units, 1x1 conv, classifier."""

    family = "ShuffleNetV2"
    paper = ("Ma et al., ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture "
             "Design, ECCV 2018")
    min_input_size = (32, 32)

    def __init__(self, width_mult: float = 1.0, widths: tuple[int, ...] | None = None,
                 stage_repeats: tuple[int, ...] = STAGE_REPEATS, official_downsample: bool = False,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.0,
                 output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if widths is None:  # the paper's widths are a table, not a formula of width_mult
            if width_mult not in WIDTHS:
                raise ValueError(f"width_mult must be one of {', '.join(map(str, WIDTHS))} "
                                 f"(Table 5), got {width_mult!r}; pass widths= for others")
            widths = WIDTHS[width_mult]
        self.width_mult = width_mult
        if len(widths) != len(stage_repeats) + 2:
            raise ValueError(f"widths {widths} must hold the stem, one width per stage "
                             f"({len(stage_repeats)}) and the final conv")
        self.official_downsample = official_downsample
        channels, *stage_widths, last_channels = widths
        tracker = self.track_stages(output_stride)
        layers = shufflenet_stem(in_chans, channels, tracker)
        for index, (width, repeats) in enumerate(zip(stage_widths, stage_repeats)):
            step = tracker.layer(2)
            units = [ShuffleV2Unit(channels, width, stride=step.stride,
                                   keep_input_width=official_downsample,
                                   dilation=step.first_dilation, strided=step.strided)]
            units += [ShuffleV2Unit(width, width, dilation=step.dilation)
                      for _ in range(repeats - 1)]
            layers.append(nn.Sequential(*units))
            channels = width
            if index < len(stage_widths) - 1:  # the last stage shares its stride with conv5
                tracker.end_stage(width, f"features.{len(layers) - 1}")
        layers.append(ConvNormAct(channels, last_channels, 1))
        tracker.end_stage(last_channels, f"features.{len(layers) - 1}")
        self.features = nn.Sequential(*layers)
        self.build_head(last_channels)
        init_shufflenet_weights(self, layers[0])


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
# torchvision's Sequential indices inside a unit: branch1 = dw conv, BN, 1x1 conv, BN, ReLU;
# branch2 = 1x1 conv, BN, ReLU, dw conv, BN, 1x1 conv, BN, ReLU
TORCHVISION_KEYS = [
    (r"^conv1\.0\.", "features.0.conv."), (r"^conv1\.1\.", "features.0.norm."),
    (r"^stage(\d)\.", r"features.\1."), (r"^conv5\.0\.", "features.5.conv."),
    (r"^conv5\.1\.", "features.5.norm."), (r"^fc\.", "classifier."),
    (r"\.branch1\.0\.", ".shortcut.0.conv."), (r"\.branch1\.1\.", ".shortcut.0.norm."),
    (r"\.branch1\.2\.", ".shortcut.1.conv."), (r"\.branch1\.3\.", ".shortcut.1.norm."),
    (r"\.branch2\.0\.", ".main.0.conv."), (r"\.branch2\.1\.", ".main.0.norm."),
    (r"\.branch2\.3\.", ".main.1.conv."), (r"\.branch2\.4\.", ".main.1.norm."),
    (r"\.branch2\.5\.", ".main.2.conv."), (r"\.branch2\.6\.", ".main.2.norm.")]


def twins(name: str) -> dict[str, Peer]:
    return {"torchvision": Peer(name, weights=PeerWeights(TORCHVISION_KEYS))}


@register_model(peers=twins("shufflenet_v2_x0_5"))
def shufflenet_v2_x0_5(width_mult: float = 0.5, **kwargs) -> ShuffleNetV2:
    return ShuffleNetV2(width_mult, **kwargs)


@register_model(aliases=["shufflenet_v2"], peers=twins("shufflenet_v2_x1_0"))
def shufflenet_v2_x1_0(width_mult: float = 1.0, **kwargs) -> ShuffleNetV2:
    return ShuffleNetV2(width_mult, **kwargs)


@register_model(peers=twins("shufflenet_v2_x1_5"))
def shufflenet_v2_x1_5(width_mult: float = 1.5, **kwargs) -> ShuffleNetV2:
    return ShuffleNetV2(width_mult, **kwargs)


@register_model(peers=twins("shufflenet_v2_x2_0"))
def shufflenet_v2_x2_0(width_mult: float = 2.0, **kwargs) -> ShuffleNetV2:
    return ShuffleNetV2(width_mult, **kwargs)
