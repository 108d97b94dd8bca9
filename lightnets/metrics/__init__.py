"""Evaluation metrics beyond classification accuracy: COCO mAP of detections (pycocotools)."""

from __future__ import annotations

from lightnets.metrics.detection import (DetectionEvaluator, evaluate_detections,
                                         save_coco_detections, to_coco_detections)

__all__ = ["DetectionEvaluator", "evaluate_detections", "save_coco_detections",
           "to_coco_detections"]
