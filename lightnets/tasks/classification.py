"""Classification: one label per image. Its data (digits, CIFAR, image folders), loss
(cross-entropy, with auxiliary heads), metric (top-1, with top-5, per-class accuracy and the
confusion matrix) and picture (the confusion matrix)."""

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
from torchvision.transforms import v2

from lightnets.data import classification_kind
from lightnets.data.transforms import batch_mix
from lightnets.files import write_atomic
from lightnets.registry import CLASSIFICATION
from lightnets.tasks.base import Normalize, Task, register_task


def classification_loss(logits: torch.Tensor, aux_logits: list[torch.Tensor],
                        labels: torch.Tensor, aux_weight: float,
                        label_smoothing: float) -> torch.Tensor:
    """Cross-entropy of the logits plus ``aux_weight`` times that of each auxiliary head.
    ``labels`` are class indices ``(N,)`` or, after MixUp or CutMix, class probabilities
    ``(N, C)``; PyTorch's cross-entropy takes either, and smooths probabilities the same way
    (``(1 - e) * p + e / C``), so label smoothing composes with the mixing."""
    loss = F.cross_entropy(logits.float(), labels, label_smoothing=label_smoothing)
    for aux in aux_logits:
        loss = loss + aux_weight * F.cross_entropy(aux.float(), labels,
                                                   label_smoothing=label_smoothing)
    return loss


def hits_and_counts(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int | None = None
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Right arg-max predictions and predictions made, float64 on the logits' device: one per
    image for labels ``(N,)``, one per labelled pixel (not ``ignore_index``) for masks."""
    predicted = logits.detach().argmax(1)
    if ignore_index is None:
        return ((predicted == labels).sum().double(),
                torch.tensor(len(labels), dtype=torch.float64, device=labels.device))
    labelled = labels != ignore_index
    return ((predicted == labels) & labelled).sum().double(), labelled.sum().double()


@dataclass
class EvalResult:
    """Accuracies are fractions in [0, 1]; ``confusion[true][predicted]`` counts images."""

    top1: float
    top5: float
    loss: float
    count: int
    classes: list[str] = field(default_factory=list)
    per_class: list[float] = field(default_factory=list)
    confusion: list[list[int]] = field(default_factory=list)

    @property
    def primary(self) -> float:
        """The figure a run keeps its best checkpoint by."""
        return self.top1

    def row(self) -> dict[str, float]:
        """The validation columns of a training run's metrics table."""
        return {"val_loss": self.loss, "val_top1": self.top1, "val_top5": self.top5}

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@torch.inference_mode()
def evaluate_model(model: nn.Module | Callable[[torch.Tensor], torch.Tensor], loader: DataLoader,
                   num_classes: int, device: torch.device | str = "cpu",
                   amp_dtype: torch.dtype | None = None, channels_last: bool = False,
                   limit_batches: int | None = None,
                   reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                   classes: list[str] | None = None,
                   normalize: Callable[[torch.Tensor], torch.Tensor] | None = None
                   ) -> EvalResult:
    """Evaluate ``model`` (a module, switched to eval mode, or any callable from images to
    logits, such as an exported file's backend) on ``loader``. ``reduce`` sums the tallies
    over processes when each holds a shard of the data; ``normalize`` finishes the
    preprocessing of each batch on the device, when the loader stops before it."""
    if limit_batches is not None and limit_batches < 1:
        raise ValueError(f"limit_batches must be at least 1, got {limit_batches}")
    device = torch.device(device)
    if isinstance(model, nn.Module):
        model.eval()
    k = min(5, num_classes)
    loss_sum = torch.zeros((), dtype=torch.float64, device=device)
    top1 = torch.zeros((), dtype=torch.int64, device=device)
    topk = torch.zeros((), dtype=torch.int64, device=device)
    confusion = torch.zeros(num_classes * num_classes, dtype=torch.int64, device=device)
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    autocast = (torch.autocast(device.type, dtype=amp_dtype) if amp_dtype else nullcontext())
    for batch, (images, labels) in enumerate(loader):
        if limit_batches is not None and batch >= limit_batches:
            break
        images = images.to(device, non_blocking=True, memory_format=memory_format)
        if normalize is not None:
            images = normalize(images)
        labels = labels.to(device, non_blocking=True)
        with autocast:
            logits = model(images)
        logits = logits.float()
        loss_sum += F.cross_entropy(logits, labels, reduction="sum").double()
        best = logits.topk(k, dim=1).indices
        top1 += (best[:, 0] == labels).sum()
        topk += (best == labels[:, None]).any(dim=1).sum()
        confusion += torch.bincount(labels * num_classes + best[:, 0],
                                    minlength=num_classes * num_classes)
    if reduce is not None:
        loss_sum, top1, topk, confusion = (reduce(t) for t in (loss_sum, top1, topk, confusion))
    confusion = confusion.view(num_classes, num_classes).cpu()
    count = int(confusion.sum())
    if count == 0:
        raise ValueError("evaluation saw no images (empty validation split?)")
    per_class = confusion.diagonal().double() / confusion.sum(dim=1).clamp(min=1)
    return EvalResult(top1=int(top1) / count, top5=int(topk) / count,
                      loss=float(loss_sum) / count, count=count,
                      classes=list(classes or [str(i) for i in range(num_classes)]),
                      per_class=per_class.tolist(), confusion=confusion.tolist())


def save_confusion_png(result: EvalResult, path: str | Path, title: str = "") -> Path:
    """A heat map of the confusion matrix, rows normalised, with counts written in the cells
    when there are at most 20 classes."""
    from matplotlib.figure import Figure

    confusion = torch.tensor(result.confusion, dtype=torch.float64)
    n = len(confusion)
    rates = confusion / confusion.sum(dim=1, keepdim=True).clamp(min=1)
    side = min(4 + 0.45 * n, 24)
    figure = Figure(figsize=(side, side * 0.9), layout="constrained")
    axes = figure.add_subplot()
    shown = axes.imshow(rates.numpy(), cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(shown, ax=axes, shrink=0.8, label="fraction of the true class")
    if n <= 40:
        names = result.classes if len(result.classes) == n else [str(i) for i in range(n)]
        axes.set_xticks(range(n), names, rotation=90 if n > 10 else 0)
        axes.set_yticks(range(n), names)
    if n <= 20:
        for row in range(n):
            for column in range(n):
                if confusion[row, column]:
                    axes.text(column, row, f"{int(confusion[row, column])}", ha="center",
                              va="center", fontsize=8,
                              color="white" if rates[row, column] > 0.5 else "black")
    axes.set_xlabel("predicted")
    axes.set_ylabel("true")
    axes.set_title(title or f"top-1 {result.top1:.2%} on {result.count} images")
    return write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=100))


class Classification(Task):
    """Classifiers: images and their labels."""

    name, model_noun = CLASSIFICATION, "classifier"
    embedded_data = "digits"
    expected_data = "'digits', an image folder or a CIFAR-10/100 folder"
    metric, metric_label = "top1", "top-1"
    second_metric = ("val_top5", "top5", "top-5")
    reference_metric = ("top1", "top-1")
    val_columns = ("val_loss", "val_top1", "val_top5")
    curves = (("val_top1", "validation top-1", "o-"),)
    curves_axis = ("accuracy (%)", "accuracy")
    picture_stem, picture_name, picture_label = "confusion", "the confusion matrix", "confusion"
    picture_caption = "confusion matrix"
    draws_examples = False
    distills = prunable = calibrates = image_recipe = quantization_aware = True

    def folder_kind(self, path: Path) -> str | None:
        return classification_kind(str(path))

    def forward_loss(self, model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     aux_weight: float, label_smoothing: float, loss: str | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        logits, aux_logits = model(images, return_aux=True)
        return logits, classification_loss(logits, aux_logits, labels, aux_weight,
                                           label_smoothing)

    def batch_mix(self, config: Any, num_classes: int) -> v2.Transform | None:
        return batch_mix(config.mixup, config.cutmix, num_classes)

    def epoch_summary(self, row: dict[str, float]) -> str:
        return (f"val loss {row['val_loss']:.4f} top1 {row['val_top1']:6.2%} top5 "
                f"{row['val_top5']:6.2%}")

    def hits_and_counts(self, outputs: torch.Tensor | None, labels: torch.Tensor
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """Soft labels ``(N, C)`` (MixUp, CutMix) count as their most probable class: the
        image holding the larger share of the blend, so the training accuracy under mixing
        reads "predicted the dominant image's class"."""
        if labels.dim() == 2:
            labels = labels.argmax(1)
        return hits_and_counts(outputs, labels)

    def evaluate(self, model: nn.Module | Callable, loader: DataLoader, classes: list[str],
                 device: torch.device | str = "cpu", channels_last: bool = False,
                 limit_batches: int | None = None,
                 reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
                 distributed: bool = False, normalize: Normalize | None = None,
                 examples: int = 0) -> EvalResult:
        return evaluate_model(model, loader, len(classes), device, None, channels_last,
                              limit_batches, reduce, classes, normalize)

    def save_picture(self, result: EvalResult, path: str | Path, title: str = "") -> Path:
        return save_confusion_png(result, path, title)

    def headline(self, result: EvalResult) -> str:
        return f"top-1 {result.top1:.2%}"

    def summary(self, result: EvalResult, split: str) -> str:
        return (f"top-1 {result.top1:.2%}  top-5 {result.top5:.2%}  loss {result.loss:.4f}  "
                f"on {result.count} {split} images")

    def table(self, result: EvalResult) -> tuple[str, list[str], list[list[str]]] | None:
        if len(result.classes) > 100:
            return None
        return ("per-class accuracy", ["class", "images", "accuracy"],
                [[name, str(sum(row)), f"{accuracy:.2%}"] for name, accuracy, row
                 in zip(result.classes, result.per_class, result.confusion)])

    def summary_dict(self, result: EvalResult) -> dict[str, Any]:
        return {"top1": result.top1, "top5": result.top5, "loss": result.loss,
                "count": result.count, "per_class": dict(zip(result.classes, result.per_class))}

    def gate_score(self, run: Callable, dataset: Any, classes: list[str],
                   model: nn.Module | None = None) -> float:
        return top1(run, dataset)


@torch.no_grad()
def top1(run: Callable[[torch.Tensor], torch.Tensor], dataset: Any, batch_size: int = 64
         ) -> float:
    """Top-1 accuracy of ``run`` on an (image, label) dataset."""
    loader = DataLoader(dataset, batch_size=batch_size)
    correct = total = 0
    for images, labels in loader:
        correct += int((run(images).argmax(1) == labels).sum())
        total += len(labels)
    if total == 0:
        raise ValueError("the validation set is empty")
    return correct / total


CLASSIFICATION_TASK = register_task(Classification())
