"""Any detector of torchvision on any classifier of the zoo: ``create_detector(arch, backbone,
num_classes)``.

torchvision's detection framework does the detection (anchors, box coding, matching, losses,
NMS, resizing and post-processing); lightnets supplies the backbone
(:mod:`lightnets.detect.backbone`) and the interface the rest of lightnets reads. The four
architectures:

* ``fcos`` (Tian et al., "FCOS: Fully Convolutional One-Stage Object Detection", ICCV 2019):
  anchor-free, one point per location on P3-P7, the YOLO-style choice;
* ``retinanet`` (Lin et al., "Focal Loss for Dense Object Detection", ICCV 2017): nine anchors
  per location on P3-P7, of 4x the level's stride at three scales and three aspect ratios;
* ``ssdlite`` (Sandler et al., "MobileNetV2", CVPR 2018, Sec. 6.2, on Liu et al., "SSD",
  ECCV 2016): depthwise-separable heads on six maps, at one fixed square input size;
* ``fasterrcnn`` (Ren et al., "Faster R-CNN", NeurIPS 2015, with an FPN): two stages, region
  proposals on C3-C5 and a max-pooled level (anchors of 4x the stride), then RoI heads.

torchvision's calling convention is kept: in training mode ``model(images, targets)`` returns
a dict of losses, in eval mode ``model(images)`` a list of ``{boxes, labels, scores}``, boxes
as ``(x1, y1, x2, y2)`` pixels of the input. ``images`` is a list of ``(C, H, W)`` float
tensors in 0-1 (or one ``(N, C, H, W)`` batch); torchvision resizes each to ``min_size`` (the
shorter side; at most ``max_size`` for the longer) and normalises with ``image_mean`` /
``image_std``. ``num_classes`` counts the background as torchvision does: objects are labelled
1..K, so K classes need ``num_classes=K+1``.

``model.forward_raw(x)`` runs the network alone (backbone, neck, head) on an already resized
and normalised ``(N, C, H, W)`` batch and returns the head's raw outputs: what
:mod:`lightnets.profile` counts (torchvision's resizing and post-processing are data-dependent
and cannot run on the meta device, and hold no multiply-accumulates). For Faster R-CNN the RoI
heads run on ``rpn.post_nms_top_n()`` proposals (1000 at test time: an upper bound, fewer pass
the score threshold), on an empty stand-in for the RoIAlign output (RoIAlign itself has no
MACs).
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.ssd import SSD
from torchvision.models.detection.ssdlite import SSDLiteHead
from torchvision.models.detection.transform import GeneralizedRCNNTransform

from lightnets.detect.backbone import (SSDLITE_EXTRA_CHANNELS, SSDLITE_NORM, FPNBackbone,
                                       fpn_backbone, ssdlite_backbone)
from lightnets.models.base import Classifier
from lightnets.constants import IMAGENET_MEAN, IMAGENET_STD
from lightnets.registry import DETECTION



class Detector(nn.Module):
    """What lightnets expects of a model, on top of a torchvision detector class (mixed in
    before it): ``task``, ``family``, ``paper``, ``num_classes`` (with the background),
    ``in_chans``, ``default_input_size``, ``min_input_size``, input checks, and
    :meth:`forward_raw`."""

    task = DETECTION
    arch = ""
    paper = ""

    def __init__(self, backbone: nn.Module, num_classes: int, *, in_chans: int,
                 backbone_family: str, input_size: int, min_input_size: tuple[int, int],
                 **kwargs: Any) -> None:
        super().__init__(backbone=backbone, num_classes=num_classes, **kwargs)
        self.num_classes, self.in_chans = num_classes, in_chans
        self.family = f"{type(self).arch} ({backbone_family})"
        self.default_input_size = (in_chans, input_size, input_size)
        self.min_input_size = min_input_size

    def check_input(self, images: Any, targets: Any) -> None:
        """Fail in one line on images that are not ``(C, H, W)`` float tensors of ``in_chans``
        channels, or on missing targets in training mode."""
        owner = f"{self.family} detector"
        if isinstance(images, torch.Tensor) and images.dim() == 4:
            images = list(images)
        if not isinstance(images, (list, tuple)) or not images:
            raise ValueError(f"{owner} expects a non-empty list of (C, H, W) image tensors, got "
                             f"{type(images).__name__}")
        for image in images:
            if not isinstance(image, torch.Tensor) or image.dim() != 3 or \
                    image.shape[0] != self.in_chans:
                shape = tuple(image.shape) if isinstance(image, torch.Tensor) else type(image)
                raise ValueError(f"{owner} expects images of shape ({self.in_chans}, H, W), "
                                 f"got {shape}")
            if not image.is_floating_point():
                raise ValueError(f"{owner} expects floating-point images in 0-1, got "
                                 f"{image.dtype}")
        if self.training and targets is None:
            raise ValueError(f"{owner} in training mode needs targets: one dict of boxes "
                             "(x1, y1, x2, y2) and labels (1..K) per image")
        for index, target in enumerate(targets or []):
            labels = target.get("labels") if isinstance(target, dict) else None
            if isinstance(labels, torch.Tensor) and labels.numel():
                # torchvision indexes its one-hot or class logits with the label: an
                # IndexError (or a device assert) deep in the loss otherwise
                low, high = int(labels.min()), int(labels.max())
                if low < 1 or high >= self.num_classes:
                    where = f"image_id {target['image_id']}" if "image_id" in target \
                        else f"image {index} of the batch"
                    raise ValueError(f"{owner} of num_classes={self.num_classes} takes labels "
                                     f"1..{self.num_classes - 1}; the target of {where} has "
                                     f"label {high if high >= self.num_classes else low}")

    def forward(self, images: Any, targets: list[dict[str, torch.Tensor]] | None = None) -> Any:
        """Training mode: the dict of losses; eval mode: one ``{boxes, labels, scores}`` per
        image (torchvision's convention)."""
        self.check_input(images, targets)
        return super().forward(images, targets)

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """The dense head's outputs on a resized, normalised batch (backbone, neck, head)."""
        return self.head(list(self.backbone(x).values()))

    def batchnorm_forward(self, x: torch.Tensor) -> Any:
        """What holds the BatchNorm layers (trunk, SSDLite's extra blocks and head) on a
        resized, normalised batch, for recomputing their statistics without targets."""
        return self.forward_raw(x)

    def thresholds(self) -> dict[str, float | int]:
        """The post-processing's settings: score and NMS IoU thresholds, boxes per image, and
        the candidates taken per level before NMS."""
        return {"score_thresh": self.score_thresh, "nms_thresh": self.nms_thresh,
                "detections_per_img": self.detections_per_img,
                "topk_candidates": self.topk_candidates}


class FCOSDetector(Detector, FCOS):
    arch = "FCOS"
    paper = "Tian et al., FCOS: Fully Convolutional One-Stage Object Detection, ICCV 2019"


class RetinaNetDetector(Detector, RetinaNet):
    arch = "RetinaNet"
    paper = "Lin et al., Focal Loss for Dense Object Detection, ICCV 2017"


class SSDLiteDetector(Detector, SSD):
    arch = "SSDLite"
    paper = "Sandler et al., MobileNetV2: Inverted Residuals and Linear Bottlenecks, CVPR 2018"


class FasterRCNNDetector(Detector, FasterRCNN):
    arch = "Faster R-CNN"
    paper = "Ren et al., Faster R-CNN: Towards Real-Time Object Detection with Region " \
            "Proposal Networks, NeurIPS 2015"

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """RPN outputs and the RoI heads' on ``rpn.post_nms_top_n()`` proposals per image (an
        empty stand-in for RoIAlign's output: it has no MACs and its boxes are data)."""
        features = self.backbone(x)
        objectness, deltas = self.rpn.head(list(features.values()))
        pool = self.roi_heads.box_roi_pool.output_size
        pool = (pool, pool) if isinstance(pool, int) else tuple(pool)
        pooled = x.new_empty(x.shape[0] * self.rpn.post_nms_top_n(), self.backbone.out_channels,
                             *pool)
        scores, boxes = self.roi_heads.box_predictor(self.roi_heads.box_head(pooled))
        return {"objectness": torch.cat([o.flatten(1) for o in objectness], 1),
                "proposal_deltas": torch.cat([d.flatten(1) for d in deltas], 1),
                "class_logits": scores, "box_regression": boxes}

    def batchnorm_forward(self, x: torch.Tensor) -> Any:
        """The backbone alone: the proposal network and RoI heads have no BatchNorm."""
        return self.backbone(x)

    def thresholds(self) -> dict[str, float | int]:
        """The RoI heads' score and NMS thresholds and boxes per image, and the proposals kept
        per image in this mode."""
        heads = self.roi_heads
        return {"score_thresh": heads.score_thresh, "nms_thresh": heads.nms_thresh,
                "detections_per_img": heads.detections_per_img,
                "proposals": self.rpn.post_nms_top_n()}


@dataclass(frozen=True)
class ArchSpec:
    """An architecture's class, its FPN extra levels (``None``: SSDLite's extra blocks), and
    torchvision's defaults: input size (``min_size``, ``max_size``) and the keyword arguments
    of its thresholds."""

    detector: type[Detector]
    extra: str | None
    min_size: int
    max_size: int
    thresholds: tuple[str, str, str] = ("score_thresh", "nms_thresh", "detections_per_img")
    defaults: Mapping[str, Any] | None = None


ARCHS: dict[str, ArchSpec] = {
    "fcos": ArchSpec(FCOSDetector, "p6p7", 800, 1333),
    "retinanet": ArchSpec(RetinaNetDetector, "p6p7", 800, 1333),
    # torchvision's ssdlite320: [-1, 1] inputs, its thresholds and candidate count
    "ssdlite": ArchSpec(SSDLiteDetector, None, 320, 320, defaults={
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "score_thresh": 0.001,
        "nms_thresh": 0.55, "detections_per_img": 300, "topk_candidates": 300}),
    "fasterrcnn": ArchSpec(FasterRCNNDetector, "pool", 800, 1333,
                           ("box_score_thresh", "box_nms_thresh", "box_detections_per_img")),
}


def retinanet_anchor_sizes(strides: Sequence[int]) -> tuple[tuple[int, ...], ...]:
    """Lin et al. 2017b, Sec. 4: per level, 4x its stride at scales 2^0, 2^(1/3), 2^(2/3)."""
    return tuple(tuple(int(4 * stride * 2 ** (i / 3)) for i in range(3)) for stride in strides)


def detector_options(spec: ArchSpec, kwargs: dict[str, Any], in_chans: int,
                     image_mean: Sequence[float] | None, image_std: Sequence[float] | None,
                     given: dict[str, float | int | None]) -> dict[str, Any]:
    """The torchvision class's options: the arch's defaults, ``kwargs``, the post-processing
    settings ``given`` (score and NMS thresholds, detections per image) checked, and the
    normalisation, one value per input channel."""
    options = {**(spec.defaults or {}), **kwargs}
    # checked here: torchvision takes any value, then gives no box or fails at the first image;
    # named as given (score_thresh, or Faster R-CNN's box_score_thresh among kwargs)
    for index, (name, key) in enumerate(zip(given, spec.thresholds)):
        if given[name] is not None:
            options[key] = given[name]
        check_number(name if given[name] is not None else key, options.get(key),
                     fraction=index < 2)
    for key, value in (("image_mean", image_mean), ("image_std", image_std)):
        if value is None:  # the arch's (ImageNet's), averaged over RGB for other channels
            value = options.get(key, IMAGENET_MEAN if key == "image_mean" else IMAGENET_STD)
            value = value if in_chans == 3 else [sum(value) / len(value)] * in_chans
        options[key] = [float(v) for v in value]
        if len(options[key]) != in_chans:
            raise ValueError(f"{key} needs one value per input channel ({in_chans}), got "
                             f"{options[key]}")
    return options


def create_detector(arch: str, backbone: str | Classifier, num_classes: int = 91, *,
                    in_chans: int = 3, min_size: int | None = None, max_size: int | None = None,
                    image_mean: Sequence[float] | None = None,
                    image_std: Sequence[float] | None = None, score_thresh: float | None = None,
                    nms_thresh: float | None = None, detections_per_img: int | None = None,
                    trainable_layers: int | None = None, frozen_bn: bool = False,
                    taps: Sequence[int | str] | None = None, fpn_channels: int = 256,
                    head_convs: int = 4,
                    anchor_sizes: Sequence[Sequence[int]] | None = None,
                    extra_channels: Sequence[int] = SSDLITE_EXTRA_CHANNELS,
                    backbone_args: Mapping[str, Any] | None = None,
                    **kwargs: Any) -> Detector:
    """A torchvision ``arch`` (``fcos``, ``retinanet``, ``ssdlite``, ``fasterrcnn``) on any
    registered classifier ``backbone`` (a name from ``lightnets list --task classification``,
    or a :class:`~lightnets.models.Classifier`), for ``num_classes`` including the background
    (91: COCO's, torchvision's default).

    ``min_size`` / ``max_size``: the size torchvision's transform resizes to (default the
    arch's: 800 / 1333, SSDLite a fixed 320x320 (``max_size`` must then equal ``min_size``));
    set both to the canvas size of small images so they are not upscaled. ``image_mean`` /
    ``image_std`` (default ImageNet's, SSDLite 0.5), ``score_thresh``, ``nms_thresh``,
    ``detections_per_img``: torchvision's post-processing (default the arch's).
    ``trainable_layers`` / ``frozen_bn``: fine-tuning (:mod:`lightnets.detect.backbone`);
    ``taps``: the stages the FPN reads (default C3-C5); ``fpn_channels``: its width;
    ``head_convs``: FCOS's tower depth; ``anchor_sizes``: one tuple per level (default from the
    levels' strides); ``extra_channels``: SSDLite's extra maps; ``backbone_args``: the
    backbone's constructor (``width_mult``, ``checkpoint_path``, ...). Other keyword arguments
    go to the torchvision class (e.g. ``topk_candidates``, ``rpn_score_thresh``)."""
    if arch not in ARCHS:
        raise ValueError(f"unknown detector architecture {arch!r}; expected one of "
                         f"{', '.join(ARCHS)}")
    spec = ARCHS[arch]
    if head_convs != 4 and arch != "fcos":
        raise ValueError(f"head_convs sets FCOS's head; torchvision's {arch} head has its own")
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 counting the background "
                         f"(K object classes labelled 1..K: num_classes=K+1), got "
                         f"{num_classes!r}")
    check_arguments(arch, spec.detector, kwargs)
    options = detector_options(spec, kwargs, in_chans, image_mean, image_std, {
        "score_thresh": score_thresh, "nms_thresh": nms_thresh,
        "detections_per_img": detections_per_img})
    for key, value in (("min_size", min_size), ("max_size", max_size),
                       ("fpn_channels", fpn_channels)):
        check_number(key, value)
    min_size = spec.min_size if min_size is None else min_size
    max_size = (spec.max_size if arch != "ssdlite" else min_size) if max_size is None \
        else max_size
    if arch == "ssdlite" and max_size != min_size:
        raise ValueError(f"ssdlite resizes to one fixed square size: give min_size only (or "
                         f"max_size == min_size), got {min_size} and {max_size}")
    common = {"in_chans": in_chans, "backbone_args": backbone_args,
              "trainable_layers": trainable_layers, "frozen_bn": frozen_bn}
    if arch == "ssdlite":
        if taps is not None:
            raise ValueError("ssdlite reads the trunk's last two maps; taps apply to FPN "
                             "detectors")
        neck = ssdlite_backbone(backbone, extra_channels, **common)
        generator = DefaultBoxGenerator([[2, 3]] * len(neck.out_channels), min_ratio=0.2,
                                        max_ratio=0.95)  # torchvision's ssdlite320 boxes
        options.update(anchor_generator=generator, size=(min_size, min_size),
                       head=SSDLiteHead(neck.out_channels,
                                        generator.num_anchors_per_location(), num_classes,
                                        SSDLITE_NORM))
    else:
        neck = fpn_backbone(backbone, spec.extra, fpn_channels, taps, **common)
        options.update(min_size=min_size, max_size=max_size)
        options.update(fpn_heads(arch, neck, num_classes, head_convs, anchor_sizes))
    body = neck.body
    return spec.detector(neck, num_classes, in_chans=in_chans, backbone_family=body.family,
                         input_size=min_size, min_input_size=body.min_input_size, **options)


def check_number(key: str, value: Any, fraction: bool = False) -> None:
    """A one-line error unless ``value`` is a number in [0, 1] (``fraction``) or an integer
    >= 1; ``None`` (the default) passes."""
    if value is None:
        return
    if fraction:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) \
            and 0 <= value <= 1
        if not ok:
            raise ValueError(f"{key} must be a number in [0, 1], got {value!r}")
    elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")


def check_arguments(arch: str, detector: type[Detector], kwargs: Mapping[str, Any]) -> None:
    """A one-line error for an argument neither torchvision's class nor its transform takes
    (the transform accepts any keyword silently: a misspelt option would be ignored)."""
    accepted = {name for cls in (detector.__mro__[2], GeneralizedRCNNTransform)
                for name, parameter in inspect.signature(cls.__init__).parameters.items()
                if parameter.kind is parameter.KEYWORD_ONLY
                or parameter.kind is parameter.POSITIONAL_OR_KEYWORD}
    unknown = sorted(set(kwargs) - accepted)
    if unknown:
        raise ValueError(f"{arch} does not accept the argument {unknown[0]!r}")


def fpn_heads(arch: str, neck: FPNBackbone, num_classes: int, head_convs: int,
              anchor_sizes: Sequence[Sequence[int]] | None) -> dict[str, Any]:
    """The anchor generator (and FCOS's head) of an FPN detector for the levels of ``neck``."""
    strides = neck.strides
    if anchor_sizes is not None:
        sizes = tuple(tuple(level) for level in anchor_sizes)
        if len(sizes) != len(strides):
            raise ValueError(f"anchor_sizes needs one tuple per level ({len(strides)}: strides "
                             f"{strides}), got {len(sizes)}")
    elif arch == "fcos":
        sizes = tuple((stride,) for stride in strides)  # FCOS: one point, scale = stride
    elif arch == "retinanet":
        sizes = retinanet_anchor_sizes(strides)
    else:
        sizes = tuple((4 * stride,) for stride in strides)
    ratios = ((1.0,),) if arch == "fcos" else ((0.5, 1.0, 2.0),)
    generator = AnchorGenerator(sizes, ratios * len(sizes))
    if arch == "fasterrcnn":
        return {"rpn_anchor_generator": generator}
    options: dict[str, Any] = {"anchor_generator": generator}
    if arch == "fcos":
        options["head"] = FCOSHead(neck.out_channels, 1, num_classes, num_convs=head_convs)
    return options


TWO_STAGE_RAW = ("a two-stage Faster R-CNN has no raw head outputs to export (its second stage "
                 "runs on the proposals its first keeps at run time): export it to ONNX with its "
                 "post-processing")


class RawHeads(nn.Module):
    """A detector's network alone as one tensor, for export: ``forward(x)`` takes a resized,
    normalised ``(N, 3, H, W)`` batch (the checkpoint's letterboxed size and normalisation) and
    returns ``(N, locations, 4 [+ 1] + num_classes)``: per anchor or location the box regression
    (4), FCOS's centerness (1) and the class logits, in that order. Decoding them into boxes is
    torchvision's ``postprocess_detections`` with the same anchors (``model.anchor_generator``)
    and box coder, then NMS; this module leaves that data-dependent step out, as ONNX Runtime's
    and OpenVINO's graphs run best without it. A two-stage Faster R-CNN has no such outputs (its
    second stage runs on the proposals its first keeps at run time): it is only exported with
    its post-processing (:class:`lightnets.detect.graph.DetectionGraph`)."""

    def __init__(self, detector: Detector) -> None:
        super().__init__()
        self.detector = detector
        self.task = DETECTION
        self.two_stage = isinstance(detector, FasterRCNN)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.two_stage:
            raise ValueError(TWO_STAGE_RAW)
        outputs = self.detector.forward_raw(x)
        parts = [outputs["bbox_regression"]]
        if "bbox_ctrness" in outputs:
            parts.append(outputs["bbox_ctrness"])
        return torch.cat([*parts, outputs["cls_logits"]], dim=-1)


class _FeatureShapes(nn.Module):
    """Stands in for a detector's backbone: keeps the batch for :class:`_RunnerHead` and returns
    zero maps of the backbone's shapes (the anchor generator reads only their sizes)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.shape_only = copy.deepcopy(backbone).to("meta").eval()
        self.out_channels = backbone.out_channels
        self.batch: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        self.batch = x
        with torch.no_grad():
            maps = self.shape_only(torch.empty(x.shape, device="meta"))
        return OrderedDict((name, x.new_zeros(m.shape)) for name, m in maps.items())


class _RunnerHead(nn.Module):
    """Stands in for a detector's head: the raw outputs of ``run`` (an exported
    :class:`RawHeads`) on the batch the stand-in backbone kept, split back into torchvision's
    dictionary."""

    def __init__(self, shapes: _FeatureShapes, run: Callable[[torch.Tensor], torch.Tensor],
                 centerness: bool) -> None:
        super().__init__()
        self.shapes, self.run, self.centerness = shapes, run, centerness

    def forward(self, features: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        raw = self.run(self.shapes.batch).float()
        outputs = {"bbox_regression": raw[..., :4]}
        if self.centerness:
            outputs["bbox_ctrness"] = raw[..., 4:5]
        outputs["cls_logits"] = raw[..., 5 if self.centerness else 4:]
        return outputs


def decoded_detector(detector: Detector, run: Callable[[torch.Tensor], torch.Tensor]
                     ) -> Detector:
    """A copy of ``detector`` (eval mode) whose network is ``run``: an exported
    :class:`RawHeads` file in ONNX Runtime or OpenVINO, say. torchvision's own resizing, anchors,
    box decoding, NMS and post-processing turn its raw outputs into boxes, so the copy returns
    what the detector returns, and can be scored by mAP."""
    if isinstance(detector, FasterRCNN):
        raise ValueError(TWO_STAGE_RAW)
    own = getattr(detector, "decoded", None)  # a detector with its own decoding (GFL)
    if own is not None:
        return own(run)
    decoded = copy.copy(detector)  # shares the weights; only two submodules are replaced
    decoded._modules = dict(detector._modules)
    shapes = _FeatureShapes(detector.backbone)
    decoded.backbone = shapes
    decoded.head = _RunnerHead(shapes, run, isinstance(detector, FCOS))
    return decoded.eval()
