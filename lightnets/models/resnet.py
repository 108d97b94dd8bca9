"""ResNet (He et al., "Deep Residual Learning for Image Recognition", CVPR 2016), ResNeXt
(Xie et al., "Aggregated Residual Transformations for Deep Neural Networks", CVPR 2017) and
SE-ResNet (Hu et al., "Squeeze-and-Excitation Networks", CVPR 2018).

The default variants have exactly torchvision's parameter shapes, in torchvision's order (so a
torchvision checkpoint loads by position): resnet18/34/50/101/152 (11,689,512 / 21,797,672 /
25,557,032 / 44,549,160 / 60,192,808 params), resnext50_32x4d and resnext101_32x8d.

Deviations from the papers, and why:

* ResNet-50/101/152 stride each downsampling bottleneck in its 3x3 convolution, as torchvision's
  "ResNet v1.5" does (4.089G / 7.801G / 11.514G MACs). ``stride_in_1x1=True`` gives the paper's
  form, strided in the first 1x1 (3.858G / 7.570G / 11.282G MACs); the params are the same.
* ResNeXt keeps the stride in the 3x3 convolution, as the paper's own release does (4.230G MACs
  for 50_32x4d, the paper's "4.2G").
* SE-ResNet-50 defaults to the paper's form (its Caffe release): stride in the first 1x1 and a
  reduction of 16 (28,088,024 params, 3.860G MACs vs the paper's "3.87G";
  the paper's "~27.5M" is not what its own architecture counts).
  The squeeze-excite gate rescales the residual branch before the addition (Fig. 3).
* The classifier keeps PyTorch's default ``nn.Linear`` initialisation, like torchvision;
  convolutions get He (fan-out) initialisation and norms start at ``(1, 0)``.
* ``stem_pool="ceil"``: the stem's 3x3/2 max-pool unpadded and rounding up, as in the Caffe
  release of SENet (timm's ``legacy_seresnet50``), instead of padded by one (torchvision). The
  map sizes are the same at 224x224, not the values at its borders.

Pretrained weights (:mod:`lightnets.weights`): torchvision's and timm's ResNets and ResNeXts
share their key names (``conv1``, ``bn1``, ``layerN.i.convJ`` / ``bnJ``, ``downsample.0/1``,
``fc``) and load as they are; timm's ``legacy_seresnet50`` (``layer0``, ``se_module``,
``last_linear``) loads into ``se_resnet50(stem_pool="ceil")``. The rules are at the bottom.

``output_stride=16`` or ``8`` dilates the last stages (:mod:`lightnets.models.stages`) exactly
as torchvision's ``replace_stride_with_dilation`` does: the first block of a dilated stage
keeps the previous dilation in its 3x3 convolution, the others take the new one.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
from torch import nn

from lightnets.layers.conv_norm_act import ConvNormAct
from lightnets.layers.drop_path import drop_path_rates
from lightnets.layers.helpers import LayerFactory
from lightnets.layers.pooling import max_pool
from lightnets.layers.resnet_blocks import BasicBlock, Bottleneck
from lightnets.layers.squeeze_excite import SqueezeExcite
from lightnets.models.base import Classifier, he_init
from lightnets.registry import Peer, PeerWeights, register_model

# He et al. 2016, Table 1: block type and blocks per stage (conv2_x .. conv5_x)
DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}
# He et al. 2016, Table 1: stage widths ("planes"; a block outputs planes * expansion) and strides
STAGE_PLANES = (64, 128, 256, 512)
STAGE_STRIDES = (1, 2, 2, 2)

RESNEXT_PAPER = ("Xie et al., Aggregated Residual Transformations for Deep Neural Networks, "
                 "CVPR 2017")
SE_PAPER = "Hu et al., Squeeze-and-Excitation Networks, CVPR 2018"


class ResNet(Classifier):
    """A 7x7/2 conv + 3x3/2 max-pool stem, four stages of residual blocks and a pooled linear head.

    ``groups``/``base_width`` make ResNeXt, ``se_layer`` SE-ResNet, ``stride_in_1x1`` the papers'
    bottleneck, ``zero_init_residual`` starts every block as its shortcut, and ``output_stride``
    (8 or 16) swaps the last strides for dilation to keep a denser map (Chen et al., DeepLab).
    ``drop_path_rate``: stochastic depth rising linearly to it at the last block
    (:func:`lightnets.layers.drop_path_rates`).
    """

    family = "ResNet"
    paper = "He et al., Deep Residual Learning for Image Recognition, CVPR 2016"

    def __init__(self, block: type[nn.Module] = Bottleneck,
                 layers: Sequence[int] = (3, 4, 6, 3), num_classes: int = 1000,
                 in_chans: int = 3, drop_rate: float = 0.0, groups: int = 1,
                 base_width: int = 64, stride_in_1x1: bool = False,
                 se_layer: LayerFactory | None = None, zero_init_residual: bool = False,
                 output_stride: int = 32, stem_pool: str = "padded",
                 norm_layer: LayerFactory = nn.BatchNorm2d,
                 act_layer: LayerFactory = nn.ReLU, drop_path_rate: float = 0.0) -> None:
        super().__init__(num_classes, in_chans, drop_rate)
        if se_layer is not None:
            self.family, self.paper = "SE-ResNet", SE_PAPER
        elif groups > 1:
            self.family, self.paper = "ResNeXt", RESNEXT_PAPER
        if len(layers) != 4 or any(not isinstance(n, int) or n < 1 for n in layers):
            raise ValueError(f"layers must be 4 positive block counts, got {tuple(layers)}")
        tracker = self.track_stages(output_stride)
        block_args = dict(groups=groups, base_width=base_width, se_layer=se_layer,
                          norm_layer=norm_layer, act_layer=act_layer)
        if stride_in_1x1:
            if not issubclass(block, Bottleneck):
                raise ValueError(f"stride_in_1x1 needs Bottleneck blocks, got {block.__name__}")
            block_args["stride_in_1x1"] = True

        self.stem = ConvNormAct(in_chans, 64, 7, stride=tracker.layer(2).stride,
                                norm_layer=norm_layer, act_layer=act_layer)
        tracker.end_stage(64, "stem")
        if stem_pool not in STEM_POOLS:
            raise ValueError(f"stem_pool must be one of {', '.join(STEM_POOLS)}, got {stem_pool!r}")
        self.maxpool = max_pool(3, tracker.layer(2).stride, **STEM_POOLS[stem_pool])
        rates = iter(drop_path_rates(drop_path_rate, sum(layers)))
        channels = 64
        for index, (planes, repeats, stride) in enumerate(zip(STAGE_PLANES, layers,
                                                              STAGE_STRIDES), start=1):
            step = tracker.layer(stride)
            out_channels = planes * block.expansion
            blocks = [block(channels, out_channels, step.stride, dilation=step.dilation,
                            first_dilation=step.first_dilation, drop_path_rate=next(rates),
                            **block_args)]
            blocks += [block(out_channels, out_channels, dilation=step.dilation,
                             drop_path_rate=next(rates), **block_args)
                       for _ in range(repeats - 1)]
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
            channels = out_channels
            tracker.end_stage(channels, f"layer{index}")
        self.build_head(channels)
        self.init_weights(zero_init_residual)

    def init_weights(self, zero_init_residual: bool = False) -> None:
        """He initialisation (fan-out) for convolutions, norms at ``(1, 0)``; optionally zero the
        last norm of every block (Goyal et al. 2017), as torchvision's ``zero_init_residual``."""
        he_init(self, linear_std=None)
        if zero_init_residual:
            for module in self.modules():
                if hasattr(module, "zero_init_last"):
                    module.zero_init_last()

    def trunk(self) -> list[tuple[str, nn.Module]]:
        names = ["stem", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        return [(name, getattr(self, name)) for name in names]

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.stem(x))
        return self.layer4(self.layer3(self.layer2(self.layer1(x))))


# -- stem pools and pretrained weights (lightnets.weights) ----------------------------------------
# the stem's 3x3/2 max-pool: padded by one (torchvision, timm) or unpadded and rounding up (Caffe)
STEM_POOLS = {"padded": {"padding": 1}, "ceil": {"ceil_mode": True}}  # max_pool(3, 2, **options)
# torchvision's and timm's key names (the same): stem conv1/bn1, blocks convJ/bnJ, downsample.0/1
RESNET_KEYS = [(r"^conv1\.", "stem.conv."), (r"^bn1\.", "stem.norm."),
               (r"^(layer\d\.\d+)\.conv(\d)\.", r"\1.conv\2.conv."),
               (r"^(layer\d\.\d+)\.bn(\d)\.", r"\1.conv\2.norm."),
               (r"^(layer\d\.\d+)\.downsample\.0\.", r"\1.downsample.conv."),
               (r"^(layer\d\.\d+)\.downsample\.1\.", r"\1.downsample.norm."),
               (r"^fc\.", "classifier.")]
TIMM_RESNET = PeerWeights(RESNET_KEYS, preprocess={"crop_pct": 0.95})  # tags a1_in1k, a1h_in1k
# timm's legacy SENet (Cadene's port of the Caffe release): layer0, se_module, last_linear
LEGACY_SENET_KEYS = [(r"^layer0\.conv1\.", "stem.conv."), (r"^layer0\.bn1\.", "stem.norm."),
                     (r"\.se_module\.", ".se."), (r"^last_linear\.", "classifier."),
                     *RESNET_KEYS[2:6]]


def twins(torchvision: str, timm: str, timm_weights: PeerWeights = TIMM_RESNET) -> dict:
    """The ``peers`` of a ResNet whose torchvision and timm names are given."""
    return {"torchvision": Peer(torchvision, weights=PeerWeights(RESNET_KEYS)),
            "timm": Peer(timm, weights=timm_weights)}


def _resnet(depth: int, **kwargs) -> ResNet:
    block, layers = DEPTHS[depth]
    return ResNet(block, layers, **kwargs)


@register_model(peers=twins("resnet18", "resnet18"))
def resnet18(**kwargs) -> ResNet:
    return _resnet(18, **kwargs)


@register_model(peers=twins("resnet34", "resnet34"))
def resnet34(**kwargs) -> ResNet:
    return _resnet(34, **kwargs)


@register_model(peers=twins("resnet50", "resnet50"))
def resnet50(**kwargs) -> ResNet:
    return _resnet(50, **kwargs)


@register_model(peers=twins("resnet101", "resnet101"))
def resnet101(**kwargs) -> ResNet:
    return _resnet(101, **kwargs)


@register_model(peers=twins("resnet152", "resnet152"))
def resnet152(**kwargs) -> ResNet:
    return _resnet(152, **kwargs)


# Xie et al. 2017, Table 1: cardinality 32, bottleneck width 4d (50 layers) / 8d (torchvision's 101)
@register_model(peers=twins("resnext50_32x4d", "resnext50_32x4d"))
def resnext50_32x4d(groups: int = 32, base_width: int = 4, **kwargs) -> ResNet:
    return _resnet(50, groups=groups, base_width=base_width, **kwargs)


# timm's default tag for it is torchvision's weights (tv_in1k): torchvision's preprocessing
@register_model(peers=twins("resnext101_32x8d", "resnext101_32x8d", PeerWeights(
    RESNET_KEYS, preprocess={"interpolation": "bilinear"})))
def resnext101_32x8d(groups: int = 32, base_width: int = 8, **kwargs) -> ResNet:
    return _resnet(101, groups=groups, base_width=base_width, **kwargs)


# Hu et al. 2018, Table 1: SE-ResNet-50 with reduction ratio r = 16, the paper's strided 1x1
@register_model(peers={"timm": Peer("legacy_seresnet50", weights=PeerWeights(
    LEGACY_SENET_KEYS, options={"stem_pool": "ceil"}, preprocess={"interpolation": "bilinear"}))})
def se_resnet50(se_reduction: int = 16, stride_in_1x1: bool = True, **kwargs) -> ResNet:
    if not isinstance(se_reduction, int) or se_reduction < 1:
        raise ValueError(f"se_reduction must be a positive integer, got {se_reduction!r}")
    se_layer = partial(SqueezeExcite, rd_ratio=1 / se_reduction)
    return _resnet(50, se_layer=se_layer, stride_in_1x1=stride_in_1x1, **kwargs)
