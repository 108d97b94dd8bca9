"""Datasets and transforms for training and evaluation.

``--data`` names the source, of a kind the model's task reads (:mod:`lightnets.tasks` picks the
kind). For classifiers: ``digits`` (scikit-learn's bundled 8x8 scans, the default), a folder
holding CIFAR-10/100 python pickles, or an image folder. For segmenters: ``digits-seg``
(canvases composed from the same scans, with per-pixel labels), a Pascal VOC folder or an
images/masks pair folder (:mod:`lightnets.data.seg_folders`). For detectors: ``digits-det``,
a COCO or a Pascal VOC folder (:mod:`lightnets.data.detection`). :func:`build_data` returns the
train and validation datasets of a kind, the class names and the evaluation preprocessing that
checkpoints store so eval and predict reproduce it.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lightnets.data.cifar import cifar_datasets, find_cifar
from lightnets.data.digits import CLASS_NAMES as DIGITS_CLASSES
from lightnets.data.digits import digits_datasets
from lightnets.data.digits_seg import CLASS_NAMES as DIGITS_SEG_CLASSES
from lightnets.data.detection import DETECTION_KINDS, detection_data_kind, detection_datasets
from lightnets.data.digits_seg import digits_seg_datasets
from lightnets.data.folder import TRAIN_NAMES, VAL_NAMES, folder_datasets, folder_images
from lightnets.data.seg_folders import IGNORE_INDEX, is_pairs, is_voc, seg_folder_datasets
from lightnets.constants import IMAGENET_MEAN, IMAGENET_STD
from lightnets.data.transforms import (CIFAR_MEAN, CIFAR_STD, DIGITS_MEAN, DIGITS_STD,
                                       eval_transform,
                                       make_preprocess, normalize_transform,
                                       seg_eval_transform, seg_train_transform, train_transform)

# the kinds of data each task reads (lightnets.tasks picks among its own kinds); the first of
# each group is the embedded one, built from scikit-learn's bundled digit scans
CLASSIFICATION_KINDS = ("digits", "cifar", "folder")
SEGMENTATION_KINDS = ("digits-seg", "seg-folder")
DATA_KINDS = CLASSIFICATION_KINDS + SEGMENTATION_KINDS + DETECTION_KINDS
EMBEDDED_KINDS = (CLASSIFICATION_KINDS[0], SEGMENTATION_KINDS[0], DETECTION_KINDS[0])


class UnreadableImagesWarning(UserWarning):
    """Some image files could not be decoded and were left out."""


@dataclass
class DataBundle:
    """What a training run needs to know about its data."""

    kind: str
    train: Dataset
    val: Dataset
    classes: list[str]
    preprocess: dict[str, Any]
    skipped: list[str] = field(default_factory=list)
    category_ids: list[int] | None = None  # COCO data: the file's id of each class

    @property
    def num_classes(self) -> int:
        return len(self.classes)


def other_task_folder(path: Path) -> tuple[str, str] | None:
    """``(what path is, the model that reads it)`` in words when ``path`` holds segmentation or
    detection data (which a classifier would read as class folders named ``images``,
    ``masks``, ...), else None."""
    kind = detection_data_kind(str(path))
    if kind == "coco":
        return "a COCO detection folder (annotations.json, images/)", "detector"
    if kind == "voc":
        return "a Pascal VOC detection folder (Annotations/, JPEGImages/)", "detector"
    if is_voc(path):
        return "a Pascal VOC segmentation folder (JPEGImages/, SegmentationClass/)", "segmenter"
    splits = [path / name for name in (*TRAIN_NAMES, *VAL_NAMES)]
    if any((root / "images").is_dir() and (root / "masks").is_dir() for root in (path, *splits)):
        return "a segmentation folder (images/, masks/)", "segmenter"
    return None


def classification_kind(data: str) -> str:
    """``digits``, ``cifar`` (a folder holding CIFAR-10/100 pickles) or ``folder`` (images);
    a one-line error for a segmentation or detection folder."""
    if data == "digits":
        return data
    path = Path(data).expanduser()
    if find_cifar(path):
        return "cifar"
    other = other_task_folder(path) if path.is_dir() else None
    if other:
        what, noun = other
        raise ValueError(f"--data {data} is {what}: a classifier needs a folder of class "
                         "folders (one folder of images per class), 'digits' or a CIFAR-10/100 "
                         f"folder; train a {noun} on it")
    return "folder"


def segmentation_folder_kind(path: Path) -> str | None:
    """``seg-folder`` for a Pascal VOC or an images/masks pair folder, else None."""
    return "seg-folder" if is_voc(path) or is_pairs(path) else None


def data_requirements(data: str | None) -> list[tuple[str, str]]:
    """``(package, purpose)`` for the optional packages reading ``data`` needs."""
    needs = [("sklearn", f"--data {data}")] if data in EMBEDDED_KINDS else []
    if data and detection_data_kind(data):
        needs += [("pycocotools", "detection mAP")]
    return needs


def default_preprocess(kind: str, input_size: int, in_chans: int,
                       pretrained: dict[str, Any] | None = None) -> dict[str, Any]:
    """The evaluation preprocessing for a data kind: digits are resized to the input size
    whole; CIFAR is resized to it; photographs are resized to size/0.875 and centre-cropped.
    Fine-tuning from weights whose preprocessing is ``pretrained``: their normalisation and
    interpolation, and for photographs their ratio of resize to crop."""
    if in_chans not in (1, 3):
        raise ValueError(f"in_chans must be 1 or 3 for image data, got {in_chans}")
    if input_size < 8:
        raise ValueError(f"input_size must be at least 8, got {input_size}")
    if kind == "digits":
        resize, mean, std = [input_size, input_size], DIGITS_MEAN, DIGITS_STD
    elif kind in SEGMENTATION_KINDS:  # the whole image, its mask with it
        resize, mean, std = [input_size, input_size], IMAGENET_MEAN, IMAGENET_STD
    elif kind in DETECTION_KINDS:  # letterboxed: the longer side to the input size
        return {**make_preprocess(input_size, 3, input_size, IMAGENET_MEAN, IMAGENET_STD),
                "letterbox": True}
    elif kind == "cifar":
        resize, mean, std = input_size, CIFAR_MEAN, CIFAR_STD
    else:
        resize, mean, std = round(input_size / 0.875), IMAGENET_MEAN, IMAGENET_STD
    if pretrained is None:
        return make_preprocess(input_size, in_chans, resize, mean, std)
    if kind == "folder":  # classification: photographs keep the weights' crop ratio
        crop = pretrained["resize"]
        ratio = (crop if isinstance(crop, int) else crop[0]) / pretrained["input_size"]
        resize = round(input_size * ratio)
    return make_preprocess(input_size, in_chans, resize, pretrained["mean"], pretrained["std"],
                           pretrained.get("interpolation", "bilinear"))


def build_data(data: str, preprocess: dict[str, Any], augment: bool = True,
               val_fraction: float = 0.2, seed: int = 0, warn: bool = True,
               normalize: bool = True, kind: str | None = None,
               auto_augment: str | None = None, random_erase: float = 0.0,
               mosaic: float = 0.0, zoom_crop: bool = False,
               colour_jitter: bool = True) -> DataBundle:
    """Train and validation datasets for ``data`` with the given evaluation ``preprocess``
    (see :func:`default_preprocess`); training adds light augmentation when ``augment``.
    Unreadable image files are skipped with one warning naming them (``warn=False``: silent,
    still listed in ``skipped``). ``normalize=False``: the images come before their last step,
    :func:`normalize_transform`, which the caller applies to each batch. ``kind`` is one of
    :data:`DATA_KINDS`, as the model's task identified it (:meth:`lightnets.tasks.Task.data_kind`;
    default: classification data). Segmentation data yields ``(image, mask)`` pairs, masks uint8
    class indices with :data:`IGNORE_INDEX` for pixels without a label; detection data
    ``(image, target)`` pairs. ``auto_augment`` and ``random_erase`` add a policy and random
    erasing to a classifier's training images
    (:func:`lightnets.data.transforms.train_transform`); ``mosaic`` makes that fraction of a
    detector's training images mosaics of four (:mod:`lightnets.data.detection.mosaic`) and
    ``zoom_crop`` adds SSD's zoom-out and IoU crop to them; ``colour_jitter=False`` leaves out
    their photometric jitter."""
    kind = kind or classification_kind(data)
    if kind in DETECTION_KINDS:  # its own letterboxing and box-aware augmentation
        found = detection_datasets(data, preprocess["input_size"], augment, val_fraction, seed,
                                   warn, mosaic, zoom_crop, colour_jitter)
        return DataBundle(kind, found.train, found.val, found.classes, preprocess,
                          list(found.notes), found.category_ids)
    if kind in SEGMENTATION_KINDS:
        train_tf = seg_train_transform(preprocess, kind, augment, normalize)
        val_tf = seg_eval_transform(preprocess, normalize)
    else:
        train_tf = train_transform(preprocess, kind, augment, normalize, auto_augment,
                                   random_erase)
        val_tf = eval_transform(preprocess, normalize)
    skipped: list[str] = []
    if kind == "digits-seg":
        train, val = digits_seg_datasets(train_tf, val_tf)
        classes = list(DIGITS_SEG_CLASSES)
    elif kind == "seg-folder":
        train, val, classes, skipped = seg_folder_datasets(data, train_tf, val_tf, val_fraction,
                                                           seed)
    elif kind == "digits":
        train, val = digits_datasets(train_tf, val_tf)
        classes = list(DIGITS_CLASSES)
    elif kind == "cifar":
        train, val, classes = cifar_datasets(data, train_tf, val_tf)
    else:
        train, val, classes, skipped = folder_datasets(data, train_tf, val_tf, val_fraction, seed)
    if skipped and warn:
        warn_skipped(skipped)
    return DataBundle(kind, train, val, classes, preprocess, skipped)


def warn_skipped(skipped: list[str]) -> None:
    """One warning counting and naming (the first ten) unreadable image files."""
    shown = ", ".join(skipped[:10]) + (f" and {len(skipped) - 10} more" if len(skipped) > 10
                                       else "")
    warnings.warn(f"skipped {len(skipped)} unreadable image file(s): {shown}",
                  UnreadableImagesWarning, stacklevel=3)


def unsplit_images(data: str, preprocess: dict[str, Any], kind: str | None = None) -> Dataset:
    """The images of ``data`` with the evaluation ``preprocess``, for what needs images but no
    validation split (int8 calibration): the training split of digits, CIFAR, segmentation
    and detection data, else every readable image of the folder
    (:func:`lightnets.data.folder.folder_images`)."""
    kind = kind or classification_kind(data)
    if kind not in CLASSIFICATION_KINDS:  # image-mask and image-boxes pairs: images first
        return build_data(data, preprocess, augment=False, kind=kind).train
    transform = eval_transform(preprocess)
    if kind == "digits":
        return digits_datasets(transform, transform)[0]
    if kind == "cifar":
        return cifar_datasets(data, transform, transform)[0]
    images, skipped = folder_images(data, transform)
    if skipped:
        warn_skipped(skipped)
    return images


def default_workers(kind: str) -> int:
    """DataLoader processes: none for the in-memory digits, else up to 4 (one core left free)."""
    return 0 if kind in EMBEDDED_KINDS else min(4, max(1, (os.cpu_count() or 2) - 1))


def make_loader(dataset: Dataset, batch_size: int, device: torch.device, workers: int = 0,
                shuffle: bool = False, sampler: Sampler | None = None,
                drop_last: bool = False, collate: Callable[[list], Any] | None = None,
                generator: torch.Generator | None = None) -> DataLoader:
    """A DataLoader with the usual settings for ``device`` (pinned memory for CUDA), batches
    made by ``collate`` (the task's: detection batches are lists); ``generator`` as the
    DataLoader's (the seeds of its processes)."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle and sampler is None,
                      sampler=sampler, num_workers=workers, drop_last=drop_last,
                      pin_memory=device.type == "cuda", persistent_workers=workers > 0,
                      collate_fn=collate, generator=generator)


__all__ = ["CLASSIFICATION_KINDS", "DATA_KINDS", "DETECTION_KINDS", "EMBEDDED_KINDS",
           "IGNORE_INDEX", "SEGMENTATION_KINDS", "DataBundle", "UnreadableImagesWarning",
           "build_data", "classification_kind", "data_requirements",
           "segmentation_folder_kind",
           "default_preprocess", "default_workers", "eval_transform", "make_loader",
           "normalize_transform", "train_transform", "unsplit_images"]
