"""Any classifier of the zoo as the backbone of a torchvision detector: a module whose forward
returns an ``OrderedDict`` of feature maps and whose ``out_channels`` says their widths, what
``torchvision.models.detection`` expects.

Two adapters, both reading the classifier's ``feature_info`` (channels and strides of its
stages), so the channel counts, strides and taps never have to be found by hand:

* :class:`FPNBackbone` (Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017):
  torchvision's ``FeaturePyramidNetwork`` on the last stage at stride 8, 16 and 32 (C3-C5; the
  trunks of AlexNet, VGG and SqueezeNet end at stride 16 and give C3-C4), plus extra levels:
  ``LastLevelP6P7`` for FCOS and RetinaNet (P6 and P7 by stride-2 3x3 convolutions on P5, Lin
  et al., "Focal Loss for Dense Object Detection", ICCV 2017), ``LastLevelMaxPool`` for Faster
  R-CNN. ``taps`` chooses other stages (``feature_info`` indices or trunk module names).
* :class:`SSDLiteBackbone` (Sandler et al., "MobileNetV2", CVPR 2018, Sec. 6.2; Howard et al.,
  "Searching for MobileNetV3", ICCV 2019, Sec. 6.3): two maps of the trunk, then extra blocks
  (1x1 conv, 3x3 depthwise at stride 2, 1x1 conv; BatchNorm and ReLU6) each halving the map.
  The first map is the expansion layer of the first stride-32 block where that block is an
  inverted residual (both papers' choice: the wide map at stride 16), else the end of the stage
  before the last; the second is the end of the trunk.

Fine-tuning a pretrained backbone: ``trainable_layers=k`` leaves only the last ``k`` stages of
``feature_info`` learning (the earlier ones frozen, as torchvision's
``trainable_backbone_layers``), and ``frozen_bn=True`` replaces every BatchNorm of the trunk by
torchvision's ``FrozenBatchNorm2d`` with the same statistics and affine (batch statistics of a
few detection images per step are too noisy to learn from; their parameters become buffers).
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from functools import partial
from typing import Any

import torch
from torch import nn
from torchvision.ops import FeaturePyramidNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool, LastLevelP6P7
from torchvision.ops.misc import FrozenBatchNorm2d

from lightnets.layers import ConvNormAct, InvertedResidual
from lightnets.models.base import Classifier, FeatureNet
from lightnets.registry import CLASSIFICATION, create_model, resolve_name, task_of

FPN_STRIDES = (8, 16, 32)  # C3, C4, C5
EXTRA_LEVELS = {"p6p7": 2, "pool": 1, None: 0}  # the levels each FPN extra block adds
SSDLITE_EXTRA_CHANNELS = (512, 256, 256, 128)  # torchvision's SSDLite320 extra blocks
# SSDLite's BatchNorm (torchvision's ssdlite320: eps 0.001, momentum 0.03)
SSDLITE_NORM = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)


def build_trunk(backbone: str | Classifier, in_chans: int = 3,
                backbone_args: Mapping[str, Any] | None = None) -> Classifier:
    """The classifier a detector stands on, without its classifier layer: a registered name
    (built with ``backbone_args``, e.g. ``width_mult`` or ``checkpoint_path``) or an instance."""
    if isinstance(backbone, Classifier):
        if backbone_args:
            raise ValueError("backbone_args apply to a backbone given by name, not to an instance")
        return backbone
    if not isinstance(backbone, str):
        raise ValueError(f"backbone must be a registered classifier's name or a lightnets "
                         f"Classifier, got {type(backbone).__name__}")
    name = resolve_name(backbone)
    if task_of(name) != CLASSIFICATION:
        raise ValueError(f"backbone {name!r} is a {task_of(name)} model; expected a classifier "
                         "of the zoo (see `lightnets list --task classification`)")
    return create_model(name, num_classes=0, in_chans=in_chans, **dict(backbone_args or {}))


def fpn_taps(feature_info: list[dict[str, Any]], name: str) -> list[int]:
    """The indices of the last stage at each of strides 8, 16 and 32 (C3-C5) that the trunk
    has; at least C3 and C4."""
    last = {entry["reduction"]: index for index, entry in enumerate(feature_info)}
    taps = [last[stride] for stride in FPN_STRIDES if stride in last]
    if len(taps) < 2:
        raise ValueError(f"{name} has no stages at stride 8 and 16 (its strides: "
                         f"{[entry['reduction'] for entry in feature_info]}); pass taps=")
    return taps


def fine_tap(feature_info: list[dict[str, Any]], taps: Sequence[int | str], name: str
             ) -> list[int | str]:
    """``taps`` with the trunk's last stage at stride 4 (C2) put first: a finer level for small
    objects, which at stride 8 span under one cell."""
    fine = [index for index, entry in enumerate(feature_info) if entry["reduction"] == 4]
    if not fine:
        raise ValueError(f"{name} has no stage at stride 4 (its strides: "
                         f"{[entry['reduction'] for entry in feature_info]})")
    if fine[-1] in taps or feature_info[fine[-1]]["module"] in taps:
        raise ValueError(f"the taps already hold {name}'s stride-4 stage: fine_level adds it")
    return [fine[-1], *taps]


def freeze_stages(trunk: Classifier, trainable_layers: int) -> None:
    """Stop gradients to every trunk module before the last ``trainable_layers`` stages of
    ``feature_info`` (0: the whole trunk is frozen)."""
    stages = len(trunk.feature_info)
    if not isinstance(trainable_layers, int) or not 0 <= trainable_layers <= stages:
        raise ValueError(f"trainable_layers must be an integer from 0 to {stages} (the stages of "
                         f"{type(trunk).__name__}), got {trainable_layers!r}")
    modules, frozen = trunk.trunk(), stages - trainable_layers
    if not frozen:
        return
    if trainable_layers:  # up to the end of the last frozen stage
        names = [name for name, _ in modules]
        modules = modules[:names.index(trunk.feature_info[frozen - 1]["module"]) + 1]
    for _, module in modules:
        module.requires_grad_(False)


def freeze_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm2d`` inside ``module`` by a ``FrozenBatchNorm2d`` holding the
    same statistics and affine (in place; also returned)."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps).to(child.weight.device)
            with torch.no_grad():
                for key in ("weight", "bias", "running_mean", "running_var"):
                    getattr(frozen, key).copy_(getattr(child, key))
            setattr(module, name, frozen)
        else:
            freeze_batchnorm(child)
    return module


def prepare_trunk(trunk: Classifier, trainable_layers: int | None, frozen_bn: bool) -> None:
    """The fine-tuning options, applied to the trunk before an adapter takes it over."""
    if frozen_bn:
        freeze_batchnorm(trunk)
    if trainable_layers is not None:
        freeze_stages(trunk, trainable_layers)


def as_ordered_dict(maps: Sequence[torch.Tensor]) -> OrderedDict[str, torch.Tensor]:
    """Maps named ``"0"``, ``"1"``, ... (torchvision's names, which its RoI pooling reads)."""
    return OrderedDict((str(index), value) for index, value in enumerate(maps))


class FPNBackbone(nn.Module):
    """``body`` (the trunk's maps) and ``fpn`` (torchvision's FeaturePyramidNetwork with
    ``extra`` levels: ``"p6p7"``, ``"pool"`` or ``None``), torchvision's ``BackboneWithFPN``
    layout. ``strides`` are the strides of the output levels, ``out_channels`` their width."""

    def __init__(self, body: FeatureNet, out_channels: int = 256, extra: str | None = "p6p7",
                 norm_layer: Callable[..., nn.Module] | None = None) -> None:
        super().__init__()
        if extra not in EXTRA_LEVELS:
            raise ValueError(f"extra must be 'p6p7', 'pool' or None, got {extra!r}")
        blocks = {"p6p7": lambda: LastLevelP6P7(out_channels, out_channels),
                  "pool": LastLevelMaxPool, None: lambda: None}
        self.body = body
        self.fpn = FeaturePyramidNetwork(body.channels, out_channels, blocks[extra](),
                                         norm_layer=norm_layer)
        self.out_channels = out_channels
        last = body.reductions[-1]
        self.strides = [*body.reductions,
                        *(last * 2 ** (i + 1) for i in range(EXTRA_LEVELS[extra]))]

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        return self.fpn(as_ordered_dict(self.body(x)))


def fpn_backbone(backbone: str | Classifier, extra: str | None = "p6p7", out_channels: int = 256,
                 taps: Sequence[int | str] | None = None, in_chans: int = 3,
                 trainable_layers: int | None = None, frozen_bn: bool = False,
                 backbone_args: Mapping[str, Any] | None = None) -> FPNBackbone:
    """An FPN on any classifier of the zoo (see the module docstring); ``taps`` default C3-C5."""
    trunk = build_trunk(backbone, in_chans, backbone_args)
    prepare_trunk(trunk, trainable_layers, frozen_bn)
    taps = fpn_taps(trunk.feature_info, type(trunk).__name__) if taps is None else list(taps)
    return FPNBackbone(FeatureNet(trunk, taps), out_channels, extra)


def ssdlite_extra_block(in_channels: int, out_channels: int,
                        norm_layer: Callable[..., nn.Module] = SSDLITE_NORM) -> nn.Sequential:
    """1x1 to half the output width, 3x3 depthwise at stride 2, 1x1 to the output width."""
    mid = out_channels // 2
    return nn.Sequential(
        ConvNormAct(in_channels, mid, 1, norm_layer=norm_layer, act_layer=nn.ReLU6),
        ConvNormAct(mid, mid, 3, stride=2, groups=mid, norm_layer=norm_layer, act_layer=nn.ReLU6),
        ConvNormAct(mid, out_channels, 1, norm_layer=norm_layer, act_layer=nn.ReLU6))


def normal_init(module: nn.Module, std: float = 0.03) -> None:
    """N(0, ``std``) convolution kernels, zero biases: torchvision's SSDLite initialisation of
    layers trained from scratch."""
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d):
            nn.init.normal_(layer.weight, 0.0, std)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)


def expansion_tap(trunk: Classifier) -> str | None:
    """The name of the expansion layer of the first block of the last stage, where that block
    is an inverted residual with an expansion (the map SSDLite reads at stride 16)."""
    names = [name for name, _ in trunk.trunk()]
    first = names.index(trunk.feature_info[-2]["module"]) + 1
    block = trunk.trunk()[first][1]
    if isinstance(block, InvertedResidual) and not isinstance(block.expand, nn.Identity):
        return f"{names[first]}.expand"
    return None


class SSDLiteBackbone(nn.Module):
    """``body`` (the trunk: its last map, and the stage before the last unless ``expansion``
    names the layer whose output is the first map) and ``extra`` blocks of
    ``extra_channels``. ``out_channels`` lists the widths of the maps."""

    def __init__(self, body: FeatureNet, expansion: str | None,
                 extra_channels: Sequence[int] = SSDLITE_EXTRA_CHANNELS,
                 norm_layer: Callable[..., nn.Module] = SSDLITE_NORM) -> None:
        super().__init__()
        self.body, self.expansion = body, expansion
        widths = [body.channels[-1], *extra_channels]
        self.extra = nn.ModuleList(ssdlite_extra_block(c_in, c_out, norm_layer)
                                   for c_in, c_out in itertools.pairwise(widths))
        normal_init(self.extra)
        self._expanded: torch.Tensor | None = None
        first = body.channels[0]
        if expansion is not None:
            # a hook keeps the expansion's output without splitting the block, so the trunk
            # keeps the classifier's modules and key names
            layer = body.get_submodule(expansion)
            layer.register_forward_hook(self._keep_expansion)
            first = layer.out_channels
        self.out_channels = [first, *widths]

    def _keep_expansion(self, module: nn.Module, args: Any, output: torch.Tensor) -> None:
        self._expanded = output

    def forward(self, x: torch.Tensor) -> OrderedDict[str, torch.Tensor]:
        maps = self.body(x)
        if self.expansion is not None:
            maps, self._expanded = [self._expanded, *maps], None
        for block in self.extra:
            maps.append(block(maps[-1]))
        return as_ordered_dict(maps)


def ssdlite_backbone(backbone: str | Classifier,
                     extra_channels: Sequence[int] = SSDLITE_EXTRA_CHANNELS, in_chans: int = 3,
                     trainable_layers: int | None = None, frozen_bn: bool = False,
                     backbone_args: Mapping[str, Any] | None = None,
                     norm_layer: Callable[..., nn.Module] = SSDLITE_NORM) -> SSDLiteBackbone:
    """SSDLite's feature maps on any classifier of the zoo (see the module docstring)."""
    trunk = build_trunk(backbone, in_chans, backbone_args)
    if len(trunk.feature_info) < 2:
        raise ValueError(f"{type(trunk).__name__} has fewer than two stages; SSDLite reads two")
    prepare_trunk(trunk, trainable_layers, frozen_bn)
    expansion = expansion_tap(trunk)
    body = FeatureNet(trunk, [-1] if expansion else [-2, -1])
    return SSDLiteBackbone(body, expansion, extra_channels, norm_layer)
