"""Detection data: the embedded ``digits-det`` canvases, COCO-format, Pascal VOC and YOLO txt
folders.

:func:`detection_datasets` reads and checks every annotation before training starts and returns
datasets of ``(image, target)`` pairs (see :class:`DetectionDataset`): uint8 RGB images
letterboxed to ``size`` x ``size`` and targets with XYXY ``tv_tensors.BoundingBoxes`` in pixels
and labels 1..K, 0 being the background of torchvision's detectors. :func:`detection_collate`
batches them as lists. What the checks repaired (clipped or dropped boxes, skipped images) is
returned as ``notes`` and, by default, warned once (:class:`DetectionDataWarning`); what they
cannot repair is a one-line ``ValueError`` naming the file and the annotation.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from lightnets.data.detection.coco import coco_split_folders, read_coco
from lightnets.data.detection.digits_det import CANVAS_SIZE, digit_canvases
from lightnets.data.detection.records import (DetectionDataset, ImageRecord, Tally,
                                              detection_collate, letterbox, read_rgb, rgb_image,
                                              small_boxes)
from lightnets.data.detection.transforms import (detection_eval_transform,
                                                 detection_train_transform)
from lightnets.data.detection.voc import (is_voc, read_voc, voc_class_names, voc_records,
                                          voc_splits)
from lightnets.data.detection.yolo import read_yolo, yolo_yaml
from lightnets.data.digits import CLASS_NAMES as DIGIT_NAMES
from lightnets.data.folder import seeded_split

DETECTION_KINDS = ("digits-det", "coco", "voc", "yolo")


class DetectionDataWarning(UserWarning):
    """Annotations were repaired (boxes clipped or dropped) or images skipped."""


@dataclass
class DetectionData:
    """What a detection run needs to know about its data."""

    kind: str
    train: DetectionDataset
    val: DetectionDataset
    classes: list[str]                  # label i + 1 is classes[i]
    category_ids: list[int] | None      # COCO: the file's category id of label i + 1
    size: int
    notes: list[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        """Foreground classes K (torchvision's detectors take K + 1 with the background)."""
        return len(self.classes)


def detection_data_kind(data: str) -> str | None:
    """``digits-det``, ``coco`` or ``voc`` for a ``--data`` value; None when it names no
    detection data (a classification source, or nothing)."""
    if data == "digits-det":
        return "digits-det"
    root = Path(data).expanduser()
    if not root.is_dir():
        return None
    if coco_split_folders(root)[0] is not None:
        return "coco"
    if is_voc(root):
        return "voc"
    return "yolo" if yolo_yaml(root) is not None else None


def detection_requirements(data: str | None) -> list[tuple[str, str]]:
    """``(module, purpose)`` of the optional packages a detection run on ``data`` needs:
    pycocotools for its mAP, scikit-learn for the digit scans of ``digits-det``, PyYAML for a
    YOLO folder's data.yaml."""
    needs = [("pycocotools", "detection mAP")]
    if data is not None and detection_data_kind(data) == "yolo":
        needs.append(("yaml", "YOLO-format detection data"))
    return needs + ([("sklearn", "--data digits-det")] if data == "digits-det" else [])


def split_records(records: list[ImageRecord], val_fraction: float, seed: int, where: Path
                  ) -> tuple[list[ImageRecord], list[ImageRecord]]:
    """A seeded ``val_fraction`` of the images for validation, the rest for training."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    train, val = seeded_split([0] * len(records), val_fraction, seed)
    if not val or not train:
        raise ValueError(f"detection folder {str(where)!r} has {len(records)} readable "
                         "image(s), too few to hold out a validation split")
    return [records[i] for i in train], [records[i] for i in val]


def check_val_boxes(records: list[ImageRecord], where: str) -> None:
    """A one-line error when the validation images hold no box mAP can count (crowds and
    VOC's difficult objects are not counted), before a whole epoch trains for nothing."""
    if records and not any(int((r.iscrowd == 0).sum()) for r in records):
        raise ValueError(f"the validation split of {where} has no boxes: mAP needs ground truth; "
                         f"its {len(records)} image(s) hold no annotation (crowds and difficult "
                         "objects aside); annotate them or use another validation split")


def coco_data(root: Path, val_fraction: float, seed: int, tally: Tally
              ) -> tuple[list[ImageRecord], list[ImageRecord], list[str], list[int]]:
    """Train and val records, class names and category ids of a COCO folder."""
    train_dir, val_dir = coco_split_folders(root)
    if train_dir is None:
        raise ValueError(f"{str(root)!r} is no COCO folder: expected ROOT/annotations.json or "
                         "ROOT/train/annotations.json")
    train, categories = read_coco(train_dir, tally)
    if val_dir is None:
        train, val = split_records(train, val_fraction, seed, train_dir)
        check_val_boxes(val, f"{str(train_dir / 'annotations.json')!r} (a seeded "
                             f"{val_fraction:g} of its images)")
    else:
        val, val_categories = read_coco(val_dir, tally)
        if val_categories != categories:
            raise ValueError(f"{val_dir.name}/ and {train_dir.name}/ of {str(root)!r} have "
                             f"different categories ({val_categories} vs {categories}); both "
                             "need the same ids and names")
        check_val_boxes(val, repr(str(val_dir / "annotations.json")))
    return train, val, [name for _, name in categories], [i for i, _ in categories]


def voc_data(root: Path, val_fraction: float, seed: int, tally: Tally
             ) -> tuple[list[ImageRecord], list[ImageRecord], list[str], None]:
    """Train and val records and class names of a VOC folder."""
    train_ids, val_ids = voc_splits(root)
    train = read_voc(root, train_ids, tally)
    val = read_voc(root, val_ids, tally) if val_ids is not None else []
    classes = voc_class_names(train + val)
    if val_ids is None:
        records = voc_records(train, classes, tally)
        train_records, val_records = split_records(records, val_fraction, seed, root)
        check_val_boxes(val_records, f"{str(root)!r} (a seeded {val_fraction:g} of its images)")
    else:
        train_records = voc_records(train, classes, tally)
        val_records = voc_records(val, classes, tally)
        check_val_boxes(val_records, repr(str(root / "ImageSets" / "Main" / "val.txt")))
    return train_records, val_records, classes, None


def yolo_data(root: Path, val_fraction: float, seed: int, tally: Tally
              ) -> tuple[list[ImageRecord], list[ImageRecord], list[str], None]:
    """Train and val records and class names of a YOLO txt folder."""
    train, val, classes = read_yolo(root, tally)
    if val is None:
        train, val = split_records(train, val_fraction, seed, root)
        check_val_boxes(val, f"{str(root)!r} (a seeded {val_fraction:g} of its images)")
    else:
        check_val_boxes(val, f"{str(root)!r} (its val split)")
    return train, val, classes, None


def detection_datasets(data: str, size: int, augment: bool = True, val_fraction: float = 0.2,
                       seed: int = 0, warn: bool = True, mosaic: float = 0.0,
                       zoom_crop: bool = False, colour_jitter: bool = True) -> DetectionData:
    """Checked training and validation datasets for ``data`` (``digits-det``, a COCO, VOC or
    YOLO folder), letterboxed to ``size``; training augments when ``augment`` (with ``mosaic``
    the fraction of its images that are mosaics of four, with ``zoom_crop`` SSD's zoom-out and
    IoU crop, with ``colour_jitter`` the data's photometric jitter:
    :mod:`lightnets.data.detection.transforms`). ``val_fraction``
    and ``seed`` split folders that have no validation split."""
    if not isinstance(size, int) or size < 16:
        raise ValueError(f"detection size must be an integer of at least 16 pixels, got {size!r}")
    kind = detection_data_kind(data)
    if kind is None:
        raise ValueError(f"--data {data!r} is no detection data: expected 'digits-det', a COCO "
                         "folder (annotations.json + images/, or train/ and val/ of them), a "
                         "VOC folder (Annotations/ + JPEGImages/) or a YOLO folder (data.yaml, "
                         "images/, labels/)")
    tally = Tally(size=size)
    train_tf = detection_train_transform(kind, augment, zoom_crop, size, colour_jitter)
    val_tf = detection_eval_transform()
    if kind == "digits-det":
        train_canvases, val_canvases = digit_canvases()
        train = DetectionDataset(train_canvases.records, train_canvases, size, train_tf,
                                 list(DIGIT_NAMES), mosaic if augment else 0.0)
        val = DetectionDataset(val_canvases.records, val_canvases, size, val_tf,
                               list(DIGIT_NAMES))
        classes, category_ids = list(DIGIT_NAMES), None
    else:
        root = Path(data).expanduser()
        read = {"coco": coco_data, "voc": voc_data, "yolo": yolo_data}[kind]
        train_records, val_records, classes, category_ids = read(root, val_fraction, seed, tally)
        if not val_records:
            raise ValueError(f"the validation split of {str(root)!r} holds no readable image")
        if not train_records:
            raise ValueError(f"the training split of {str(root)!r} holds no readable image")
        train = DetectionDataset(train_records, read_rgb, size, train_tf, classes,
                                 mosaic if augment else 0.0)
        val = DetectionDataset(val_records, read_rgb, size, val_tf, classes)
    tally.small = sum(small_boxes(r, size) for r in train.records + val.records)
    notes = tally.notes()
    if notes and warn:
        warnings.warn(f"{data}: " + " | ".join(notes), DetectionDataWarning, stacklevel=2)
    return DetectionData(kind, train, val, classes, category_ids, size, notes)


__all__ = ["CANVAS_SIZE", "DETECTION_KINDS", "DetectionData", "DetectionDataWarning",
           "DetectionDataset", "ImageRecord", "detection_collate", "detection_data_kind",
           "detection_datasets", "detection_requirements", "letterbox", "rgb_image"]
