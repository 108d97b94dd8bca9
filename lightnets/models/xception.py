"""Xception (Chollet, "Xception: Deep Learning with Depthwise Separable Convolutions", CVPR 2017).

Fig. 5: an entry flow (two plain 3x3 convolutions, then three residual blocks of separable
convolutions, each ending in a stride-2 max-pool), a middle flow of eight identical residual
blocks at 728 channels, and an exit flow (one more downsampling block, then two separable
convolutions to 1536 and 2048 channels with BN + ReLU), global average pooling and a logistic
regression layer. Every convolution, separable ones included, is followed by BN and has no bias.

At 299x299: 22,855,952 params, exactly the paper's count (Table 3), and 8.357G MACs (the commonly
quoted ~8.4G). Feature maps: 149 -> 147 -> 74 -> 37 -> 19 -> 10.

Choices where the paper is silent or loose:

* Padding: the two stem convolutions are unpadded ("valid", as in the Keras release by the
  paper's author); separable convolutions and max-pools keep ``ceil(n / stride)``.
* Head: the optional fully-connected layers of Fig. 5 were used for the JFT experiments only;
  there are none here. The ImageNet model has dropout 0.5 before the logistic regression
  (Sec. 4.3), hence ``drop_rate=0.5``.
* Initialisation: the paper does not say; He (Kaiming) normal initialisation (fan-out) for
  convolutions, N(0, 0.01) for the classifier, BN at identity.
* ``min_input_size`` is 23x23, the smallest size at which every stride-2 layer still halves its
  input (maps 9 -> 5 -> 3 -> 2 -> 1 after the stem); the network runs from 7x7, but below 23
  the last downsampling acts on a 1x1 map.

``output_stride=16`` or ``8`` builds the last downsampling blocks at stride 1 (their max-pools
keep the size) and dilates every separable convolution after them, as DeepLabV3+ does with its
Xception (:mod:`lightnets.models.stages`; timm refuses any output stride but 32 here); the
first block of a dilated stage keeps the previous dilation.

Pretrained weights (:mod:`lightnets.weights`): timm's ``legacy_xception`` (Cadene's port of the
Keras release) names each block's layers by their place in one sequence (``rep.K``: ReLU,
separable conv, BN, ...) and lists the shortcut (``skip``, ``skipbn``) first; the rules at the
bottom follow from the block table. Padding and pooling are the same as ours (symmetric, one
pixel, for the 3x3/2 max-pools; the stem unpadded).
"""

from __future__ import annotations

from torch import nn

from lightnets.layers import ConvNormAct, DepthwiseSeparableConv, drop_path_rates
from lightnets.layers.xception_block import XceptionBlock
from lightnets.models.base import Classifier, he_init
from lightnets.registry import Peer, PeerWeights, register_model

# Chollet 2017, Fig. 5: separable-convolution widths of a block, stride (max-pool and strided
# 1x1 shortcut), repeats, and whether the block starts with a ReLU
BLOCKS = [((128, 128), 2, 1, False),         # entry flow
          ((256, 256), 2, 1, True),
          ((728, 728), 2, 1, True),
          ((728, 728, 728), 1, 8, True),     # middle flow
          ((728, 1024), 2, 1, True)]         # exit flow
STEM_CHANNELS = (32, 64)      # 3x3 stride 2, then 3x3, both unpadded
EXIT_CHANNELS = (1536, 2048)  # separable convolutions + BN + ReLU after the last block


class Xception(Classifier):
    """Stem convolutions, the residual separable-convolution blocks of ``blocks``, and the
    exit flow's separable convolutions. ``drop_path_rate``: stochastic depth rising linearly
    to it at the last block (:func:`lightnets.layers.drop_path_rates`)."""

    family = "Xception"
    paper = ("Chollet, Xception: Deep Learning with Depthwise Separable Convolutions, "
             "CVPR 2017")
    default_input_size = (3, 299, 299)
    min_input_size = (23, 23)

    def __init__(self, blocks: list[tuple[tuple[int, ...], int, int, bool]] = BLOCKS,
                 num_classes: int = 1000, in_chans: int = 3, drop_rate: float = 0.5,
                 output_stride: int = 32, drop_path_rate: float = 0.0) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        tracker = self.track_stages(output_stride)
        rates = iter(drop_path_rates(drop_path_rate, sum(row[2] for row in blocks)))
        stem_1, stem_2 = STEM_CHANNELS
        layers: list[nn.Module] = [ConvNormAct(in_chans, stem_1, 3,
                                               stride=tracker.layer(2).stride, padding=0),
                                   ConvNormAct(stem_1, stem_2, 3, padding=0)]
        channels = stem_2
        for widths, stride, repeats, leading_act in blocks:
            if stride > 1:  # the previous layer ends a stage
                tracker.end_stage(channels, f"features.{len(layers) - 1}")
            for i in range(repeats):
                step = tracker.layer(stride if i == 0 else 1)
                layers.append(XceptionBlock(channels, widths, step.stride,
                                            leading_act=leading_act,
                                            dilation=step.first_dilation, strided=step.strided,
                                            drop_path_rate=next(rates)))
                channels = widths[-1]
        for out in EXIT_CHANNELS:
            layers.append(DepthwiseSeparableConv(channels, out, 3,
                                                 dilation=tracker.layer().dilation,
                                                 dw_norm=False, dw_act=False))
            channels = out
        tracker.end_stage(channels, f"features.{len(layers) - 1}")
        self.features = nn.Sequential(*layers)
        self.build_head(channels)
        self.init_weights()

    def init_weights(self) -> None:
        """He normal (fan-out) for convolutions, N(0, 0.01) for the classifier; the paper does
        not state its initialisation."""
        he_init(self)


# -- pretrained weights (lightnets.weights) -------------------------------------------------------
def timm_keys(blocks: list[tuple[tuple[int, ...], int, int, bool]]) -> list[tuple[str, str]]:
    """timm's ``legacy_xception``: conv1/bn1, conv2/bn2, ``block1..12`` (``rep.K``, every
    separable convolution ``conv1`` + ``pointwise`` followed by its BN, after a ReLU except in
    the first block; ``skip`` / ``skipbn``), conv3/bn3, conv4/bn4 (separable), fc."""
    rules = [(r"^conv1\.", "features.0.conv."), (r"^bn1\.", "features.0.norm."),
             (r"^conv2\.", "features.1.conv."), (r"^bn2\.", "features.1.norm.")]
    index = 2
    for widths, _, repeats, leading_act in blocks:
        for _ in range(repeats):
            block = f"block{index - 1}"
            rules += [(rf"^{block}\.skip\.", f"features.{index}.shortcut.conv."),
                      (rf"^{block}\.skipbn\.", f"features.{index}.shortcut.norm.")]
            for unit in range(len(widths)):
                k = 3 * unit + leading_act  # ReLU, SeparableConv2d, BatchNorm2d per unit
                ours = f"features.{index}.units.{unit}.conv"
                rules += [(rf"^{block}\.rep\.{k}\.conv1\.", f"{ours}.depthwise.conv."),
                          (rf"^{block}\.rep\.{k}\.pointwise\.", f"{ours}.pointwise.conv."),
                          (rf"^{block}\.rep\.{k + 1}\.", f"{ours}.pointwise.norm.")]
            index += 1
    for number in (3, 4):  # the exit flow's separable convolutions
        rules += [(rf"^conv{number}\.conv1\.", f"features.{index}.depthwise.conv."),
                  (rf"^conv{number}\.pointwise\.", f"features.{index}.pointwise.conv."),
                  (rf"^bn{number}\.", f"features.{index}.pointwise.norm.")]
        index += 1
    return [*rules, (r"^fc\.", "classifier.")]


@register_model(peers={"timm": Peer("legacy_xception", weights=PeerWeights(
    timm_keys(BLOCKS),  # tag tf_in1k: the Keras release's preprocessing
    preprocess={"input_size": (3, 299, 299), "crop_pct": 0.8975, "mean": (0.5,) * 3,
                "std": (0.5,) * 3}))})
def xception(**kwargs) -> Xception:
    return Xception(BLOCKS, **kwargs)
