"""Any segmentation head on any backbone of the zoo.

A :class:`Segmenter` is a classifier's trunk built at an output stride (a
:class:`lightnets.models.base.FeatureNet` reading the stages the head needs), a head from
``lightnets.layers`` and, with ``aux_loss=True``, an FCN head on an earlier stage whose loss
helps training (as torchvision's segmentation models have). ``forward(x)`` returns
``(N, num_classes, H, W)`` logits, bilinearly upsampled to the input's size;
``forward(x, return_aux=True)`` returns ``(logits, [aux logits])`` in training mode (an empty
list otherwise), the mechanism the classifiers use.

Which stages a head reads, by default: the last stage of the trunk, and for DeepLabV3+ and
LR-ASPP also the first stage at stride 4 (DeepLabV3+: Chen et al. 2018, Sec. 3.1) or stride 8
(LR-ASPP: Howard et al. 2019, Sec. 6.4); the auxiliary head reads the stage before the last
(torchvision's ``layer3`` for ResNets). ``low_level`` / ``aux_level`` choose others (an index
into the backbone's ``feature_info``, or a trunk module's name). The ASPP rates follow the
last map's true stride (6/12/18 at 16, 12/24/36 at 8) unless given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.aspp import DeepLabV3Head, aspp_rates
from lightnets.layers.deeplabv3plus import DeepLabV3PlusHead
from lightnets.layers.fcn_head import FCNHead
from lightnets.layers.fpn import FPN_LEVELS, FPNHead
from lightnets.layers.lraspp import LRASPPHead
from lightnets.layers.pspnet import PSPHead
from lightnets.layers.unet import UNetHead
from lightnets.models.base import FeatureNet, check_images
from lightnets.registry import CLASSIFICATION, SEGMENTATION, create_model, resolve_name, task_of

DEFAULT_INPUT_SIZE = (3, 520, 520)  # torchvision's evaluation size for its segmentation models
AUX_LOSS_WEIGHT = 0.5  # torchvision's reference recipe: loss = out + 0.5 * aux


@dataclass(frozen=True)
class HeadSpec:
    """A head kind: how to build it from the channels of the maps it reads (low-level first,
    the last map last), which stride its low-level map has (``None``: the last map only), its
    default output stride and the options it takes."""

    family: str
    paper: str
    output_stride: int
    low_reduction: int | None
    build: Callable[..., nn.Module]
    options: tuple[str, ...] = ()
    # the stages read when the head chooses them itself (feature_info, trunk module names,
    # backbone name -> taps), and whether it upsamples to the input's size itself (``size=``)
    taps: Callable[[list[dict[str, Any]], list[str], str], list[int | str]] | None = None
    sized: bool = False


def pyramid(feature_info: list[dict[str, Any]], names: list[str], backbone: str
            ) -> list[int | str]:
    """Every stage of the trunk below stride 1, shallowest first, and its last module when
    ``feature_info`` ends before it (VGG's and AlexNet's last max-pool: the stride-32 map an
    encoder ends with in segmentation_models_pytorch)."""
    taps: list[int | str] = [index for index, entry in enumerate(feature_info)
                             if entry["reduction"] > 1]
    if names[-1] != feature_info[-1]["module"]:
        taps.append(names[-1])
    return taps


def fpn_taps(feature_info: list[dict[str, Any]], names: list[str], backbone: str
             ) -> list[int | str]:
    """The last four maps of :func:`pyramid` (strides 4 to 32 on the usual trunk)."""
    taps = pyramid(feature_info, names, backbone)
    if len(taps) < FPN_LEVELS:
        raise ValueError(f"the fpn head reads {FPN_LEVELS} stages; {backbone} has {len(taps)}")
    return taps[-FPN_LEVELS:]


def psp_taps(feature_info: list[dict[str, Any]], names: list[str], backbone: str
             ) -> list[int | str]:
    """The first stage at stride 8 (segmentation_models_pytorch's PSPNet: encoder depth 3)."""
    return [low_stage(feature_info, 8, backbone)]


def fpn_head(channels: list[int], classes: int, decoder_channels: int = 256,
             separable: bool = False) -> FPNHead:
    """The FPN head; its semantic branch half as wide as the pyramid (256 / 128 by default)."""
    return FPNHead(channels, classes, decoder_channels, decoder_channels // 2,
                   separable=separable)


HEADS: dict[str, HeadSpec] = {
    "fcn": HeadSpec(
        "FCN", "Long et al., Fully Convolutional Networks for Semantic Segmentation, CVPR 2015",
        8, None, lambda channels, classes: FCNHead(channels[-1], classes)),
    "deeplabv3": HeadSpec(
        "DeepLabV3", "Chen et al., Rethinking Atrous Convolution for Semantic Image "
        "Segmentation, arXiv:1706.05587, 2017", 8, None,
        lambda channels, classes, rates, separable=False: DeepLabV3Head(
            channels[-1], classes, rates, separable=separable), ("rates", "separable")),
    "deeplabv3plus": HeadSpec(
        "DeepLabV3+", "Chen et al., Encoder-Decoder with Atrous Separable Convolution for "
        "Semantic Image Segmentation, ECCV 2018", 16, 4,
        lambda channels, classes, rates, separable=True: DeepLabV3PlusHead(
            channels[0], channels[-1], classes, rates, separable=separable),
        ("rates", "separable")),
    "lraspp": HeadSpec(
        "LR-ASPP", "Howard et al., Searching for MobileNetV3, ICCV 2019", 16, 8,
        lambda channels, classes: LRASPPHead(channels[0], channels[-1], classes)),
    "unet": HeadSpec(
        "U-Net", "Ronneberger et al., U-Net: Convolutional Networks for Biomedical Image "
        "Segmentation, MICCAI 2015, arXiv:1505.04597", 32, None, UNetHead,
        ("decoder_channels", "center", "separable"), pyramid, True),
    "pspnet": HeadSpec(
        "PSPNet", "Zhao et al., Pyramid Scene Parsing Network, CVPR 2017, arXiv:1612.01105",
        32, None, lambda channels, classes, decoder_channels=512: PSPHead(
            channels[-1], classes, decoder_channels), ("decoder_channels",), psp_taps, True),
    "fpn": HeadSpec(
        "FPN", "Kirillov et al., Panoptic Feature Pyramid Networks, CVPR 2019, "
        "arXiv:1901.02446", 32, None, fpn_head, ("decoder_channels", "separable"), fpn_taps,
        True),
}


class Segmenter(nn.Module):
    """``backbone`` (its maps: the head's inputs, then the auxiliary head's), ``head`` reading
    the first ``head_inputs`` of them, and an optional ``aux_head``. Built by
    :func:`create_segmenter`."""

    task = SEGMENTATION

    def __init__(self, backbone: FeatureNet, head: nn.Module, aux_head: nn.Module | None,
                 head_inputs: int, num_classes: int, spec: HeadSpec) -> None:
        super().__init__()
        self.backbone, self.head = backbone, head
        self.aux_head = aux_head
        self.head_inputs, self.num_classes, self.in_chans = head_inputs, num_classes, \
            backbone.in_chans
        self.family, self.paper = f"{spec.family} ({backbone.family})", spec.paper
        self.output_stride, self.min_input_size = backbone.output_stride, backbone.min_input_size
        self.default_input_size = (self.in_chans, *DEFAULT_INPUT_SIZE[1:])
        self.aux_loss_weight = AUX_LOSS_WEIGHT if aux_head is not None else 0.0
        self.head_sized = spec.sized

    def check_input(self, x: torch.Tensor) -> None:
        """Fail clearly on an input of the wrong rank, channel count or too small a size."""
        check_images(x, self.in_chans, self.min_input_size, f"{self.family} segmenter")

    def forward(self, x: torch.Tensor, return_aux: bool = False) -> Any:
        """Logits at the input's size; with ``return_aux=True``, ``(logits, [aux logits])``, the
        list empty in eval mode or without an auxiliary head."""
        self.check_input(x)
        maps = self.backbone(x)
        logits = self.decode(maps[:self.head_inputs], x)
        if not return_aux:
            return logits
        with_aux = self.training and self.aux_head is not None
        return logits, [upsample(self.aux_head(maps[-1]), x)] if with_aux else []

    def decode(self, maps: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The head's logits at the input's size: the heads that upsample themselves (U-Net,
        PSPNet and FPN, as segmentation_models_pytorch's do) are given the size."""
        if self.head_sized:
            return self.head(*maps, size=x.shape[-2:])
        return upsample(self.head(*maps), x)

    def reset_classifier(self, num_classes: int) -> None:
        """Fresh final convolutions (head and auxiliary head) for ``num_classes``."""
        check_num_classes(num_classes)
        self.num_classes = num_classes
        for head in (self.head, self.aux_head):
            if head is not None:
                head.reset_classifier(num_classes)


def check_num_classes(num_classes: Any) -> None:
    """A one-line error unless ``num_classes`` is a positive integer; a bool is an int to
    Python but not a class count (as create_model's type check has it)."""
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")


def upsample(logits: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """Bilinear resize of ``logits`` to the spatial size of ``like`` (torchvision's choice)."""
    return F.interpolate(logits, size=like.shape[-2:], mode="bilinear", align_corners=False)


def create_segmenter(head: str, backbone: str, num_classes: int = 21,
                     output_stride: int | None = None, aux_loss: bool = False, in_chans: int = 3,
                     rates: Sequence[int] | None = None, separable: bool | None = None,
                     low_level: int | str | None = None, aux_level: int | str | None = None,
                     backbone_args: Mapping[str, Any] | None = None,
                     decoder_channels: int | Sequence[int] | None = None,
                     center: bool | None = None, threshold: float = 0.5) -> Segmenter:
    """A ``head`` (``fcn``, ``deeplabv3``, ``deeplabv3plus``, ``lraspp``, ``unet``, ``pspnet``,
    ``fpn``) on the trunk of any registered classifier ``backbone``, built at
    ``output_stride`` (default: the head's own, 8 for FCN and DeepLabV3, 16 for DeepLabV3+ and
    LR-ASPP, 32 for U-Net, PSPNet and FPN).

    Args:
        num_classes: output classes; 21 by default, Pascal VOC's (20 and the background).
        aux_loss: add an FCN head on the stage before the last (``aux_level`` chooses another).
        rates: the ASPP rates of the DeepLab heads (default: by the map's stride).
        separable: depthwise-separable convolutions in the DeepLab heads' ASPP and decoder,
            and in the U-Net and FPN decoders.
        low_level: the stage DeepLabV3+ / LR-ASPP read as low-level features (a
            ``feature_info`` index or a trunk module's name).
        backbone_args: the backbone's constructor arguments (``width_mult``, ...).
        decoder_channels: U-Net: one width per block, deepest first (256, 128, 64, 32, 16);
            PSPNet: the fused width (512); FPN: the pyramid's width (256; its semantic branch
            half of it).
        center: U-Net: two 3x3 convolutions on the deepest map (as on VGG encoders).
        threshold: with ``num_classes=1`` (a binary segmenter: one foreground logit per
            pixel), foreground where its sigmoid exceeds it (kept as ``model.threshold`` and
            recorded among the model's arguments, so that evaluation, prediction and exported
            files use it too).
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; expected one of {', '.join(HEADS)}")
    spec = HEADS[head]
    backbone = resolve_name(backbone)
    if task_of(backbone) != CLASSIFICATION:
        raise ValueError(f"backbone {backbone!r} is a {task_of(backbone)} model; expected a "
                         "classifier of the zoo (see `lightnets list --task classification`)")
    check_num_classes(num_classes)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
            0 < threshold < 1):
        raise ValueError(f"threshold must be a number in (0, 1), got {threshold!r}")
    options = {name: value for name, value in (
        ("rates", rates), ("separable", separable), ("decoder_channels", decoder_channels),
        ("center", center)) if value is not None}
    refused = sorted(set(options) - set(spec.options))
    if refused:
        raise ValueError(f"the {head} head takes no {', '.join(refused)}")
    output_stride = spec.output_stride if output_stride is None else output_stride
    trunk = create_model(backbone, num_classes=0, in_chans=in_chans, output_stride=output_stride,
                         **dict(backbone_args or {}))
    taps = head_taps(head, spec, trunk, backbone, low_level)
    if aux_loss:
        taps.append(len(trunk.feature_info) - 2 if aux_level is None else aux_level)
    elif aux_level is not None:
        raise ValueError("aux_level places the auxiliary head: it needs aux_loss=True")
    features = FeatureNet(trunk, taps)
    head_inputs = len(taps) - 1 if aux_loss else len(taps)
    if "rates" in spec.options:  # tied to the true stride of the map the ASPP reads
        options.setdefault("rates", aspp_rates(features.reductions[head_inputs - 1]))
    head_module = spec.build(features.channels[:head_inputs], num_classes, **options)
    aux_head = FCNHead(features.channels[-1], num_classes) if aux_loss else None
    segmenter = Segmenter(features, head_module, aux_head, head_inputs, num_classes, spec)
    segmenter.backbone_name = backbone  # a classifier's weights can initialise it alone
    segmenter.threshold = float(threshold)  # of the foreground's sigmoid (num_classes=1)
    return segmenter


def head_taps(head: str, spec: HeadSpec, trunk: nn.Module, backbone: str,
              low_level: int | str | None) -> list[int | str]:
    """The stages the head reads: its own choice (U-Net, PSPNet, FPN), or the last stage and,
    for DeepLabV3+ and LR-ASPP, a low-level one before it."""
    if spec.taps is not None:
        if low_level is not None:
            raise ValueError(f"the {head} head chooses the stages it reads; drop low_level")
        return spec.taps(trunk.feature_info, [name for name, _ in trunk.trunk()], backbone)
    taps: list[int | str] = [len(trunk.feature_info) - 1]
    if spec.low_reduction is not None:
        taps.insert(0, low_stage(trunk.feature_info, spec.low_reduction, backbone)
                    if low_level is None else low_level)
    elif low_level is not None:
        raise ValueError(f"the {head} head reads no low-level features; drop low_level")
    return taps


def low_stage(feature_info: list[dict[str, Any]], reduction: int, backbone: str) -> int:
    """The index of the first stage at ``reduction`` (the low-level features a decoder reads)."""
    for index, entry in enumerate(feature_info):
        if entry["reduction"] == reduction:
            return index
    raise ValueError(f"{backbone} has no stage at stride {reduction} (its stages: "
                     f"{[entry['reduction'] for entry in feature_info]}); pass low_level=")
