"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018).

At width 1.0 the parameter shapes equal torchvision's ``mobilenet_v2`` (3,504,872 params,
300.8M MACs at 224x224). As in the official release, channels are rounded to multiples of 8 and
a width below 1 does not shrink the final 1280-channel convolution. The paper's 6.9M params at
width 1.4 are reproduced by no implementation; this one has about 6.1M, like the TF release.

``output_stride=16`` or ``8`` dilates the last stages (:mod:`lightnets.models.stages`); the
first block of a dilated stage keeps the previous dilation, as TF-slim's MobileNets do for
DeepLab.

Pretrained weights (:mod:`lightnets.weights`): torchvision's keys number the layers inside each
block (``conv.0.0`` is the expansion, or the depthwise convolution where there is none) and
timm's name them (``conv_pw``, ``conv_dw``, ``conv_pwl``) by stage and block; both rule lists
follow from the stage table and are at the bottom. timm's names are those of its EfficientNet
builder, shared by its MobileNet V1 and V3 (:func:`timm_block_keys`).
"""

from __future__ import annotations

from torch import nn

from lightnets.layers import ConvNormAct, InvertedResidual, drop_path_rates, make_divisible
from lightnets.models.base import Classifier, he_init
from lightnets.registry import Peer, PeerWeights, register_model

# Sandler et al. 2018, Table 2: expansion t, channels c, repeats n, stride s
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class MobileNetV2(Classifier):
    """A 32-channel stem, the inverted-residual stages of ``stages`` and a 1x1 conv to 1280.
    ``drop_path_rate``: stochastic depth of the blocks with a shortcut, rising linearly to the
    rate at the last block (:func:`lightnets.layers.drop_path_rates`)."""

    family = "MobileNetV2"
    paper = ("Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, "
             "CVPR 2018")

    def __init__(self, stages: list[tuple[int, int, int, int]] = STAGES, width_mult: float = 1.0,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.2,
                 round_to: int = 8, output_stride: int = 32, drop_path_rate: float = 0.0
                 ) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        self.width_mult = width_mult
        channels = make_divisible(32 * width_mult, round_to)
        last_channels = make_divisible(1280 * max(1.0, width_mult), round_to)
        tracker = self.track_stages(output_stride)
        rates = iter(drop_path_rates(drop_path_rate, sum(row[2] for row in stages)))
        layers: list[nn.Module] = [ConvNormAct(in_chans, channels, 3,
                                               stride=tracker.layer(2).stride,
                                               act_layer=nn.ReLU6)]
        for expand_ratio, out, repeats, stride in stages:
            out = make_divisible(out * width_mult, round_to)
            if stride > 1:  # the previous layer ends a stage
                tracker.end_stage(channels, f"features.{len(layers) - 1}")
            for i in range(repeats):
                step = tracker.layer(stride if i == 0 else 1)
                layers.append(InvertedResidual(channels, out, round(channels * expand_ratio),
                                               step.stride, dilation=step.first_dilation,
                                               act_layer=nn.ReLU6, strided=step.strided,
                                               drop_path_rate=next(rates)))
                channels = out
        layers.append(ConvNormAct(channels, last_channels, 1, act_layer=nn.ReLU6))
        tracker.end_stage(last_channels, f"features.{len(layers) - 1}")
        self.features = nn.Sequential(*layers)
        self.build_head(last_channels)
        self.init_weights()

    def init_weights(self) -> None:
        """He initialisation (fan-out) for convolutions, N(0, 0.01) for the classifier, as in
        the reference implementation."""
        he_init(self)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
def torchvision_keys(stages: list[tuple[int, int, int, int]]) -> list[tuple[str, str]]:
    """torchvision's ``features.i.conv.j``: each block's ConvBNReLU layers (the expansion, absent
    for expansion 1, then the depthwise) as ``j.0`` / ``j.1``, then the projection's conv and BN
    as bare indices."""
    rules = [(r"^features\.0\.0\.", "features.0.conv."), (r"^features\.0\.1\.", "features.0.norm.")]
    index = 1
    for expand_ratio, _, repeats, _ in stages:
        parts = ["depthwise"] if expand_ratio == 1 else ["expand", "depthwise"]
        for _ in range(repeats):
            for j, part in enumerate(parts):
                rules += [(rf"^features\.{index}\.conv\.{j}\.0\.",
                           f"features.{index}.{part}.conv."),
                          (rf"^features\.{index}\.conv\.{j}\.1\.",
                           f"features.{index}.{part}.norm.")]
            rules += [(rf"^features\.{index}\.conv\.{len(parts)}\.",
                       f"features.{index}.project.conv."),
                      (rf"^features\.{index}\.conv\.{len(parts) + 1}\.",
                       f"features.{index}.project.norm.")]
            index += 1
    return [*rules, (rf"^features\.{index}\.0\.", f"features.{index}.conv."),
            (rf"^features\.{index}\.1\.", f"features.{index}.norm."),
            (r"^classifier\.1\.", "classifier.")]


def timm_block_keys(stage_repeats: list[int]) -> list[tuple[str, str]]:
    """timm's EfficientNet-builder block ``blocks.{stage}.{i}`` to our ``features.{k}`` (the
    stem is ``features.0``): the blocks counted through the stages."""
    rules, index = [], 1
    for stage, repeats in enumerate(stage_repeats):
        for i in range(repeats):
            rules.append((rf"^blocks\.{stage}\.{i}\.", f"features.{index}."))
            index += 1
    return rules


# the names inside timm's blocks: a depthwise-separable first block (conv_dw / bn1, conv_pw /
# bn2), then inverted residuals (conv_pw / bn1 expand, conv_dw / bn2, conv_pwl / bn3), SE
TIMM_STEM = [(r"^conv_stem\.", "features.0.conv."), (r"^bn1\.", "features.0.norm.")]
TIMM_FIRST_BLOCK = [(r"^features\.1\.conv_dw\.", "features.1.depthwise.conv."),
                    (r"^features\.1\.bn1\.", "features.1.depthwise.norm."),
                    (r"^features\.1\.conv_pw\.", "features.1.project.conv."),
                    (r"^features\.1\.bn2\.", "features.1.project.norm.")]
TIMM_INVERTED_RESIDUAL = [(r"\.conv_pw\.", ".expand.conv."), (r"\.bn1\.", ".expand.norm."),
                          (r"\.conv_dw\.", ".depthwise.conv."), (r"\.bn2\.", ".depthwise.norm."),
                          (r"\.conv_pwl\.", ".project.conv."), (r"\.bn3\.", ".project.norm."),
                          (r"\.se\.conv_reduce\.", ".se.fc1."),
                          (r"\.se\.conv_expand\.", ".se.fc2.")]
LAST = 1 + sum(row[2] for row in STAGES)  # the 1x1 conv to 1280
TIMM_KEYS = [*TIMM_STEM, (r"^conv_head\.", f"features.{LAST}.conv."),
             (r"^bn2\.", f"features.{LAST}.norm."), *timm_block_keys([row[2] for row in STAGES]),
             *TIMM_FIRST_BLOCK, *TIMM_INVERTED_RESIDUAL]


def twins(width_mult: float, timm: str | None) -> dict[str, Peer]:
    """torchvision's ``mobilenet_v2(width_mult=...)`` and timm's ``mobilenetv2_*``."""
    peers = {"torchvision": Peer("mobilenet_v2", {"width_mult": width_mult},
                                 PeerWeights(torchvision_keys(STAGES)))}
    if timm:
        peers["timm"] = Peer(timm, weights=PeerWeights(TIMM_KEYS))
    return peers


@register_model(aliases=["mobilenet_v2"], peers=twins(1.0, "mobilenetv2_100"))
def mobilenet_v2_x1_0(width_mult: float = 1.0, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers=twins(1.4, "mobilenetv2_140"))
def mobilenet_v2_x1_4(width_mult: float = 1.4, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers=twins(0.75, "mobilenetv2_075"))
def mobilenet_v2_x0_75(width_mult: float = 0.75, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers=twins(0.5, "mobilenetv2_050"))
def mobilenet_v2_x0_5(width_mult: float = 0.5, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers=twins(0.35, "mobilenetv2_035"))
def mobilenet_v2_x0_35(width_mult: float = 0.35, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers=twins(0.25, None))
def mobilenet_v2_x0_25(width_mult: float = 0.25, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)
