"""The losses of a GFL head (Li et al., "Generalized Focal Loss: Learning Qualified and
Distributed Bounding Boxes for Dense Object Detection", NeurIPS 2020, arXiv:2006.04388):

* Quality Focal Loss (Sec. 3.2, Eq. 5) on the class logits, whose target is a soft quality
  in [0, 1] (here the task-aligned target of :mod:`lightnets.detect.assign`) at the assigned
  class and 0 elsewhere: ``-|y - s|**beta * BCE(s, y)``, ``beta=2``;
* Distribution Focal Loss (Sec. 3.3, Eq. 6) on the side distributions: the cross-entropy to the
  two bins around the true distance, weighted by their nearness;
* GIoU loss (Rezatofighi et al., CVPR 2019, arXiv:1902.09630; torchvision's) on the decoded
  boxes.

The box losses of a positive are weighted by its soft target, and all three are divided by the
sum of the targets (at least 1), as TOOD does; the weights 1, 2 and 0.25 are GFL's.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch.nn import functional as F
from torchvision.ops import generalized_box_iou_loss

from lightnets.detect.assign import task_aligned_assign
from lightnets.detect.gfl_head import decode_boxes, encode_sides

QFL_BETA = 2.0
WEIGHTS = {"quality_focal": 1.0, "giou": 2.0, "distribution_focal": 0.25}


def quality_focal_loss(logits: torch.Tensor, quality: torch.Tensor,
                       beta: float = QFL_BETA) -> torch.Tensor:
    """Elementwise QFL of ``logits`` against soft targets ``quality`` of the same shape."""
    modulation = (torch.sigmoid(logits) - quality).abs().pow(beta)
    return F.binary_cross_entropy_with_logits(logits, quality, reduction="none") * modulation


def distribution_focal_loss(regression: torch.Tensor, sides: torch.Tensor) -> torch.Tensor:
    """DFL of distributions ``(P, 4, bins)`` against distances ``(P, 4)`` in bins, summed over
    the four sides: ``(P,)``."""
    left = sides.long()
    right_weight = sides - left
    logits = regression.flatten(0, 1)
    loss = F.cross_entropy(logits, left.flatten(), reduction="none") * \
        (1 - right_weight).flatten() + \
        F.cross_entropy(logits, (left + 1).flatten(), reduction="none") * right_weight.flatten()
    return loss.view(-1, 4).sum(dim=1)


def gfl_losses(outputs: dict[str, torch.Tensor], points: torch.Tensor, strides: torch.Tensor,
               targets: Sequence[dict[str, torch.Tensor]], reg_max: int,
               assign_args: dict[str, float] | None = None) -> dict[str, torch.Tensor]:
    """The three weighted losses of a batch: ``outputs`` of :class:`GFLHead`, the locations'
    ``points`` and ``strides``, and torchvision-style ``targets`` (boxes in the resized batch's
    pixels, labels 1..K)."""
    logits, regression = outputs["cls_logits"], outputs["bbox_regression"]
    with torch.no_grad():
        predicted = decode_boxes(regression.detach().float(), points, strides, reg_max)
        probabilities = torch.sigmoid(logits.detach().float())
    quality = torch.zeros_like(logits, dtype=torch.float32)
    chosen_reg, chosen_boxes, chosen_points, chosen_strides, weights = [], [], [], [], []
    for index, target in enumerate(targets):
        boxes, classes = target["boxes"].float(), target["labels"].long() - 1
        found = task_aligned_assign(probabilities[index], predicted[index], points, boxes,
                                    classes, **(assign_args or {}))
        quality[index, found.points, classes[found.boxes]] = found.quality
        chosen_reg.append(regression[index, found.points])
        chosen_boxes.append(boxes[found.boxes])
        chosen_points.append(points[found.points])
        chosen_strides.append(strides[found.points])
        weights.append(found.quality)
    norm = quality.sum().clamp(min=1.0)
    weight = torch.cat(weights)
    chosen = torch.cat(chosen_reg).float()
    boxes, where = torch.cat(chosen_boxes), torch.cat(chosen_points)
    step = torch.cat(chosen_strides)
    decoded = decode_boxes(chosen, where, step, reg_max)
    giou = generalized_box_iou_loss(decoded, boxes, reduction="none") if len(boxes) else \
        decoded.new_zeros(0)
    dfl = distribution_focal_loss(chosen.unflatten(-1, (4, reg_max + 1)),
                                  encode_sides(boxes, where, step, reg_max)) / 4
    losses = {"quality_focal": quality_focal_loss(logits.float(), quality).sum(),
              "giou": (giou * weight).sum(), "distribution_focal": (dfl * weight).sum()}
    # an image without positives still touches every output, so DDP sees all gradients
    anchor = regression.sum() * 0
    return {name: WEIGHTS[name] * loss / norm + anchor for name, loss in losses.items()}
