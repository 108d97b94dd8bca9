"""Segmentation: a class per pixel. Its data (digits-seg, Pascal VOC and image/mask pair
folders), loss (per-pixel cross-entropy by default; Dice, Focal, Lovász, Tversky and weighted
sums through ``--loss``: :mod:`lightnets.segment.losses`), metrics and picture (validation
images beside their masks).

The metrics come from one confusion matrix: mean intersection-over-union, pixel accuracy and
per-class IoU (Long et al. 2015, Sec. 5; the Pascal VOC protocol: pixels labelled 255 are
ignored, the matrix is summed over the whole split before any ratio is taken, and a class that
neither appears nor is predicted is left out of the mean). Under DDP each process fills the
matrix for its shard and the sums are added, so the figures are the whole split's."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader

from lightnets.data import IGNORE_INDEX, segmentation_folder_kind
from lightnets.data.palette import colourize
from lightnets.files import write_atomic
from lightnets.registry import SEGMENTATION
from lightnets.segment.losses import DEFAULT_LOSS, class_logits, make_loss, parse_loss
from lightnets.tasks.base import Normalize, Task, register_task
from lightnets.tasks.classification import hits_and_counts


BINARY_THRESHOLD = 0.5  # a binary segmenter's default: the more likely of the two classes


@dataclass
class SegEvalResult:
    """Fractions in [0, 1]; ``confusion[true][predicted]`` counts pixels; ``per_class_iou``
    is ``None`` for a class absent from both the labels and the predictions."""

    miou: float
    pixel_accuracy: float
    loss: float
    count: int                      # images
    classes: list[str] = field(default_factory=list)
    per_class_iou: list[float | None] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)
    # the first validation images (uint8, as loaded), their masks and the predicted masks
    examples: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(
        default_factory=list, repr=False)

    @property
    def primary(self) -> float:
        """The figure a run keeps its best checkpoint by."""
        return self.miou

    def row(self) -> dict[str, float]:
        """The validation columns of a training run's metrics table."""
        return {"val_loss": self.loss, "val_miou": self.miou,
                "val_pixel_acc": self.pixel_accuracy}

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "examples"}


def confusion_counts(predicted: torch.Tensor, labels: torch.Tensor, num_classes: int
                     ) -> torch.Tensor:
    """``num_classes**2`` counts of (true, predicted) over the labelled pixels."""
    valid = labels != IGNORE_INDEX
    return torch.bincount(labels[valid] * num_classes + predicted[valid],
                          minlength=num_classes * num_classes)


def scores(confusion: torch.Tensor) -> tuple[float, float, list[float | None]]:
    """``(miou, pixel_accuracy, per_class_iou)`` of a ``(C, C)`` confusion matrix."""
    confusion = confusion.double()
    hits = confusion.diagonal()
    union = confusion.sum(0) + confusion.sum(1) - hits
    present = union > 0
    iou = hits / union.clamp(min=1)
    miou = float(iou[present].mean()) if present.any() else 0.0
    accuracy = float(hits.sum() / confusion.sum().clamp(min=1))
    return miou, accuracy, [float(v) if p else None for v, p in zip(iou, present)]


def segmentation_loss(logits: torch.Tensor, aux_logits: list[torch.Tensor],
                      masks: torch.Tensor, aux_weight: float, label_smoothing: float = 0.0,
                      loss: str | None = None) -> torch.Tensor:
    """The ``loss`` (``--loss``; default per-pixel cross-entropy) over the labelled pixels, plus
    ``aux_weight`` times that of each auxiliary head (torchvision's recipe weighs its FCN head
    by 0.5)."""
    pixel_loss = make_loss(loss or DEFAULT_LOSS, IGNORE_INDEX, label_smoothing)
    total = pixel_loss(logits, masks)
    for aux in aux_logits:
        total = total + aux_weight * pixel_loss(aux, masks)
    return total


@torch.inference_mode()
def evaluate_segmenter(model: nn.Module | Callable[[torch.Tensor], torch.Tensor],
                       loader: DataLoader, num_classes: int, device: torch.device | str = "cpu",
                       amp_dtype: torch.dtype | None = None, channels_last: bool = False,
                       limit_batches: int | None = None,
                       reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       classes: list[str] | None = None,
                       normalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
                       examples: int = 0, threshold: float = 0.5) -> SegEvalResult:
    """Evaluate a segmenter (a module, switched to eval mode, or any callable from images to
    ``(N, C, H, W)`` logits, such as an exported file's backend) on a loader of ``(image,
    mask)`` batches; the arguments are those of
    :func:`lightnets.tasks.classification.evaluate_model`.
    Logits of another size than the masks are resized to them bilinearly; one channel (a binary
    segmenter) is the foreground where its sigmoid exceeds ``threshold``. The first
    ``examples`` images are kept with their masks and predictions (for a picture)."""
    if limit_batches is not None and limit_batches < 1:
        raise ValueError(f"limit_batches must be at least 1, got {limit_batches}")
    device = torch.device(device)
    if isinstance(model, nn.Module):
        model.eval()
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    images_seen = torch.zeros((), dtype=torch.int64, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext())
    kept: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []
    for batch, (images, masks) in enumerate(loader):
        if limit_batches is not None and batch >= limit_batches:
            break
        shown = images[:examples - len(kept)] if len(kept) < examples else None
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        if normalize is not None:
            images = normalize(images)
        masks = masks.to(device, non_blocking=True).long()
        with autocast:
            logits = model(images)
        logits = class_logits(logits.float(), threshold)
        if logits.shape[-2:] != masks.shape[-2:]:
            logits = F.interpolate(logits, size=masks.shape[-2:], mode="bilinear",
                                   align_corners=False)
        labelled = (masks != IGNORE_INDEX).sum()
        if labelled:  # a mean over the labelled pixels, summed as per-image means times images
            loss_sum += F.cross_entropy(logits, masks, ignore_index=IGNORE_INDEX).double() * len(
                masks)
        images_seen += len(masks)
        predicted = logits.argmax(1)
        confusion += confusion_counts(predicted, masks, num_classes)
        if shown is not None:
            kept += zip(shown, masks[:len(shown)].cpu(), predicted[:len(shown)].cpu())
    if reduce is not None:
        loss_sum, images_seen, confusion = (reduce(t) for t in (loss_sum, images_seen,
                                                                confusion))
    count = int(images_seen)
    if count == 0:
        raise ValueError("evaluation saw no images (empty validation split?)")
    confusion = confusion.view(num_classes, num_classes).cpu()
    miou, accuracy, per_class = scores(confusion)
    return SegEvalResult(miou=miou, pixel_accuracy=accuracy, loss=float(loss_sum) / count,
                         count=count,
                         classes=list(classes or [str(i) for i in range(num_classes)]),
                         per_class_iou=per_class, confusion=confusion.tolist(), examples=kept)


def save_examples_png(result: SegEvalResult, path: str | Path, title: str = "") -> Path:
    """The kept validation images beside their ground truth and predicted masks (VOC's
    palette), one row each."""
    from matplotlib.figure import Figure

    rows = result.examples
    if not rows:
        raise ValueError("the evaluation kept no example images (examples=0)")
    figure = Figure(figsize=(7.5, 2.5 * len(rows) + 0.5), layout="constrained")
    grid = figure.subplots(len(rows), 3, squeeze=False)
    for (image, truth, predicted), axes in zip(rows, grid):
        picture = image.permute(1, 2, 0).numpy()
        shown = picture[..., 0] if picture.shape[-1] == 1 else picture
        for axis, content, name in zip(axes, (shown, colourize(truth), colourize(predicted)),
                                       ("image", "ground truth", "prediction")):
            axis.imshow(content, cmap="gray" if content.ndim == 2 else None,
                        interpolation="nearest")
            axis.set_title(name, fontsize=9)
            axis.set_axis_off()
    figure.suptitle(title or f"mIoU {result.miou:.2%} on {result.count} images")
    return write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))


class Segmentation(Task):
    """Segmenters: images and their masks of class indices."""

    name, model_noun = SEGMENTATION, "segmenter"
    embedded_data = "digits-seg"
    expected_data = ("'digits-seg', a Pascal VOC folder (JPEGImages/, SegmentationClass/) or a "
                     "pair folder (images/, masks/)")
    not_this_data = "neither a VOC nor a pair folder"
    metric, metric_label = "miou", "mIoU"
    second_metric = ("val_pixel_acc", "pixel_accuracy", "pixel accuracy")
    reference_metric = ("miou", "mIoU")
    outputs = "per-pixel logits"
    val_columns = ("val_loss", "val_miou", "val_pixel_acc")
    curves = (("val_pixel_acc", "validation pixel accuracy", "o-"),
              ("val_miou", "validation mIoU", "s-"))
    curves_axis = ("%", "pixel accuracy and mIoU")
    picture_stem, picture_name = "segmentation", "the example predictions"
    dynamic_export_size = True
    chooses_loss = True
    binary_output = True

    def folder_kind(self, path: Path) -> str | None:
        return segmentation_folder_kind(path)

    def model_classes(self, data_classes: int, binary: bool = False) -> int:
        if not binary:
            return data_classes
        if data_classes != 2:
            raise ValueError(f"a binary segmenter (one output channel) needs data of 2 classes, "
                             f"the background and one foreground; got {data_classes}")
        return 1

    def model_args(self, config: Any) -> dict[str, Any]:
        # the threshold is recorded with the model (checkpoint, sidecar) for eval and predict
        return {"threshold": BINARY_THRESHOLD} if config.binary else {}

    def check_config(self, config: Any) -> None:
        if config.loss is not None:
            parse_loss(config.loss)  # a bad spec fails here, before any work
        super().check_config(config)

    def forward_loss(self, model: nn.Module, images: torch.Tensor, masks: torch.Tensor,
                     aux_weight: float, label_smoothing: float, loss: str | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, aux_logits = model(images, return_aux=True)
        return logits, segmentation_loss(logits, aux_logits, masks, aux_weight, label_smoothing,
                                         loss)

    def epoch_summary(self, row: dict[str, float]) -> str:
        return (f"val loss {row['val_loss']:.4f} mIoU {row['val_miou']:6.2%} pixel acc "
                f"{row['val_pixel_acc']:6.2%}")

    def hits_and_counts(self, outputs: torch.Tensor | None, masks: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        return hits_and_counts(outputs, masks, IGNORE_INDEX)

    def evaluate(self, model: nn.Module | Callable, loader: DataLoader, classes: list[str],
                 device: torch.device | str = "cpu", channels_last: bool = False,
                 limit_batches: int | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 distributed: bool = False, normalize: Normalize | None = None,
                 examples: int = 0) -> SegEvalResult:
        return evaluate_segmenter(model, loader, len(classes), device, None, channels_last,
                                  limit_batches, reduce, classes, normalize, examples,
                                  getattr(model, "threshold", BINARY_THRESHOLD))

    def save_picture(self, result: SegEvalResult, path: str | Path, title: str = "") -> Path:
        return save_examples_png(result, path, title)

    def headline(self, result: SegEvalResult) -> str:
        return f"mIoU {result.miou:.2%}"

    def summary(self, result: SegEvalResult, split: str) -> str:
        return (f"mIoU {result.miou:.2%}  pixel accuracy {result.pixel_accuracy:.2%}  "
                f"loss {result.loss:.4f}  on {result.count} {split} images")

    def table(self, result: SegEvalResult) -> tuple[str, list[str], list[list[str]]]:
        return ("per-class IoU", ["class", "pixels", "IoU"],
                [[name, f"{sum(row):,}", "-" if iou is None else f"{iou:.2%}"] for name, iou, row
                 in zip(result.classes, result.per_class_iou, result.confusion)])

    def summary_dict(self, result: SegEvalResult) -> dict[str, Any]:
        return {"miou": result.miou, "pixel_accuracy": result.pixel_accuracy,
                "loss": result.loss, "count": result.count,
                "per_class_iou": dict(zip(result.classes, result.per_class_iou))}


SEGMENTATION_TASK = register_task(Segmentation())
