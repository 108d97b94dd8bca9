"""Detection: boxes of classes. Its data (digits-det canvases, COCO and Pascal VOC folders,
letterboxed), losses (the detector's own), metric (COCO mAP@[.5:.95], mAP@.5, mAP@.75 and
per-class AP, by pycocotools through :class:`lightnets.metrics.DetectionEvaluator`) and
picture (validation images with their true and predicted boxes). A detector counts the
background among its classes. Under DDP every process evaluates its shard and the per-image
records are gathered, so the figures are the whole split's."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset

from lightnets.data.detection import detection_collate, detection_data_kind
from lightnets.detect.detector import decoded_detector
from lightnets.files import write_atomic
from lightnets.metrics import DetectionEvaluator, save_coco_detections, to_coco_detections
from lightnets.registry import DETECTION
from lightnets.tasks.base import Normalize, Task, register_task


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


class Detection(Task):
    """Detectors: images and their boxes, with a background class of the model's own."""

    name, model_noun = DETECTION, "detector"
    embedded_data = "digits-det"
    expected_data = ("'digits-det', a COCO folder (annotations.json + images/), a YOLO folder "
                     "(data.yaml, images/, labels/) or a Pascal VOC "
                     "folder (Annotations/ + JPEGImages/)")
    metric, metric_label = "map", "mAP@[.5:.95]"
    second_metric = ("val_map_50", "map_50", "mAP@.5")
    reference_metric = ("box_map", "COCO box mAP")
    outputs, outputs_tensor = "boxes", False
    background_classes = 1
    train_accuracy = False
    val_columns = ("val_map", "val_map_50", "val_map_75")
    curves = (("val_map", "mAP@[.5:.95]", "o-"), ("val_map_50", "mAP@.5", "o-"))
    curves_axis = ("%", "validation box mAP")
    picture_stem, picture_name = "detections", "the example predictions"
    saves_predictions = True
    collate = staticmethod(detection_collate)
    pretrained_is_backbone = True
    scores_exported = False
    box_augments = calibrates = True
    # fp32 only: torchvision's losses and box coding were written for it, and bf16 autocast
    # would change what a detector learns, which a step timing does not measure
    calibration_precisions = ("off",)

    def folder_kind(self, path: Path) -> str | None:
        return detection_data_kind(str(path))

    def network_inputs(self, model: nn.Module, images: torch.Tensor) -> torch.Tensor:
        # uint8 canvases, normalised as the detector's transform does before its network
        # (``model``: the RawHeads exported)
        if not len(images):
            return images
        transform = model.detector.transform
        mean = torch.tensor(transform.image_mean).view(1, -1, 1, 1)
        std = torch.tensor(transform.image_std).view(1, -1, 1, 1)
        return (images.float() / 255 - mean) / std

    def describe_classes(self, model_classes: int) -> str:
        return f"{model_classes - 1} object classes ({model_classes} with the background)"

    def check_config(self, config: Any) -> None:
        if config.freeze_backbone_epochs:
            raise ValueError("--freeze-backbone-epochs is for classifiers; freeze a detector's "
                             "earliest stages with --model-arg trainable_layers=N")
        super().check_config(config)

    def size_args(self, input_size: int) -> dict[str, Any]:
        # the images at their letterboxed size (torchvision's transform would otherwise
        # resize them to the detector's own min_size: 800, or 320 for the light ones)
        return {"min_size": input_size, "max_size": input_size}

    def runtime_defaults(self, amp: str, channels_last: bool | None
                         ) -> tuple[str, bool | None]:
        # fp32 NCHW unless asked: torchvision's losses and box coding were written for it, and
        # its transform batches the images itself
        return "off" if amp == "auto" else amp, bool(channels_last)

    def epoch_summary(self, row: dict[str, float]) -> str:
        return (f"val mAP {row['val_map']:.3f} mAP@.5 {row['val_map_50']:.3f} "
                f"mAP@.75 {row['val_map_75']:.3f}")

    def input_shape(self, model: nn.Module, input_size: int) -> tuple[int, int, int]:
        return (3, input_size, input_size)  # its transform batches RGB images itself

    def calibration_batch(self, batch_size: int, shape: tuple[int, int, int],
                          num_classes: int) -> tuple[list, list]:
        """0-1 images, each with one box of a random class (1..K: 0 is the background)."""
        side = min(shape[1:])
        corners = torch.rand(batch_size, 2) * side / 2
        boxes = torch.cat([corners, corners + side / 8 + torch.rand(batch_size, 2) * side / 4], 1)
        return ([torch.rand(shape) for _ in range(batch_size)],
                [{"boxes": box[None], "labels": torch.randint(1, num_classes + 1, (1,))}
                 for box in boxes])

    def to_device(self, images: list, targets: list, device: torch.device,
                  normalize: Normalize | None, memory_format: torch.memory_format
                  ) -> tuple[list, list]:
        return to_device(images, targets, device)  # lists: torchvision normalises and batches

    def forward_loss(self, model: nn.Module, images: list, targets: list, aux_weight: float,
                     label_smoothing: float, loss: str | None = None
                     ) -> tuple[None, torch.Tensor]:
        return None, sum(model(images, targets).values())  # torchvision's own losses

    def batchnorm_inputs(self, model: nn.Module, batches: Iterable[tuple[list, list]],
                         device: torch.device, normalize: Normalize | None,
                         memory_format: torch.memory_format
                         ) -> tuple[Iterable[torch.Tensor], Callable[[torch.Tensor], Any]]:
        # its network alone: the losses would need targets
        return ((model.transform(to_device(images, [], device)[0])[0].tensors
                 for images, _ in batches), model.batchnorm_forward)

    def evaluate(self, model: nn.Module, loader: DataLoader, classes: list[str],
                 device: torch.device | str = "cpu", channels_last: bool = False,
                 limit_batches: int | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 distributed: bool = False, normalize: Normalize | None = None,
                 examples: int = 0) -> DetEvalResult:
        return evaluate_detector(model, loader, classes, device, limit_batches, distributed,
                                 examples)

    def save_picture(self, result: DetEvalResult, path: str | Path, title: str = "") -> Path:
        return save_boxes_png(result, path, title)

    def save_predictions(self, result: DetEvalResult, path: str | Path) -> Path:
        return save_predictions(result, path)

    def headline(self, result: DetEvalResult) -> str:
        return f"mAP {result.map:.3f}, mAP@.5 {result.map_50:.3f}"

    def summary(self, result: DetEvalResult, split: str) -> str:
        return (f"mAP@[.5:.95] {result.map:.3f}  mAP@.5 {result.map_50:.3f}  "
                f"mAP@.75 {result.map_75:.3f}  on {result.count} {split} images "
                f"({result.objects} objects, {result.detections} detections)")

    def table(self, result: DetEvalResult) -> tuple[str, list[str], list[list[str]]]:
        return ("per-class AP@[.5:.95]", ["class", "AP"],
                [[name, "-" if ap is None else f"{ap:.3f}"]
                 for name, ap in result.per_class_ap.items()])

    def gate_score(self, run: Callable, dataset: Dataset, classes: list[str],
                   model: nn.Module | None = None) -> float:
        # ``model`` is the RawHeads whose network ``run`` computes: torchvision decodes the
        # boxes from its outputs
        loader = DataLoader(dataset, batch_size=16, collate_fn=detection_collate)
        return evaluate_detector(decoded_detector(model.detector, run), loader, classes).map


DETECTION_TASK = register_task(Detection())
