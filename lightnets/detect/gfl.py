"""A light one-stage detector of the library's own blocks on any classifier of the zoo:
:class:`GFLDetector`, built by :func:`create_gfl_detector` (registered as ``gfl`` and
``gfl_<backbone>``).

The recipe of the light anchor-free detectors since 2020 (NanoDet-Plus, RangiLyu 2021; the
YOLOv8 / YOLO11 heads), written here from the papers:

* the trunk's maps at strides 8, 16 and 32 (:class:`~lightnets.models.base.FeatureNet`), a
  light PAN neck of Ghost blocks (:mod:`lightnets.detect.pan`) and one extra stride-64 level;
  ``fine_level=True`` adds the trunk's stride-4 map as a finer level for small objects (the
  extra P2 level of the small-object YOLO variants);
* an anchor-free decoupled head: one point per location, class logits and four side-distance
  distributions (:mod:`lightnets.detect.gfl_head`; Li et al., "Generalized Focal Loss",
  NeurIPS 2020, arXiv:2006.04388);
* Quality Focal Loss, Distribution Focal Loss and GIoU loss (:mod:`lightnets.detect.gfl_loss`);
* task-aligned assignment (Feng et al., "TOOD", ICCV 2021, arXiv:2108.07755;
  :mod:`lightnets.detect.assign`, where the choice over NanoDet-Plus's soft labels is argued).

Named ``gfl`` after the head and losses that define it, as the library's other detectors are
named after theirs (``fcos``, ``retinanet``, ``ssdlite``); "YOLO" names a family of releases,
not one design. It keeps torchvision's calling convention and transform
(``GeneralizedRCNNTransform``: resizing to ``min_size``, normalising, batching), so it trains,
evaluates, predicts and exports through the same paths as the torchvision detectors: a dict of
losses in training mode, one ``{boxes, labels, scores}`` per image in eval mode, labels 1..K
(the head has K sigmoid classes; ``num_classes`` counts the background, as everywhere).
Post-processing: the ``topk_candidates`` best (location, class) scores over all levels, their
boxes decoded and clipped, class-wise NMS, the score threshold, ``detections_per_img``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn
from torchvision.models.detection.transform import GeneralizedRCNNTransform
from torchvision.ops import boxes as box_ops

from lightnets.constants import IMAGENET_MEAN, IMAGENET_STD
from lightnets.detect.assign import ALPHA, BETA, TOPK
from lightnets.detect.backbone import build_trunk, fine_tap, fpn_taps, prepare_trunk
from lightnets.detect.detector import Detector, check_number
from lightnets.detect.gfl_head import GFLHead, decode_boxes, grid_points
from lightnets.detect.gfl_loss import gfl_losses
from lightnets.detect.pan import PANBackbone
from lightnets.detect.postprocess import keep_detections
from lightnets.models.base import Classifier, FeatureNet

SIZE_DIVISOR = 32  # the transform pads batches to it: an input size of another multiple would
# run eager at a padded size and exported at its own, with other boxes


def check_input_size(size: Any) -> None:
    """A one-line error unless ``size`` is a multiple of :data:`SIZE_DIVISOR`."""
    if not isinstance(size, int) or isinstance(size, bool) or size < SIZE_DIVISOR or \
            size % SIZE_DIVISOR:
        raise ValueError(f"gfl detectors take input sizes that are multiples of {SIZE_DIVISOR} "
                         f"(the stride their batches are padded to), got {size!r}")


class GFLDetector(Detector):
    """The detector (see the module docstring): ``backbone`` (a :class:`PANBackbone`),
    ``head`` (:class:`GFLHead`) and torchvision's ``transform``."""

    arch = "GFL"
    paper = ("Li et al., Generalized Focal Loss, NeurIPS 2020 (arXiv:2006.04388); Feng et al., "
             "TOOD: Task-aligned One-stage Object Detection, ICCV 2021 (arXiv:2108.07755)")

    def __init__(self, backbone: PANBackbone, num_classes: int, *, in_chans: int,
                 min_size: int, max_size: int, image_mean: Sequence[float],
                 image_std: Sequence[float], head_convs: int = 2, reg_max: int = 7,
                 score_thresh: float = 0.05, nms_thresh: float = 0.6,
                 detections_per_img: int = 100, topk_candidates: int = 1000,
                 assign_args: Mapping[str, float] | None = None) -> None:
        nn.Module.__init__(self)  # Detector's own __init__ feeds a torchvision class
        self.backbone = backbone
        self.head = GFLHead(backbone.out_channels, num_classes - 1, len(backbone.strides),
                            head_convs, reg_max)
        self.transform = GeneralizedRCNNTransform(min_size, max_size, list(image_mean),
                                                  list(image_std), size_divisible=SIZE_DIVISOR)
        self.num_classes, self.in_chans, self.reg_max = num_classes, in_chans, reg_max
        self.strides = list(backbone.strides)
        self.family = f"{type(self).arch} ({backbone.body.family})"
        self.default_input_size = (in_chans, min_size, min_size)
        self.min_input_size = backbone.body.min_input_size
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img, self.topk_candidates = detections_per_img, topk_candidates
        self.assign_args = dict(assign_args or {})

    def network(self, x: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Size]]:
        """The head's outputs on a resized, normalised batch, and the levels' map sizes."""
        features = self.backbone(x)
        return self.head(features), [f.shape[-2:] for f in features]

    def forward_raw(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.network(x)[0]

    def forward(self, images: Any, targets: list[dict[str, torch.Tensor]] | None = None) -> Any:
        """Training mode: the dict of losses; eval mode: one ``{boxes, labels, scores}`` per
        image."""
        self.check_input(images, targets)
        images = list(images)
        original = [tuple(image.shape[-2:]) for image in images]
        batch, targets = self.transform(images, targets)
        outputs, shapes = self.network(batch.tensors)
        points, strides = grid_points(shapes, self.strides, batch.tensors.device)
        if self.training:
            return gfl_losses(outputs, points, strides, targets, self.reg_max, self.assign_args)
        found = []
        for index, size in enumerate(batch.image_sizes):
            boxes, scores, labels = self.candidates(outputs["bbox_regression"][index],
                                                    outputs["cls_logits"][index], points,
                                                    strides, size)
            keep = keep_detections(boxes, scores, labels, self.nms_thresh, self.score_thresh,
                                   self.detections_per_img)
            found.append({"boxes": boxes[keep], "scores": scores[keep], "labels": labels[keep]})
        return self.transform.postprocess(found, batch.image_sizes, original)

    def candidates(self, regression: torch.Tensor, logits: torch.Tensor, points: torch.Tensor,
                   strides: torch.Tensor, size: Sequence[int]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One image's ``topk_candidates`` best (location, class) pairs: their boxes decoded
        and clipped to ``size``, scores and labels (1..K). Shared by the exported graph."""
        classes = logits.shape[-1]
        scores = torch.sigmoid(logits).flatten()
        scores, index = scores.topk(min(scores.numel(), self.topk_candidates))
        places = torch.div(index, classes, rounding_mode="floor")
        boxes = decode_boxes(regression[places], points[places], strides[places], self.reg_max)
        return box_ops.clip_boxes_to_image(boxes, tuple(size)), scores, index % classes + 1

    def decoded(self, run: Callable[[torch.Tensor], torch.Tensor]) -> GFLDetector:
        """A copy (eval mode, sharing the weights) whose network is ``run``, an exported
        :class:`~lightnets.detect.detector.RawHeads`: this detector's decoding on its outputs."""
        decoded = copy.copy(self)
        decoded._modules = dict(self._modules)
        shape_only = copy.deepcopy(self.backbone).to("meta").eval()
        split = 4 * (self.reg_max + 1)

        def network(x: torch.Tensor) -> tuple[dict[str, torch.Tensor], list[torch.Size]]:
            raw = run(x).float()
            with torch.no_grad():
                shapes = [f.shape[-2:] for f in shape_only(torch.empty(x.shape, device="meta"))]
            return {"bbox_regression": raw[..., :split], "cls_logits": raw[..., split:]}, shapes
        decoded.network = network
        return decoded.eval()


def create_gfl_detector(backbone: str | Classifier, num_classes: int = 91, *, in_chans: int = 3,
                        min_size: int = 320, max_size: int | None = None,
                        image_mean: Sequence[float] | None = None,
                        image_std: Sequence[float] | None = None, score_thresh: float = 0.05,
                        nms_thresh: float = 0.6, detections_per_img: int = 100,
                        topk_candidates: int = 1000, neck_width: int = 96,
                        neck_block: str = "ghost", extra_levels: int = 1, head_convs: int = 2,
                        reg_max: int = 7, taps: Sequence[int | str] | None = None,
                        fine_level: bool = False, trainable_layers: int | None = None,
                        frozen_bn: bool = False,
                        assign_topk: int = TOPK, assign_alpha: float = ALPHA,
                        assign_beta: float = BETA,
                        backbone_args: Mapping[str, Any] | None = None) -> GFLDetector:
    """A :class:`GFLDetector` on any registered classifier ``backbone`` for ``num_classes``
    including the background. ``min_size`` (a multiple of 32; ``max_size`` defaults to it):
    the size it runs at. ``neck_width`` / ``neck_block`` (``"ghost"`` or ``"separable"``) /
    ``extra_levels``: the PAN; ``fine_level``: a stride-4 level before ``taps`` (default: the
    trunk's stages at strides 8, 16, 32); ``head_convs``, ``reg_max``: the head; ``assign_*``:
    TOOD's ``topk``, ``alpha``, ``beta``; the rest as :func:`~lightnets.detect.create_detector`.
    """
    if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2 counting the background, got "
                         f"{num_classes!r}")
    check_input_size(min_size)
    max_size = min_size if max_size is None else max_size
    check_number("max_size", max_size)
    for key, value in (("score_thresh", score_thresh), ("nms_thresh", nms_thresh)):
        check_number(key, value, fraction=True)
    for key, value in (("detections_per_img", detections_per_img),
                       ("topk_candidates", topk_candidates), ("assign_topk", assign_topk)):
        check_number(key, value)
    mean = [float(v) for v in (image_mean or IMAGENET_MEAN)]
    std = [float(v) for v in (image_std or IMAGENET_STD)]
    if in_chans != 3 and image_mean is None:  # ImageNet's, averaged over RGB
        mean, std = [sum(mean) / 3] * in_chans, [sum(std) / 3] * in_chans
    if len(mean) != in_chans or len(std) != in_chans:
        raise ValueError(f"image_mean and image_std need one value per input channel "
                         f"({in_chans}), got {mean} and {std}")
    trunk = build_trunk(backbone, in_chans, backbone_args)
    prepare_trunk(trunk, trainable_layers, frozen_bn)
    taps = fpn_taps(trunk.feature_info, type(trunk).__name__) if taps is None else list(taps)
    if not isinstance(fine_level, bool):
        raise ValueError(f"fine_level must be True or False, got {fine_level!r}")
    if fine_level:
        taps = fine_tap(trunk.feature_info, taps, type(trunk).__name__)
    neck = PANBackbone(FeatureNet(trunk, taps), neck_width, extra_levels, neck_block)
    return GFLDetector(neck, num_classes, in_chans=in_chans, min_size=min_size,
                       max_size=max_size, image_mean=mean, image_std=std, head_convs=head_convs,
                       reg_max=reg_max, score_thresh=score_thresh, nms_thresh=nms_thresh,
                       detections_per_img=detections_per_img, topk_candidates=topk_candidates,
                       assign_args={"topk": assign_topk, "alpha": assign_alpha,
                                    "beta": assign_beta})
