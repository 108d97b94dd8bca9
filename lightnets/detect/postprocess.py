"""The last step of every one-stage detector's post-processing, eager and exported alike."""

from __future__ import annotations

import torch
from torchvision.ops import boxes as box_ops


def keep_detections(boxes: torch.Tensor, scores: torch.Tensor, labels: torch.Tensor,
                    nms_thresh: float, score_thresh: float, count: int) -> torch.Tensor:
    """The indices of the candidates kept: class-wise NMS, then those above ``score_thresh``,
    at most ``count``, the most confident first.

    NMS runs before the score threshold: a box below it only suppresses boxes scored lower,
    below it too, so the result is the same as filtering first, and NMS sees a fixed count (an
    exported graph's shapes stay static). batched_nms's offset-per-class form (its own choice
    for small inputs and under tracing) is called directly: its test of the count is a branch
    torch.export cannot take."""
    keep = box_ops._batched_nms_coordinate_trick(boxes, scores, labels, nms_thresh)
    return keep[scores[keep] > score_thresh][:count]
