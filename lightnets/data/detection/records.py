"""What every detection source is read into: one :class:`ImageRecord` per image (its boxes
checked once, when the dataset is built), and the dataset that turns records into the
``(image, target)`` pairs torchvision's detectors take.

Boxes are checked the same way for every source (:func:`checked_box`): a box with a negative
size or one lying wholly outside its image is an error naming the file and the annotation; a box
reaching past the image's border is clipped to it and a box of zero width or height is dropped,
both counted in a :class:`Tally` that the dataset builder reports before training starts.

Every image is letterboxed to the training size (:func:`letterbox`): its longer side scaled to
``size``, the rest padded at the right and bottom, so a batch is uniform, the aspect ratio kept
and the boxes map back to the original pixels by one scale per axis (``target["scale"]``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.transforms.v2 import functional as F

from lightnets.data.images import to_mode
from lightnets.data.detection.mosaic import mosaic

# Boxes narrower, lower or smaller in area than this (in pixels at the training size) are
# dropped, by the build-time count and by SanitizeBoundingBoxes alike.
MIN_BOX_SIZE = 1.0


@dataclass
class ImageRecord:
    """One image and its checked boxes, in the image's own pixels."""

    image_id: int
    size: tuple[int, int]        # (height, width) of the source image
    boxes: torch.Tensor          # (N, 4) float32 XYXY, inside the image, positive size
    labels: torch.Tensor         # (N,) int64 in 1..K (0 is the detectors' background)
    iscrowd: torch.Tensor        # (N,) int64: 1 for COCO crowds and VOC "difficult" objects
    file: str = ""               # the image file ("" for rendered canvases)


@dataclass
class Tally:
    """Boxes clipped or dropped and images skipped while reading annotations, by where."""

    clipped: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    small: int = 0
    size: int = 0

    def notes(self) -> list[str]:
        """One line per kind of repair, counting them and naming the first few."""
        lines = []
        for items, what in ((self.clipped, "box(es) reaching past the image border clipped"),
                            (self.empty, "box(es) of zero width or height dropped"),
                            (self.unreadable, "unreadable image file(s) skipped")):
            if items:
                shown = "; ".join(items[:5]) + (f"; and {len(items) - 5} more"
                                                if len(items) > 5 else "")
                lines.append(f"{len(items)} {what}: {shown}")
        if self.small:
            lines.append(f"{self.small} box(es) under {MIN_BOX_SIZE:g} px once images are "
                         f"resized to {self.size}x{self.size} dropped")
        return lines


# a box past the border by less than this (pixels) is rounding, clipped without a word: labelling
# tools write YOLO's normalised coordinates with 6 decimals, up to 0.005 px off on a 10,000 px side
ROUNDING = 0.01


def checked_box(x1: float, y1: float, x2: float, y2: float, height: int, width: int,
                where: str, tally: Tally) -> list[float] | None:
    """The XYXY box clipped to a ``width`` x ``height`` image, or None for a zero-size box
    (counted); ``where`` names the annotation in errors. The caller has refused negative sizes
    in its own format's terms."""
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise ValueError(f"{where}: box {[x1, y1, x2, y2]} has a non-finite coordinate")
    if x2 <= x1 or y2 <= y1:
        tally.empty.append(where)
        return None
    if x1 >= width or y1 >= height or x2 <= 0 or y2 <= 0:
        raise ValueError(f"{where}: box [{x1:g}, {y1:g}, {x2:g}, {y2:g}] (XYXY) lies wholly "
                         f"outside its {width}x{height} image")
    clipped = [max(x1, 0.0), max(y1, 0.0), min(x2, float(width)), min(y2, float(height))]
    if max(abs(a - b) for a, b in zip(clipped, [x1, y1, x2, y2])) > ROUNDING:
        tally.clipped.append(where)
    return clipped


def make_record(image_id: int, size: tuple[int, int], boxes: Sequence[list[float]],
                labels: Sequence[int], iscrowd: Sequence[int], file: str = "") -> ImageRecord:
    """An :class:`ImageRecord` from plain lists (possibly empty)."""
    return ImageRecord(image_id, (int(size[0]), int(size[1])),
                       torch.tensor(list(boxes), dtype=torch.float32).reshape(-1, 4),
                       torch.tensor(list(labels), dtype=torch.int64),
                       torch.tensor(list(iscrowd), dtype=torch.int64), file)


def image_size(path: str) -> tuple[int, int] | None:
    """``(height, width)`` from an image file's header, or None when PIL cannot open it."""
    try:
        with Image.open(path) as image:
            width, height = image.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None
    return height, width


def letterbox_size(height: int, width: int, size: int) -> tuple[int, int]:
    """``(height, width)`` of an image scaled so its longer side is ``size``."""
    scale = size / max(height, width)
    return min(size, max(1, round(height * scale))), min(size, max(1, round(width * scale)))


def letterbox(image: torch.Tensor, boxes: tv_tensors.BoundingBoxes | None, size: int
              ) -> tuple[torch.Tensor, tv_tensors.BoundingBoxes | None, tuple[float, float]]:
    """``(image, boxes, (scale_x, scale_y))``: the longer side scaled to ``size``, the image
    padded with black at the right and bottom to ``size`` x ``size``. A box in the result
    divided by the scales is the box in the original image (no offset: padding is after it)."""
    height, width = image.shape[-2:]
    new_height, new_width = letterbox_size(height, width, size)
    if (new_height, new_width) != (height, width):
        image = F.resize(image, [new_height, new_width], antialias=True)
        boxes = F.resize(boxes, [new_height, new_width]) if boxes is not None else None
    padding = [0, 0, size - new_width, size - new_height]
    if any(padding):
        image = F.pad(image, padding, fill=0)
        boxes = F.pad(boxes, padding) if boxes is not None else None
    return image, boxes, (new_width / width, new_height / height)


def small_boxes(record: ImageRecord, size: int) -> int:
    """How many of ``record``'s boxes fall under :data:`MIN_BOX_SIZE` once letterboxed."""
    new_height, new_width = letterbox_size(*record.size, size)
    sides = (record.boxes[:, 2:] - record.boxes[:, :2]) * torch.tensor(
        [new_width / record.size[1], new_height / record.size[0]])
    small = (sides < MIN_BOX_SIZE).any(dim=1) | (sides.prod(dim=1) < MIN_BOX_SIZE)
    return int(small.sum())


def rgb_image(path: str | Path) -> torch.Tensor:
    """An image file decoded to a uint8 ``(3, H, W)`` RGB tensor (PIL reads every format)."""
    with Image.open(path) as image:
        return F.pil_to_tensor(to_mode(image, "RGB"))


def read_rgb(record: ImageRecord) -> torch.Tensor:
    """The record's image file as :func:`rgb_image`, or an error naming it."""
    try:
        return rgb_image(record.file)
    except (OSError, ValueError, SyntaxError) as error:
        raise ValueError(f"cannot read image {record.file} (image id {record.image_id}): "
                         f"{error}") from None


def check_labels(records: list[ImageRecord], num_classes: int) -> None:
    """A one-line error naming the first image with a label outside 1..``num_classes`` (found
    here, before training, rather than as torchvision's IndexError in the loss)."""
    for record in records:
        labels = record.labels
        if labels.numel() and (int(labels.min()) < 1 or int(labels.max()) > num_classes):
            bad = int(labels.max()) if int(labels.max()) > num_classes else int(labels.min())
            where = record.file or f"image_id {record.image_id}"
            raise ValueError(f"{where} has label {bad}; labels must be 1..{num_classes} "
                             f"(the dataset's {num_classes} classes)")


class DetectionDataset(Dataset):
    """``(image, target)`` pairs: ``image`` a uint8 ``tv_tensors.Image`` of ``(3, size, size)``,
    ``target`` a dict of ``boxes`` (``tv_tensors.BoundingBoxes``, XYXY float32 pixels),
    ``labels`` (int64, 1..K), ``iscrowd`` (int64, 1 = ignored by mAP), ``image_id`` (int) and
    ``scale`` (float32 ``[scale_x, scale_y]`` from the original image to the letterboxed one).
    With ``mosaic`` > 0 (training), that fraction of the pairs are mosaics of the image and three
    others drawn at random (:mod:`lightnets.data.detection.mosaic`), before ``transform``."""

    def __init__(self, records: list[ImageRecord], read_image: Callable[[ImageRecord], Any],
                 size: int, transform: Callable | None, classes: list[str],
                 mosaic: float = 0.0) -> None:
        if not 0.0 <= mosaic <= 1.0:
            raise ValueError(f"mosaic is a probability in [0, 1], got {mosaic}")
        self.records, self.read_image, self.size = records, read_image, size
        self.transform, self.classes, self.mosaic = transform, classes, mosaic
        check_labels(records, len(classes))

    def __len__(self) -> int:
        return len(self.records)

    def letterboxed(self, index: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        """The pair at ``index`` letterboxed to ``size``, before any augmentation."""
        record = self.records[index]
        image = tv_tensors.Image(self.read_image(record))
        boxes = tv_tensors.BoundingBoxes(record.boxes.clone(), format="XYXY",
                                         canvas_size=record.size)
        image, boxes, scale = letterbox(image, boxes, self.size)
        return image, {"boxes": boxes, "labels": record.labels.clone(),
                       "iscrowd": record.iscrowd.clone(), "image_id": record.image_id,
                       "scale": torch.tensor(scale, dtype=torch.float32)}

    def __getitem__(self, index: int) -> tuple[tv_tensors.Image, dict[str, Any]]:
        image, target = self.letterboxed(index)
        if self.mosaic and float(torch.rand(())) < self.mosaic:
            others = torch.randint(len(self), (3,)).tolist()
            centre = torch.randint(self.size // 2, 3 * self.size // 2 + 1, (2,)).tolist()
            image, target = mosaic([(image, target), *map(self.letterboxed, others)],
                                   self.size, (centre[0], centre[1]))
        if self.transform is not None:
            image, target = self.transform(image, target)
        return image, target


def detection_collate(batch: list[tuple[torch.Tensor, dict[str, Any]]]
                      ) -> tuple[list[torch.Tensor], list[dict[str, Any]]]:
    """``(images, targets)`` as lists, the form torchvision's detectors take."""
    return [image for image, _ in batch], [target for _, target in batch]
