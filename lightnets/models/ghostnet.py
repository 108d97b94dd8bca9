"""GhostNet (Han et al., "GhostNet: More Features from Cheap Operations", CVPR 2020).

Close to MobileNetV3-Large's layout, built of Ghost bottlenecks
(:class:`lightnets.layers.ghost.GhostBottleneck`): ReLU throughout, squeeze-excite with a
hard-sigmoid gate on the rows marked SE (bottleneck 1/4 of the expanded width, rounded to 4).
The head: 1x1 conv to 960 + BN + ReLU, global pooling, a 1280-wide layer + ReLU (with bias,
no BN; the release's 1x1 convolution on the pooled map, the same as a fully-connected layer),
dropout 0.2 and the classifier; ``forward_head(x, pre_logits=True)`` returns the
1280-d vector, ``num_features`` is 960.

At width 1.0: 5,182,508 params and 141.2M MACs at 224x224 (paper: 5.2M / 141M); at 0.5x and
1.3x, 2.59M / 42.3M and 7.36M / 227M (paper, Table 7: 2.6M / 42M, 7.3M / 226M). The layers and
their parameter shapes follow the official release (huawei-noah) one for one, including choices
the paper does not state: the kernel column (5x5 for the rows in 40- and 160-channel
stages; it sets only the stride-2 depthwise conv and the projection shortcut), the 1/4 SE
ratio, widths rounded to multiples of 4 under ``width_mult`` and the 1280-wide layer left unscaled.
Initialisation is PyTorch's default, as in the official release. ``min_input_size`` is 32x32, the
total stride (1x1 final map).

``output_stride=16`` or ``8`` dilates the last stages (:mod:`lightnets.models.stages`; timm
refuses any output stride but 32 for GhostNet): every depthwise convolution after a removed
stride is dilated, the Ghost modules' cheap ones included, and the first block of a dilated
stage keeps the previous dilation up to its strided depthwise convolution.

Pretrained weights (:mod:`lightnets.weights`): timm's ``ghostnet_100`` (the release's names:
``primary_conv``, ``cheap_operation``, ``conv_dw`` / ``bn_dw``, ``blocks.{stage}.{i}``) loads
by the rules at the bottom; its 1280-wide layer is a 1x1 convolution, reshaped into ours.
"""

from __future__ import annotations

from functools import partial

from torch import nn

from lightnets.layers import ConvNormAct, SqueezeExcite, drop_path_rates, make_divisible
from lightnets.layers.ghost import GhostBottleneck
from lightnets.models.base import Classifier
from lightnets.models.mobilenet_v2 import TIMM_STEM, timm_block_keys
from lightnets.registry import Peer, PeerWeights, register_model

# Han et al. 2020, Table 1: expansion size, out, SE, stride; kernel from the official release
STAGES = [(16, 16, False, 1, 3), (48, 24, False, 2, 3), (72, 24, False, 1, 3),
          (72, 40, True, 2, 5), (120, 40, True, 1, 5),
          (240, 80, False, 2, 3), (200, 80, False, 1, 3), (184, 80, False, 1, 3),
          (184, 80, False, 1, 3), (480, 112, True, 1, 3), (672, 112, True, 1, 3),
          (672, 160, True, 2, 5), (960, 160, False, 1, 5), (960, 160, True, 1, 5),
          (960, 160, False, 1, 5), (960, 160, True, 1, 5)]
HEAD = (960, 1280)  # Table 1: last 1x1 conv, then the 1x1 conv after pooling

Row = tuple[int, int, bool, int, int]


class GhostNet(Classifier):
    """A 16-channel stem, the Ghost bottlenecks of ``blocks``, a 1x1 conv and the paper's head.
    ``drop_path_rate``: stochastic depth rising linearly to it at the last block
    (:func:`lightnets.layers.drop_path_rates`)."""

    family = "GhostNet"
    paper = "Han et al., GhostNet: More Features from Cheap Operations, CVPR 2020"

    def __init__(self, blocks: list[Row] = STAGES, width_mult: float = 1.0,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.2,
                 output_stride: int = 32, drop_path_rate: float = 0.0) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if not width_mult > 0:
            raise ValueError(f"width_mult must be positive, got {width_mult!r}")
        self.width_mult = width_mult
        se_layer = partial(SqueezeExcite, rd_ratio=0.25, rd_divisor=4, gate_layer=nn.Hardsigmoid)
        channels = make_divisible(16 * width_mult, 4)
        tracker = self.track_stages(output_stride)
        rates = iter(drop_path_rates(drop_path_rate, len(blocks)))
        layers: list[nn.Module] = [ConvNormAct(in_chans, channels, 3,
                                               stride=tracker.layer(2).stride)]
        for expansion, out, use_se, stride, kernel in blocks:
            if stride > 1:  # the previous layer ends a stage
                tracker.end_stage(channels, f"features.{len(layers) - 1}")
            out = make_divisible(out * width_mult, 4)
            step = tracker.layer(stride)
            layers.append(GhostBottleneck(channels, make_divisible(expansion * width_mult, 4), out,
                                          kernel, step.stride,
                                          se_layer=se_layer if use_se else None,
                                          dilation=step.dilation,
                                          first_dilation=step.first_dilation,
                                          strided=step.strided,
                                          drop_path_rate=next(rates)))
            channels = out
        last_conv = make_divisible(HEAD[0] * width_mult, 4)
        layers.append(ConvNormAct(channels, last_conv, 1))
        tracker.end_stage(last_conv, f"features.{len(layers) - 1}")
        self.features = nn.Sequential(*layers)
        # pool, then the 1280-wide layer + ReLU (bias, no BN): the release's 1x1 convolution
        # on the pooled 1x1 map, i.e. a fully-connected layer
        self.build_head(last_conv, nn.Sequential(nn.Linear(last_conv, HEAD[1]), nn.ReLU()),
                        HEAD[1])


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
# the release groups the rows into stages of 1, 1, 1, 1, 1, 1, 5, 1 and 4 blocks, then the 1x1 conv
TIMM_STAGES = [1, 1, 1, 1, 1, 1, 5, 1, 4, 1]
LAST = sum(TIMM_STAGES)
TIMM_KEYS = [*TIMM_STEM, *timm_block_keys(TIMM_STAGES),
             (rf"^features\.{LAST}\.conv\.", f"features.{LAST}.conv."),
             (rf"^features\.{LAST}\.bn1\.", f"features.{LAST}.norm."),
             (r"\.primary_conv\.0\.", ".primary.conv."), (r"\.primary_conv\.1\.", ".primary.norm."),
             (r"\.cheap_operation\.0\.", ".cheap.conv."),
             (r"\.cheap_operation\.1\.", ".cheap.norm."),
             (r"\.conv_dw\.", ".depthwise.conv."), (r"\.bn_dw\.", ".depthwise.norm."),
             (r"\.se\.conv_reduce\.", ".se.fc1."), (r"\.se\.conv_expand\.", ".se.fc2."),
             # the projection shortcut: depthwise conv, BN, pointwise conv, BN
             (r"\.shortcut\.0\.", ".shortcut.0.conv."), (r"\.shortcut\.1\.", ".shortcut.0.norm."),
             (r"\.shortcut\.2\.", ".shortcut.1.conv."), (r"\.shortcut\.3\.", ".shortcut.1.norm."),
             (r"^conv_head\.", "head_hidden.0.")]


@register_model(aliases=["ghostnet"], peers={"timm": Peer("ghostnet_100", weights=PeerWeights(
    TIMM_KEYS, reshaped=("head_hidden.0.weight",)))})
def ghostnet_x1_0(width_mult: float = 1.0, **kwargs) -> GhostNet:
    return GhostNet(STAGES, width_mult=width_mult, **kwargs)
