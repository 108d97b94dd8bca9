"""Detection evaluation: COCO mAP@[.5:.95], mAP@.5, mAP@.75 and per-class AP, computed by
pycocotools (:class:`lightnets.metrics.DetectionEvaluator`) from the detector's boxes on the
validation split. Under DDP every process evaluates its shard and the per-image records are
gathered, so the figures are the whole split's."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader

from lightnets.files import write_atomic
from lightnets.metrics import DetectionEvaluator, save_coco_detections, to_coco_detections


@dataclass
class DetEvalResult:
    """Fractions in [0, 1]; ``per_class_ap`` is AP@[.5:.95] by class name (``None`` for a class
    without ground truth in the split)."""

    map: float
    map_50: float
    map_75: float
    count: int                          # images
    objects: int
    detections: int
    classes: list[str] = field(default_factory=list)
    per_class_ap: dict[str, float | None] = field(default_factory=dict)
    # (image uint8, target, prediction) of the first validation images, for a picture
    examples: list[tuple[torch.Tensor, dict, dict]] = field(default_factory=list, repr=False)
    records: list[dict[str, Any]] = field(default_factory=list, repr=False)
    scales: dict[int, torch.Tensor] = field(default_factory=dict, repr=False)  # letterboxes
    category_ids: list[int] | None = None   # COCO data: the file's id of each class

    @property
    def primary(self) -> float:
        """The figure a run keeps its best checkpoint by."""
        return self.map

    def row(self) -> dict[str, float]:
        """The validation columns of a training run's metrics table."""
        return {"val_map": self.map, "val_map_50": self.map_50, "val_map_75": self.map_75}

    def as_dict(self) -> dict[str, Any]:
        return {"map": self.map, "map_50": self.map_50, "map_75": self.map_75,
                "per_class_ap": self.per_class_ap, "count": self.count,
                "objects": self.objects, "detections": self.detections}


def to_device(images: list[torch.Tensor], targets: list[dict[str, Any]], device: torch.device
              ) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """uint8 images as 0-1 floats on ``device`` (torchvision's detectors normalise them), and
    the targets' tensors there as plain tensors."""
    floats = [image.to(device, non_blocking=True).as_subclass(torch.Tensor).float().div_(255)
              for image in images]
    moved = [{key: value.to(device).as_subclass(torch.Tensor) if isinstance(value, torch.Tensor)
              else value for key, value in target.items()} for target in targets]
    return floats, moved


@torch.inference_mode()
def evaluate_detector(model: nn.Module, loader: DataLoader, classes: list[str],
                      device: torch.device | str = "cpu", limit_batches: int | None = None,
                      distributed: bool = False, examples: int = 0) -> DetEvalResult:
    """COCO mAP of ``model`` (a lightnets detector, switched to eval mode) on a loader of
    ``(images, targets)`` lists (:func:`lightnets.data.detection.detection_collate`)."""
    if limit_batches is not None and limit_batches < 1:
        raise ValueError(f"limit_batches must be at least 1, got {limit_batches}")
    device = torch.device(device)
    model.eval()
    evaluator = DetectionEvaluator(classes)
    kept: list[tuple[torch.Tensor, dict, dict]] = []
    scales: dict[int, torch.Tensor] = {}
    for batch, (images, targets) in enumerate(loader):
        if limit_batches is not None and batch >= limit_batches:
            break
        floats, _ = to_device(images, targets, device)
        outputs = [{key: value.cpu() for key, value in output.items()}
                   for output in model(floats)]
        # FCOS and RetinaNet score every class with a sigmoid, the background's too
        outputs = [{key: value[output["labels"] > 0] for key, value in output.items()}
                   for output in outputs]
        evaluator.update(outputs, targets)
        scales.update({int(t["image_id"]): t["scale"] for t in targets if "scale" in t})
        for image, target, output in zip(images, targets, outputs):
            if len(kept) < examples:
                kept.append((image, target, output))
    if distributed:
        gathered: list[Any] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, evaluator.records)
        evaluator.merge(gathered)
    scores = evaluator.compute()
    return DetEvalResult(scores["map"], scores["map_50"], scores["map_75"], scores["count"],
                         scores["objects"], scores["detections"], list(classes),
                         scores["per_class_ap"], kept, evaluator.records, scales)


def save_predictions(result: DetEvalResult, path: str | Path) -> Path:
    """The evaluated detections in COCO's results format, in the original images' pixels
    and, for COCO data, with the file's category ids: checkable with any COCO tool."""
    predictions = [{"boxes": r["pred_boxes"], "labels": r["pred_labels"],
                    "scores": r["pred_scores"]} for r in result.records]
    targets = [{"image_id": r["image_id"], "scale": result.scales.get(r["image_id"])}
               for r in result.records]
    return save_coco_detections(path, to_coco_detections(predictions, targets,
                                                         result.category_ids))


def save_boxes_png(result: DetEvalResult, path: str | Path, title: str = "",
                   score_threshold: float = 0.3) -> Path:
    """The kept validation images with their ground-truth boxes (dashed, white) and the
    predicted ones above ``score_threshold`` (coloured, with class and score), side by side."""
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    rows = result.examples
    if not rows:
        raise ValueError("the evaluation kept no example images (examples=0)")
    columns = min(4, len(rows))
    lines = -(-len(rows) // columns)
    figure = Figure(figsize=(3 * columns, 3 * lines + 0.4), layout="constrained")
    grid = figure.subplots(lines, columns, squeeze=False)
    colours = [f"C{i}" for i in range(10)]
    for axis in grid.flat:
        axis.set_axis_off()
    for (image, target, output), axis in zip(rows, grid.flat):
        axis.imshow(image.permute(1, 2, 0).numpy())
        for box in target["boxes"].tolist():
            axis.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1],
                                     fill=False, edgecolor="white", linestyle="--",
                                     linewidth=1))
        found = sorted(zip(output["boxes"].tolist(), output["labels"].tolist(),
                           output["scores"].tolist()), key=lambda item: item[2])
        for box, label, score in found:  # the most confident drawn last, on top
            if score < score_threshold:
                continue
            colour = colours[label % len(colours)]
            axis.add_patch(Rectangle((box[0], box[1]), box[2] - box[0], box[3] - box[1],
                                     fill=False, edgecolor=colour, linewidth=1.5))
            axis.text(box[0], box[1] - 1, f"{result.classes[label - 1]} {score:.2f}",
                      color="white", fontsize=7, backgroundcolor=colour)
    figure.suptitle(title or f"mAP {result.map:.3f} (mAP@.5 {result.map_50:.3f}) on "
                    f"{result.count} images; dashed: ground truth")
    return write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))
