"""MobileNetV2 (Sandler et al., "MobileNetV2: Inverted Residuals and Linear Bottlenecks",
CVPR 2018).

At width 1.0 the parameter shapes equal torchvision's ``mobilenet_v2`` (3,504,872 params,
300.8M MACs at 224x224). As in the official release, channels are rounded to multiples of 8 and
a width below 1 does not shrink the final 1280-channel convolution. The paper's 6.9M params at
width 1.4 are reproduced by no implementation; this one has about 6.1M, like the TF release.

``output_stride=16`` or ``8`` dilates the last stages (:mod:`lightnets.models.stages`); the
first block of a dilated stage keeps the previous dilation, as TF-slim's MobileNets do for
DeepLab.
"""

from __future__ import annotations

from torch import nn

from lightnets.layers import ConvNormAct, InvertedResidual, make_divisible
from lightnets.models.base import Classifier, he_init
from lightnets.registry import register_model

# Sandler et al. 2018, Table 2: expansion t, channels c, repeats n, stride s
STAGES = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2),
          (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


class MobileNetV2(Classifier):
    """A 32-channel stem, the inverted-residual stages of ``stages`` and a 1x1 conv to 1280."""

    family = "MobileNetV2"
    paper = ("Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, "
             "CVPR 2018")

    def __init__(self, stages: list[tuple[int, int, int, int]] = STAGES, width_mult: float = 1.0,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.2,
                 round_to: int = 8, output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if width_mult <= 0:
            raise ValueError(f"width_mult must be positive, got {width_mult}")
        self.width_mult = width_mult
        channels = make_divisible(32 * width_mult, round_to)
        last_channels = make_divisible(1280 * max(1.0, width_mult), round_to)
        tracker = self.track_stages(output_stride)
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
                                               act_layer=nn.ReLU6, strided=step.strided))
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


@register_model(aliases=["mobilenet_v2"],
                peers={"torchvision": ("mobilenet_v2", {"width_mult": 1.0}),
                       "timm": "mobilenetv2_100"})
def mobilenet_v2_x1_0(width_mult: float = 1.0, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers={"torchvision": ("mobilenet_v2", {"width_mult": 1.4}),
                       "timm": "mobilenetv2_140"})
def mobilenet_v2_x1_4(width_mult: float = 1.4, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers={"torchvision": ("mobilenet_v2", {"width_mult": 0.75}),
                       "timm": "mobilenetv2_075"})
def mobilenet_v2_x0_75(width_mult: float = 0.75, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers={"torchvision": ("mobilenet_v2", {"width_mult": 0.5}),
                       "timm": "mobilenetv2_050"})
def mobilenet_v2_x0_5(width_mult: float = 0.5, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers={"torchvision": ("mobilenet_v2", {"width_mult": 0.35}),
                       "timm": "mobilenetv2_035"})
def mobilenet_v2_x0_35(width_mult: float = 0.35, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)


@register_model(peers={"torchvision": ("mobilenet_v2", {"width_mult": 0.25})})
def mobilenet_v2_x0_25(width_mult: float = 0.25, **kwargs) -> MobileNetV2:
    return MobileNetV2(STAGES, width_mult=width_mult, **kwargs)
