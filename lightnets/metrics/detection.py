"""COCO mean average precision of detections, computed by pycocotools' ``COCOeval`` (the
reference implementation of Lin et al. 2014, "Microsoft COCO"), never by a hand-written AP.

:class:`DetectionEvaluator` collects one plain record per image (CPU tensors of the ground truth
and the predictions), batch by batch; its ``records`` can be gathered from every process with
``torch.distributed.all_gather_object`` and merged (:meth:`DetectionEvaluator.merge`), images
seen twice (a ``DistributedSampler`` pads the last batch with repeats) counted once. ``compute``
builds both COCO objects in memory and runs the evaluation quietly. Boxes are XYXY pixels, as
torchvision's detectors give and take them; predictions labelled 0 (the background) are left
out; ground-truth boxes flagged ``iscrowd`` (COCO crowds,
VOC "difficult" objects) are ignored, neither missed nor matched, as in COCO's evaluation.

:func:`to_coco_detections` turns predictions into COCO results (``image_id``, ``category_id``,
``bbox`` ``[x, y, w, h]`` in the original image's pixels, ``score``) that any COCO tool reads
against the data's own ``annotations.json``; :func:`save_coco_detections` writes them.
"""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lightnets.files import write_atomic
from lightnets.optional import require

PURPOSE = "detection mAP"


def plain(tensor: Any, dtype: torch.dtype) -> torch.Tensor:
    """A detached CPU tensor of ``dtype`` (``tv_tensors`` unwrapped), so records pickle small."""
    tensor = torch.as_tensor(tensor)
    if isinstance(tensor, torch.Tensor) and type(tensor) is not torch.Tensor:
        tensor = tensor.as_subclass(torch.Tensor)
    return tensor.detach().to("cpu", dtype)


def image_record(prediction: dict[str, Any], target: dict[str, Any]) -> dict[str, Any]:
    """One image's ground truth and predictions as a plain dictionary."""
    boxes = plain(target["boxes"], torch.float32).reshape(-1, 4)
    crowd = target.get("iscrowd")
    labels = plain(prediction["labels"], torch.int64).reshape(-1)
    foreground = labels != 0  # a box "of the background" detects nothing
    return {"image_id": int(target["image_id"]),
            "boxes": boxes, "labels": plain(target["labels"], torch.int64).reshape(-1),
            "iscrowd": (plain(crowd, torch.int64).reshape(-1) if crowd is not None
                        else torch.zeros(len(boxes), dtype=torch.int64)),
            "pred_boxes": plain(prediction["boxes"], torch.float32).reshape(-1, 4)[foreground],
            "pred_scores": plain(prediction["scores"], torch.float32).reshape(-1)[foreground],
            "pred_labels": labels[foreground]}


def xywh(boxes: torch.Tensor) -> list[list[float]]:
    """XYXY rows as COCO's ``[x, y, w, h]``."""
    return torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], dim=1).tolist()


def coco_objects(records: list[dict[str, Any]], num_classes: int) -> tuple[Any, Any]:
    """Ground-truth and detection ``COCO`` objects, built in memory from ``records``."""
    coco = require("pycocotools.coco", PURPOSE)
    images = [{"id": r["image_id"]} for r in records]
    categories = [{"id": label} for label in range(1, num_classes + 1)]
    truths, detections = [], []
    for record in records:
        for box, label, crowd in zip(xywh(record["boxes"]), record["labels"].tolist(),
                                     record["iscrowd"].tolist()):
            truths.append({"id": len(truths) + 1, "image_id": record["image_id"],
                           "category_id": label, "bbox": box, "area": box[2] * box[3],
                           "iscrowd": int(crowd)})
        for box, label, score in zip(xywh(record["pred_boxes"]), record["pred_labels"].tolist(),
                                     record["pred_scores"].tolist()):
            detections.append({"id": len(detections) + 1, "image_id": record["image_id"],
                               "category_id": label, "bbox": box, "area": box[2] * box[3],
                               "score": score, "iscrowd": 0})
    pair = []
    for boxes in (truths, detections):
        objects = coco.COCO()
        objects.dataset = {"images": images, "categories": categories, "annotations": boxes}
        objects.createIndex()
        pair.append(objects)
    return pair[0], pair[1]


class DetectionEvaluator:
    """COCO mAP over batches: ``update(predictions, targets)`` per batch, then ``compute()``."""

    def __init__(self, class_names: Sequence[str]) -> None:
        if not class_names:
            raise ValueError("DetectionEvaluator needs the names of the K foreground classes")
        self.class_names = list(class_names)
        self.records: list[dict[str, Any]] = []

    def update(self, predictions: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]]
               ) -> None:
        """Add a batch: the detector's outputs (``boxes``, ``scores``, ``labels``) and the
        dataset's targets (``boxes``, ``labels``, ``image_id``, optionally ``iscrowd``), in the
        same image coordinates."""
        if len(predictions) != len(targets):
            raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets; "
                             "expected one prediction per image")
        self.records += [image_record(p, t) for p, t in zip(predictions, targets)]

    def merge(self, gathered: Iterable[list[dict[str, Any]]]) -> None:
        """Take the ``records`` of every process (``all_gather_object``'s list), this one's
        included, in place of this one's."""
        self.records = [record for records in gathered for record in records]

    def compute(self) -> dict[str, Any]:
        """``map`` (AP at IoU .50:.95), ``map_50``, ``map_75``, ``per_class_ap`` (AP at .50:.95
        by class name; None for a class without ground truth), as fractions, and the
        ``count`` of images, ``objects`` and ``detections`` evaluated."""
        cocoeval = require("pycocotools.cocoeval", PURPOSE)
        first: dict[int, dict[str, Any]] = {}
        for record in self.records:
            first.setdefault(record["image_id"], record)
        records = list(first.values())
        objects = sum(int((r["iscrowd"] == 0).sum()) for r in records)
        if not objects:
            raise ValueError(f"mAP needs ground-truth boxes; the {len(records)} image(s) "
                             "evaluated have none")
        truth_labels = torch.cat([r["labels"] for r in records])
        predicted = torch.cat([r["pred_labels"] for r in records])
        for what, labels in (("ground-truth", truth_labels), ("predicted", predicted)):
            if labels.numel() and not (1 <= int(labels.min())
                                       and int(labels.max()) <= len(self.class_names)):
                raise ValueError(f"{what} labels must lie in 1..{len(self.class_names)} "
                                 f"(the {len(self.class_names)} classes; 0 is the background), "
                                 f"got {int(labels.min())}..{int(labels.max())}")
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
            truth, detected = coco_objects(records, len(self.class_names))
            evaluation = cocoeval.COCOeval(truth, detected, iouType="bbox")
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
        # precision: (IoU thresholds, recall points, classes, area ranges, max detections);
        # area "all" and 100 detections per image are COCO's headline setting
        precision = evaluation.eval["precision"][:, :, :, 0, -1]
        per_class = {}
        for index, name in enumerate(self.class_names):
            valid = precision[:, :, index][precision[:, :, index] > -1]
            per_class[name] = float(np.mean(valid)) if valid.size else None
        return {"map": float(evaluation.stats[0]), "map_50": float(evaluation.stats[1]),
                "map_75": float(evaluation.stats[2]), "per_class_ap": per_class,
                "count": len(records), "objects": objects,
                "detections": sum(len(r["pred_scores"]) for r in records)}


def evaluate_detections(predictions: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]],
                        class_names: Sequence[str]) -> dict[str, Any]:
    """COCO mAP of ``predictions`` against ``targets`` in one call (see
    :meth:`DetectionEvaluator.compute` for the keys)."""
    evaluator = DetectionEvaluator(class_names)
    evaluator.update(predictions, targets)
    return evaluator.compute()


def to_coco_detections(predictions: Sequence[dict[str, Any]], targets: Sequence[dict[str, Any]],
                       category_ids: Sequence[int] | None = None) -> list[dict[str, Any]]:
    """COCO results for ``predictions``: boxes divided by each target's ``scale`` (undoing the
    letterbox, so they are in the original image's pixels), background boxes (label 0) left
    out, labels mapped to ``category_ids``
    (label i + 1 -> ``category_ids[i]``, the data's own ids; None keeps the labels)."""
    if len(predictions) != len(targets):
        raise ValueError(f"{len(predictions)} predictions for {len(targets)} targets; "
                         "expected one prediction per image")
    results = []
    for prediction, target in zip(predictions, targets):
        boxes = plain(prediction["boxes"], torch.float32).reshape(-1, 4)
        if target.get("scale") is not None:
            scale = plain(target["scale"], torch.float32)
            boxes = boxes / torch.cat([scale, scale])
        labels = plain(prediction["labels"], torch.int64).reshape(-1).tolist()
        scores = plain(prediction["scores"], torch.float32).reshape(-1).tolist()
        for box, label, score in zip(xywh(boxes), labels, scores):
            if label == 0:  # the background
                continue
            if category_ids is not None and not 1 <= label <= len(category_ids):
                raise ValueError(f"label {label} has no category id (labels 1.."
                                 f"{len(category_ids)})")
            results.append({"image_id": int(target["image_id"]),
                            "category_id": int(category_ids[label - 1]) if category_ids
                            else int(label),
                            "bbox": [round(v, 3) for v in box], "score": round(score, 5)})
    return results


def save_coco_detections(path: str | Path, detections: list[dict[str, Any]]) -> Path:
    """Write COCO results as a JSON list (whole or not at all)."""
    return write_atomic(path, json.dumps(detections) + "\n")
