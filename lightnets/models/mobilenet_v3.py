"""MobileNetV3 (Howard et al., "Searching for MobileNetV3", ICCV 2019), Large and Small.

The parameter shapes equal torchvision's ``mobilenet_v3_large`` / ``mobilenet_v3_small``
(5,483,032 / 2,542,856 params; 216.6M / 56.5M MACs at 224x224; the paper gives 219M / 56M).
Blocks are MobileNetV2 inverted residuals with 3x3 or 5x5 depthwise kernels, hard-swish ("HS")
in the later layers and squeeze-excite (1/4 of the expanded width, rounded to 8, hard-sigmoid
gate) on the rows marked SE. BatchNorm uses eps 0.001 and momentum 0.01, as the reference
implementations do.

The head follows the paper: 1x1 conv to 960 (Small: 576) + hard-swish, global pooling, a
fully-connected layer to 1280 (1024) with hard-swish and no BN, dropout 0.2 and the classifier.
``num_features`` is the pooled width (960 / 576); ``forward_head(x, pre_logits=True)`` returns
the 1280 / 1024-d vector and ``reset_classifier`` replaces only the last layer.

Where this differs from the paper's text (as torchvision does):
* Table 2 marks the Small model's last 1x1 conv with SE; the released model has none there, and
  only without it do the paper's own 2.5M params / 56M MACs come out (that SE would add 166,608).
* ``width_mult`` follows torchvision (same shapes at every width): each width is rounded to a
  multiple of 8, the last conv is 6x the last block's width and the 1280/1024 layer is scaled
  too. The paper's 0.75x Large (155M MACs / 4.0M params) comes from the TF release, which
  rounds widths differently; 0.75x here gives torchvision's 140M / 3.38M.
* ``min_input_size`` is 32x32, the total stride (1x1 final map); smaller inputs would also run.

``output_stride=16`` or ``8`` dilates the last stages (:mod:`lightnets.models.stages`). The
first block of a dilated stage already takes the new dilation, as torchvision's
``dilated=True`` does (what its DeepLabV3 and LR-ASPP models are built on): at 16 the
dilations equal torchvision's, so its segmentation weights compute the same function here.

``bn_eps`` sets BatchNorm's epsilon: 0.001 (the reference's, torchvision's) by default; timm's
``mobilenetv3_*_100`` were trained with PyTorch's default 1e-5, so their weights load with
``bn_eps=1e-5`` (:mod:`lightnets.weights`). timm's hidden head layer is a 1x1 convolution on
the pooled map with bias, ours the equivalent fully-connected layer: the kernel is reshaped.
The renaming rules of both twins are at the bottom.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from lightnets.layers import (ConvNormAct, InvertedResidual, SqueezeExcite, drop_path_rates,
                              make_divisible)
from lightnets.models.base import Classifier, he_init
from lightnets.models.mobilenet_v2 import (TIMM_FIRST_BLOCK, TIMM_INVERTED_RESIDUAL, TIMM_STEM,
                                           timm_block_keys)
from lightnets.registry import Peer, PeerWeights, register_model

# Howard et al. 2019, Table 1 (Large): kernel, expansion size, out, SE, NL, stride
LARGE = [(3, 16, 16, False, "RE", 1), (3, 64, 24, False, "RE", 2), (3, 72, 24, False, "RE", 1),
         (5, 72, 40, True, "RE", 2), (5, 120, 40, True, "RE", 1), (5, 120, 40, True, "RE", 1),
         (3, 240, 80, False, "HS", 2), (3, 200, 80, False, "HS", 1),
         (3, 184, 80, False, "HS", 1), (3, 184, 80, False, "HS", 1),
         (3, 480, 112, True, "HS", 1), (3, 672, 112, True, "HS", 1),
         (5, 672, 160, True, "HS", 2), (5, 960, 160, True, "HS", 1), (5, 960, 160, True, "HS", 1)]
LARGE_HEAD = (6, 1280)  # Table 1: last 1x1 conv 160 -> 960 (6x), 1x1 "NBN" layer after pooling

# Howard et al. 2019, Table 2 (Small): kernel, expansion size, out, SE, NL, stride
SMALL = [(3, 16, 16, True, "RE", 2), (3, 72, 24, False, "RE", 2), (3, 88, 24, False, "RE", 1),
         (5, 96, 40, True, "HS", 2), (5, 240, 40, True, "HS", 1), (5, 240, 40, True, "HS", 1),
         (5, 120, 48, True, "HS", 1), (5, 144, 48, True, "HS", 1),
         (5, 288, 96, True, "HS", 2), (5, 576, 96, True, "HS", 1), (5, 576, 96, True, "HS", 1)]
SMALL_HEAD = (6, 1024)  # Table 2: 96 -> 576 (6x; without the SE it marks there: see above)

ACTIVATIONS = {"RE": nn.ReLU, "HS": nn.Hardswish}

Row = tuple[int, int, int, bool, str, int]


class MobileNetV3(Classifier):
    """A 16-channel hard-swish stem, the bottleneck rows of ``blocks``, a 1x1 conv widening the
    last block ``head[0]`` times and the paper's two-layer head (hidden width ``head[1]``).
    ``drop_path_rate``: stochastic depth rising linearly to it at the last block
    (:func:`lightnets.layers.drop_path_rates`)."""

    family = "MobileNetV3"
    paper = "Howard et al., Searching for MobileNetV3, ICCV 2019"

    def __init__(self, blocks: list[Row], head: tuple[int, int], width_mult: float = 1.0,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.2,
                 bn_eps: float = 0.001, output_stride: int = 32,
                 drop_path_rate: float = 0.0) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if not width_mult > 0:
            raise ValueError(f"width_mult must be positive, got {width_mult!r}")
        unknown = {row[4] for row in blocks} - ACTIVATIONS.keys()
        if unknown:
            raise ValueError(f"unknown non-linearity {sorted(unknown)}; expected 'RE' or 'HS'")
        self.width_mult = width_mult
        norm_layer = partial(nn.BatchNorm2d, eps=bn_eps, momentum=0.01)
        se_layer = partial(SqueezeExcite, rd_ratio=0.25, rd_divisor=8, gate_layer=nn.Hardsigmoid)
        channels = make_divisible(16 * width_mult)
        tracker = self.track_stages(output_stride, dilate_first=True)
        rates = iter(drop_path_rates(drop_path_rate, len(blocks)))
        layers: list[nn.Module] = [ConvNormAct(in_chans, channels, 3,
                                               stride=tracker.layer(2).stride,
                                               norm_layer=norm_layer, act_layer=nn.Hardswish)]
        for kernel, expansion, out, use_se, nonlinearity, stride in blocks:
            if stride > 1:  # the previous layer ends a stage
                tracker.end_stage(channels, f"features.{len(layers) - 1}")
            out = make_divisible(out * width_mult)
            step = tracker.layer(stride)
            layers.append(InvertedResidual(
                channels, out, make_divisible(expansion * width_mult), step.stride, kernel,
                step.first_dilation, act_layer=ACTIVATIONS[nonlinearity],
                se_layer=se_layer if use_se else None, norm_layer=norm_layer,
                strided=step.strided, drop_path_rate=next(rates)))
            channels = out
        last_conv, hidden = head[0] * channels, make_divisible(head[1] * width_mult)
        layers.append(ConvNormAct(channels, last_conv, 1, norm_layer=norm_layer,
                                  act_layer=nn.Hardswish))
        tracker.end_stage(last_conv, f"features.{len(layers) - 1}")
        self.features = nn.Sequential(*layers)
        # the paper's head: pool, then a fully-connected layer + hard-swish without BN
        self.build_head(last_conv, nn.Sequential(nn.Linear(last_conv, hidden), nn.Hardswish()),
                        hidden)
        self.init_weights()

    def init_weights(self) -> None:
        """He initialisation (fan-out) for convolutions, N(0, 0.01) for the fully-connected
        layers, zero biases, as in torchvision's reference implementation."""
        he_init(self)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
def torchvision_keys(blocks: list[Row]) -> list[tuple[str, str]]:
    """torchvision's ``features.i.block.j``: the expansion (absent where the expansion size is
    the input width), depthwise, squeeze-excite and projection layers in order, each conv-BN
    layer as ``j.0`` / ``j.1``."""
    rules = [(r"^features\.0\.0\.", "features.0.conv."), (r"^features\.0\.1\.", "features.0.norm.")]
    channels = 16
    for index, (_, expansion, out, use_se, _, _) in enumerate(blocks, start=1):
        parts = [*(["expand"] if expansion != channels else []), "depthwise",
                 *(["se"] if use_se else []), "project"]
        for j, part in enumerate(parts):
            if part == "se":
                rules.append((rf"^features\.{index}\.block\.{j}\.", f"features.{index}.se."))
                continue
            rules += [(rf"^features\.{index}\.block\.{j}\.0\.", f"features.{index}.{part}.conv."),
                      (rf"^features\.{index}\.block\.{j}\.1\.", f"features.{index}.{part}.norm.")]
        channels = out
    last = len(blocks) + 1
    return [*rules, (rf"^features\.{last}\.0\.", f"features.{last}.conv."),
            (rf"^features\.{last}\.1\.", f"features.{last}.norm."),
            (r"^classifier\.0\.", "head_hidden.0."), (r"^classifier\.3\.", "classifier.")]


def timm_keys(stage_repeats: list[int]) -> list[tuple[str, str]]:
    """timm's names: its stages of blocks (the last stage the 1x1 conv: ``conv`` / ``bn1``) and
    ``conv_head``, the hidden head layer."""
    last = sum(stage_repeats)
    return [*TIMM_STEM, *timm_block_keys(stage_repeats),
            (rf"^features\.{last}\.conv\.", f"features.{last}.conv."),
            (rf"^features\.{last}\.bn1\.", f"features.{last}.norm."),
            (r"^conv_head\.", "head_hidden.0."), *TIMM_FIRST_BLOCK, *TIMM_INVERTED_RESIDUAL]


def twins(name: str, blocks: list[Row], timm: str, timm_stages: list[int]) -> dict[str, Peer]:
    return {"torchvision": Peer(name, weights=PeerWeights(torchvision_keys(blocks))),
            "timm": Peer(timm, weights=PeerWeights(timm_keys(timm_stages),
                                                   reshaped=("head_hidden.0.weight",),
                                                   options={"bn_eps": 1e-5}))}


# timm's arch_def groups the rows into stages: 1, 2, 3, 4, 2, 3 blocks, then the 1x1 conv
@register_model(peers=twins("mobilenet_v3_large", LARGE, "mobilenetv3_large_100",
                            [1, 2, 3, 4, 2, 3, 1]))
def mobilenet_v3_large(width_mult: float = 1.0, **kwargs) -> MobileNetV3:
    return MobileNetV3(LARGE, LARGE_HEAD, width_mult=width_mult, **kwargs)


# timm's arch_def: 1, 2, 3, 2, 3 blocks, then the 1x1 conv
@register_model(peers=twins("mobilenet_v3_small", SMALL, "mobilenetv3_small_100",
                            [1, 2, 3, 2, 3, 1]))
def mobilenet_v3_small(width_mult: float = 1.0, **kwargs) -> MobileNetV3:
    return MobileNetV3(SMALL, SMALL_HEAD, width_mult=width_mult, **kwargs)
