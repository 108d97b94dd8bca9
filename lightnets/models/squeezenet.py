"""SqueezeNet (Iandola et al., "SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and
<0.5MB model size", arXiv:1602.07360, 2016).

``squeezenet1_0`` is the paper's network (Table 1): 1,248,424 params, 819M MACs at 224x224.
``squeezenet1_1`` is the official release's v1.1: a 3x3/64 first convolution and the max-pools
moved earlier, 2.4x cheaper (1,235,496 params, 349M MACs) at the same accuracy. Both have exactly
torchvision's parameter shapes; the first convolution is unpadded and the 3x3/2 max-pools round
up (Caffe's pooling), as in the release.

The classifier is a 1x1 convolution to the classes followed by ReLU and a global average pool
(no FC layer); dropout 0.5 precedes it. ``classifier`` holds dropout, convolution and ReLU, so
``reset_classifier`` swaps it whole, and ``forward_head(x, pre_logits=True)`` returns the
global average of the 512-channel feature map, i.e. what ``forward`` gives once the classifier is
removed with ``reset_classifier(0)``.

``simple_bypass=True`` adds the paper's simple bypass (Sec. 6): identity shortcuts around the
Fire modules whose input and output widths match (fire3, 5, 7, 9); it adds no parameters.
``feature_info`` lists the outputs just before each max-pool and the last Fire module.
Initialisation follows the reference: Kaiming-uniform convolutions, N(0, 0.01) for the final one,
zero biases.

The network's own total stride is 16 (three max-pools after a stride-2 convolution), so
``output_stride=32`` and ``16`` give the same network; ``8`` builds the last max-pool at stride
1 (3x3, "same" padding) and dilates the Fire modules' 3x3 filters after it
(:mod:`lightnets.models.stages`).

Pretrained weights (:mod:`lightnets.weights`): torchvision's ``features`` give the first ReLU an
index of its own, so every later index is one more than ours; the rules follow from the
configuration (:func:`features_keys`).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.fire import Fire
from lightnets.layers.pooling import max_pool
from lightnets.models.base import Classifier
from lightnets.registry import Peer, PeerWeights, register_model


class SqueezeNetConfig(NamedTuple):
    """The first convolution (stride 2, unpadded), then Fire modules given as (squeeze s1x1,
    expand e1x1, expand e3x3) and ``"M"`` for a 3x3/2 max-pool; ``min_input`` is the smallest
    input size that still leaves a 1x1 final map (found by trying every size)."""

    stem_channels: int
    stem_kernel: int
    body: list[tuple[int, int, int] | str]
    min_input: int


# Iandola et al. 2016, Table 1 (conv1, maxpool1, fire2 ... fire9)
SQUEEZENET1_0 = SqueezeNetConfig(96, 7, [
    "M", (16, 64, 64), (16, 64, 64), (32, 128, 128),
    "M", (32, 128, 128), (48, 192, 192), (48, 192, 192), (64, 256, 256),
    "M", (64, 256, 256)], min_input=21)
# the official release's SqueezeNet v1.1 (no paper table)
SQUEEZENET1_1 = SqueezeNetConfig(64, 3, [
    "M", (16, 64, 64), (16, 64, 64),
    "M", (32, 128, 128), (32, 128, 128),
    "M", (48, 192, 192), (48, 192, 192), (64, 256, 256), (64, 256, 256)], min_input=17)


class SqueezeNet(Classifier):
    """A strided convolution, Fire modules between three max-pools, and a convolutional
    classifier."""

    family = "SqueezeNet"
    paper = ("Iandola et al., SqueezeNet: AlexNet-level accuracy with 50x fewer parameters and "
             "<0.5MB model size, arXiv 2016")

    def __init__(self, config: SqueezeNetConfig = SQUEEZENET1_0, num_classes: int = 1000,
                 in_chans: int = 3, drop_rate: float = 0.5, simple_bypass: bool = False,
                 output_stride: int = 32) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        self.min_input_size = (config.min_input, config.min_input)
        tracker = self.track_stages(output_stride)
        layers: list[nn.Module] = [ConvNormAct(in_chans, config.stem_channels, config.stem_kernel,
                                               stride=tracker.layer(2).stride, padding=0,
                                               bias=True, norm_layer=None)]
        channels = config.stem_channels
        for entry in config.body:
            if entry == "M":
                tracker.end_stage(channels, f"features.{len(layers) - 1}")
                step = tracker.layer(2)
                layers.append(max_pool(3, step.stride, dilation=step.first_dilation,
                                       ceil_mode=True))
            else:
                fire = Fire(channels, *entry, residual=simple_bypass,
                            dilation=tracker.layer().dilation)
                layers.append(fire)
                channels = fire.out_channels
        tracker.end_stage(channels, f"features.{len(layers) - 1}")
        self.features = nn.Sequential(*layers)
        self.build_head(channels)
        self.init_weights()

    def build_head(self, num_features: int) -> None:
        """Global average pool after the convolutional classifier (dropout lives in it)."""
        self.num_features = self.head_features = num_features
        self.global_pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
        self.classifier = self.make_classifier(self.num_classes)

    def make_classifier(self, num_classes: int) -> nn.Module:
        """Dropout, a 1x1 convolution to ``num_classes`` (N(0, 0.01) weights) and ReLU;
        ``nn.Identity`` for 0 classes."""
        if not num_classes:
            return nn.Identity()
        final_conv = nn.Conv2d(self.head_features, num_classes, 1)
        nn.init.normal_(final_conv.weight, 0, 0.01)
        nn.init.zeros_(final_conv.bias)
        return nn.Sequential(nn.Dropout(self.drop_rate), final_conv, nn.ReLU())

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """The classifier runs on the feature map, before the global average pool."""
        return self.global_pool(x if pre_logits else self.classifier(x))

    def init_weights(self) -> None:
        """Kaiming-uniform trunk convolutions with zero biases, as the reference does (the final
        convolution is initialised by :meth:`make_classifier`)."""
        for module in self.features.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight)
                nn.init.zeros_(module.bias)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
def features_keys(config: SqueezeNetConfig) -> list[tuple[str, str]]:
    """torchvision's keys to ours: the first convolution, then each Fire module one index on
    (torchvision's first ReLU is ``features.1``); the classifier's are the same."""
    rules = [(r"^features\.0\.(\w+)$", r"features.0.conv.\1")]
    for ours, entry in enumerate(config.body, start=1):
        if entry != "M":
            rules.append((rf"^features\.{ours + 1}\.(squeeze|expand1x1|expand3x3)\.",
                          rf"features.{ours}.\1.conv."))
    return rules


def twins(name: str, config: SqueezeNetConfig) -> dict[str, Peer]:
    return {"torchvision": Peer(name, weights=PeerWeights(features_keys(config)))}


@register_model(peers=twins("squeezenet1_0", SQUEEZENET1_0))
def squeezenet1_0(**kwargs) -> SqueezeNet:
    return SqueezeNet(SQUEEZENET1_0, **kwargs)


@register_model(peers=twins("squeezenet1_1", SQUEEZENET1_1))
def squeezenet1_1(**kwargs) -> SqueezeNet:
    return SqueezeNet(SQUEEZENET1_1, **kwargs)
