"""A detector with its post-processing, as one exportable graph: :class:`DetectionGraph`.

``forward(x)`` takes one letterboxed, normalised ``(1, C, H, W)`` image (what :class:`RawHeads`
takes: the export size, normalised with the detector's ``image_mean`` / ``image_std``) and
returns ``boxes (K, 4)`` (x1, y1, x2, y2 in the input's pixels), ``scores (K,)`` and ``labels
(K,)`` int64, the most confident first: what the detector in eval mode returns for the 0-1
image. The decoding is torchvision's ``postprocess_detections`` of the class (FCOS, RetinaNet,
SSD), with its thresholds, its box coder and the anchors of the export size, precomputed as a
buffer: the input size is fixed (a GFL detector: its own
:meth:`~lightnets.detect.gfl.GFLDetector.candidates` on the points of that size). Two steps
are reordered, with the same result, so that the
graph has a fixed count of candidates: the top-``topk_candidates`` scores are taken before the
``score_thresh`` filter (the same candidates as filtering first), and NMS (torchvision's
``batched_nms``) runs before the filter too. The batch is one image: NMS and the
varying count of boxes do not batch.

A two-stage Faster R-CNN runs torchvision's own region proposal network and RoI heads on the
image (their post-processing included): its count of proposals, and so of boxes RoIAlign crops,
is data-dependent all the way through, so it is exported by tracing, the path torchvision
writes those modules for (their ONNX-specific branches under ``torchvision._is_tracing()``).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import boxes as box_ops

from lightnets.detect.detector import Detector
from lightnets.detect.gfl import GFLDetector
from lightnets.detect.gfl_head import grid_points
from lightnets.detect.postprocess import keep_detections
from lightnets.registry import DETECTION


class DetectionGraph(nn.Module):
    """``detector``'s network and post-processing at the fixed ``(H, W)`` of ``size``."""

    def __init__(self, detector: Detector, size: tuple[int, int]) -> None:
        super().__init__()
        self.detector, self.size, self.task = detector.eval(), tuple(size), DETECTION
        transform = detector.transform
        kept = (tuple(transform.fixed_size) == self.size[::-1] if transform.fixed_size else
                min(transform.min_size[-1] / min(size), transform.max_size / max(size)) == 1)
        divisor = transform.size_divisible
        if size[0] % divisor or size[1] % divisor:  # eager pads the batch, the graph cannot
            raise ValueError(f"the detector pads its inputs to multiples of {divisor}; export it "
                             f"at such a size, not {size[0]}x{size[1]}")
        if not kept:  # the graph holds no resizing: it would decode another image than eager's
            wanted = transform.fixed_size[0] if transform.fixed_size else transform.min_size[-1]
            raise ValueError(f"the detector resizes a {size[0]}x{size[1]} input to its own size "
                             f"({wanted}); export it at that size (--input-size {wanted}) or "
                             f"without post-processing")
        self.kind = "fcos" if isinstance(detector, FCOS) else \
            "retinanet" if isinstance(detector, RetinaNet) else \
            "fasterrcnn" if isinstance(detector, FasterRCNN) else \
            "gfl" if isinstance(detector, GFLDetector) else "ssd"
        if self.kind == "fasterrcnn":
            return
        if self.kind == "gfl":  # its locations' points and strides at this size
            with torch.no_grad():
                _, shapes = detector.network(torch.zeros(1, detector.in_chans, *self.size))
            points, strides = grid_points(shapes, detector.strides)
            self.register_buffer("points", points, persistent=False)
            self.register_buffer("point_strides", strides, persistent=False)
            return
        with torch.no_grad():  # the anchors of this size, as torchvision makes them
            blank = torch.zeros(1, detector.in_chans, *self.size)
            features = list(detector.backbone(blank).values())
            anchors = detector.anchor_generator(ImageList(blank, [self.size]), features)[0]
        if self.kind == "ssd":
            self.level_sizes = [len(anchors)]
        else:
            per_place = detector.anchor_generator.num_anchors_per_location()
            self.level_sizes = [f.shape[-2] * f.shape[-1] * a for f, a in zip(features, per_place)]
        self.register_buffer("anchors", anchors, persistent=False)

    @property
    def traced(self) -> bool:
        """Whether the graph is exported by tracing (Faster R-CNN) rather than torch.export."""
        return self.kind == "fasterrcnn"

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.kind == "fasterrcnn":
            return self.two_stage(x)
        heads = self.detector.forward_raw(x)
        if self.kind == "gfl":
            boxes, scores, labels = self.detector.candidates(
                heads["bbox_regression"][0], heads["cls_logits"][0], self.points,
                self.point_strides, self.size)
        elif self.kind == "ssd":
            boxes, scores, labels = self.ssd_candidates(heads)
        else:
            boxes, scores, labels = self.level_candidates(heads)
        detector = self.detector
        keep = keep_detections(boxes, scores, labels, detector.nms_thresh, detector.score_thresh,
                               detector.detections_per_img)
        return boxes[keep], scores[keep], labels[keep]

    def two_stage(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Faster R-CNN: torchvision's proposals, then its RoI heads with their decoding, score
        threshold, per-class NMS and box count."""
        features = self.detector.backbone(x)
        image = ImageList(x, [self.size])
        proposals, _ = self.detector.rpn(image, features)
        [found], _ = self.detector.roi_heads(features, proposals, image.image_sizes)
        return found["boxes"], found["scores"], found["labels"]

    def level_candidates(self, heads: dict[str, torch.Tensor]
                         ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """FCOS / RetinaNet: per level the top-k (location, class) scores, their boxes decoded
        from that level's anchors and clipped, and their labels (class indices, 0 included)."""
        detector = self.detector
        regression = heads["bbox_regression"][0].split(self.level_sizes)
        logits = heads["cls_logits"][0].split(self.level_sizes)
        ctrness = heads["bbox_ctrness"][0].split(self.level_sizes) if self.kind == "fcos" \
            else [None] * len(logits)
        found = []
        for deltas, level_logits, level_ctr, anchors in zip(
                regression, logits, ctrness, self.anchors.split(self.level_sizes)):
            classes = level_logits.shape[-1]
            scores = torch.sigmoid(level_logits)
            if level_ctr is not None:  # FCOS: the geometric mean with the centerness
                scores = torch.sqrt(scores * torch.sigmoid(level_ctr))
            scores, index = scores.flatten().topk(min(scores.numel(), detector.topk_candidates))
            places = torch.div(index, classes, rounding_mode="floor")
            if self.kind == "fcos":
                boxes = detector.box_coder.decode(deltas[places], anchors[places])
            else:
                boxes = detector.box_coder.decode_single(deltas[places], anchors[places])
            found.append((box_ops.clip_boxes_to_image(boxes, self.size), scores, index % classes))
        return tuple(torch.cat(part) for part in zip(*found))

    def ssd_candidates(self, heads: dict[str, torch.Tensor]
                       ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SSD: every box decoded and clipped, then per object class (1..K-1) its top-k anchors
        by softmax score."""
        detector = self.detector
        boxes = detector.box_coder.decode_single(heads["bbox_regression"][0], self.anchors)
        boxes = box_ops.clip_boxes_to_image(boxes, self.size)
        scores = torch.softmax(heads["cls_logits"][0], dim=-1)[:, 1:]
        count = min(len(scores), detector.topk_candidates)
        scores, index = scores.topk(count, dim=0)
        labels = torch.arange(1, scores.shape[1] + 1, device=scores.device)
        # class by class, as torchvision concatenates them
        return boxes[index.t().flatten()], scores.t().flatten(), labels.repeat_interleave(count)
