"""Task-aligned label assignment: which points learn which box, and how confident they should
be (Feng et al., "TOOD: Task-aligned One-stage Object Detection", ICCV 2021, arXiv:2108.07755,
Sec. 3.2).

For every ground-truth box and point, the alignment ``t = s**alpha * u**beta`` multiplies the
head's own score ``s`` for the box's class by the IoU ``u`` of its predicted box with it. The
``topk`` points of highest ``t`` among those whose centre lies inside the box are its positives;
a point claimed by several boxes keeps the one its prediction overlaps most. Each positive's
soft target is ``t`` normalised per box: ``t / max(t) * max(u)`` over the box's positives, so
the best-aligned point of a box aims at the best IoU reached on it. TOOD's values: ``topk=13``,
``alpha=1``, ``beta=6``.

Why this and not NanoDet-Plus's dynamic soft labels (a SimOTA-style cost with a dynamic k,
guided by an auxiliary head during training): the task-aligned assignment reads the detector's
own predictions with no training-only module, is a few dense tensor operations per image, and
its soft target is the quality that the Quality Focal Loss of the classification learns (GFL,
Li et al. 2020), the pairing YOLOv8 and YOLO11 use.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torchvision.ops import box_iou

TOPK, ALPHA, BETA = 13, 1.0, 6.0  # TOOD, Sec. 4.1
EPS = 1e-9


@dataclass
class Assignment:
    """The positive points of one image: their indices, the index of the box each learns, and
    its soft target in [0, 1]."""

    points: torch.Tensor   # (P,) int64 indices into the image's locations
    boxes: torch.Tensor    # (P,) int64 indices into its ground-truth boxes
    quality: torch.Tensor  # (P,) float


def inside_boxes(points: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """``(M, L)``: whether point ``l`` lies strictly inside box ``m``."""
    low = points[None] - boxes[:, None, :2]
    high = boxes[:, None, 2:] - points[None]
    return torch.cat([low, high], dim=-1).amin(dim=-1) > EPS


def task_aligned_assign(scores: torch.Tensor, predicted: torch.Tensor, points: torch.Tensor,
                        boxes: torch.Tensor, classes: torch.Tensor, topk: int = TOPK,
                        alpha: float = ALPHA, beta: float = BETA) -> Assignment:
    """The positives of one image: ``scores`` ``(L, K)`` probabilities and ``predicted``
    ``(L, 4)`` boxes of the head (no gradient needed), ``points`` ``(L, 2)``, ground-truth
    ``boxes`` ``(M, 4)`` and their ``classes`` ``(M,)`` in 0..K-1. No box: no positive."""
    empty = torch.zeros(0, dtype=torch.long, device=points.device)
    if not len(boxes):
        return Assignment(empty, empty, scores.new_zeros(0))
    inside = inside_boxes(points, boxes)
    overlap = box_iou(boxes, predicted).clamp(min=0)                       # (M, L)
    alignment = scores[:, classes].t().pow(alpha) * overlap.pow(beta) * inside
    top = alignment.topk(min(topk, alignment.shape[1]), dim=1).indices
    candidate = torch.zeros_like(inside).scatter_(1, top, True) & inside
    # a point claimed twice learns the box its prediction overlaps most (TOOD, Sec. 3.2.2)
    owner = torch.where(candidate, overlap, -1.0).argmax(dim=0)            # (L,)
    positive = candidate.any(dim=0).nonzero().squeeze(1)
    owner = owner[positive]
    aligned, reached = alignment[owner, positive], overlap[owner, positive]
    best_aligned = torch.zeros(len(boxes), device=points.device).scatter_reduce(
        0, owner, aligned, "amax", include_self=False)
    best_reached = torch.zeros(len(boxes), device=points.device).scatter_reduce(
        0, owner, reached, "amax", include_self=False)
    quality = aligned / (best_aligned[owner] + EPS) * best_reached[owner]
    return Assignment(positive, owner, quality)
