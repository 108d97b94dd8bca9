"""YOLO txt detection folders, the format labelling tools export (Ultralytics' documented
dataset layout): ``ROOT/data.yaml`` naming the splits and classes, images under ``images/``
and, for each image, a text file of the same stem under ``labels/`` (the last ``images``
folder of its path replaced by ``labels``), one object per line::

    # data.yaml
    train: images/train          # a folder of images, relative to ROOT (or to ``path:``)
    val: images/val              # optional: without it, a seeded fraction of train
    names: [cat, dog]            # or {0: cat, 1: dog}

    # labels/train/0001.txt: class cx cy w h, the centre and size normalised to 0-1
    0 0.51 0.42 0.20 0.33

Class ``c`` becomes label ``c + 1`` (0 is the detectors' background). An image without a label
file, or with an empty one, is a background image, kept. Errors naming the file and line,
before training: a line without exactly five numbers, a class that is not an integer or is
beyond the names, a coordinate outside 0-1, a label file without its image; a missing
``data.yaml`` key or split folder. Boxes reaching past the border are clipped and zero-size ones
dropped, counted as for COCO and VOC (:func:`lightnets.data.detection.records.checked_box`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torchvision.datasets.folder import IMG_EXTENSIONS

from lightnets.data.detection.records import (ImageRecord, Tally, checked_box, image_size,
                                              make_record)
from lightnets.data.folder import readable_image
from lightnets.optional import require

YAML_NAMES = ("data.yaml", "data.yml")


def yolo_yaml(root: Path) -> Path | None:
    """``ROOT/data.yaml`` (or ``data.yml``) when there is one."""
    return next((root / name for name in YAML_NAMES if (root / name).is_file()), None)


def read_yaml(path: Path) -> dict[str, Any]:
    """The YAML mapping of ``path``, or an error naming it."""
    yaml = require("yaml", "YOLO-format detection data")
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"cannot read {path}: {str(error).splitlines()[0]}") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path}: expected a mapping with train, val and names")
    return content


def class_names(names: Any, path: Path) -> list[str]:
    """The ``names`` of data.yaml as a list: a list, or a mapping from 0..K-1."""
    if isinstance(names, dict):
        if sorted(names) != list(range(len(names))):
            raise ValueError(f"{path}: names must map the class ids 0..{len(names) - 1}, got "
                             f"keys {sorted(names, key=str)}")
        names = [names[index] for index in range(len(names))]
    if not isinstance(names, list) or not names:
        raise ValueError(f"{path}: names must be a non-empty list (or id: name mapping) of the "
                         "classes")
    return [str(name) for name in names]


def split_folder(config: dict[str, Any], key: str, base: Path, path: Path) -> Path:
    """The image folder of split ``key``, which must exist."""
    value = config.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{path}: {key!r} must name a folder of images (e.g. images/{key})")
    folder = (base / value).expanduser()
    if not folder.is_dir():
        raise ValueError(f"{path}: the {key} folder {folder} does not exist")
    return folder


def label_folder(images: Path) -> Path:
    """The labels folder of an images folder: its last ``images`` part replaced by
    ``labels``."""
    parts = list(images.parts)
    if "images" not in parts:
        raise ValueError(f"the image folder {images} has no 'images' part, so its labels "
                         "folder cannot be found (expected .../images/... beside .../labels/...)")
    index = len(parts) - 1 - parts[::-1].index("images")
    parts[index] = "labels"
    return Path(*parts)


def parse_labels(path: Path, classes: int) -> list[tuple[int, list[float], str]]:
    """``(class, [cx, cy, w, h], where)`` of each line of a label file, checked."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    found = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        fields = line.split()
        if len(fields) != 5:
            raise ValueError(f"{where}: {len(fields)} values; expected 5 (class cx cy w h)")
        try:
            values = [float(value) for value in fields]
        except ValueError:
            raise ValueError(f"{where}: {line.strip()!r} is not five numbers") from None
        label = values[0]
        if label != int(label) or not 0 <= label < classes:
            raise ValueError(f"{where}: class {fields[0]} is not one of the {classes} classes "
                             f"of data.yaml (0..{classes - 1})")
        if not all(0.0 <= value <= 1.0 for value in values[1:]):
            raise ValueError(f"{where}: cx cy w h {fields[1:]} must be normalised to 0-1")
        found.append((int(label), values[1:], where))
    return found


def yolo_split(images: Path, classes: int, tally: Tally, first_id: int) -> list[ImageRecord]:
    """Records of every readable image under ``images`` (image ids from ``first_id``)."""
    labels = label_folder(images)
    files = sorted(p for p in images.rglob("*") if p.suffix.lower() in IMG_EXTENSIONS)
    stems = {file.relative_to(images).with_suffix("") for file in files}
    if labels.is_dir():
        orphan = next((txt for txt in sorted(labels.rglob("*.txt"))
                       if txt.relative_to(labels).with_suffix("") not in stems), None)
        if orphan is not None:
            raise ValueError(f"label file {orphan} has no image in {images}")
    records = []
    for file in files:
        size = image_size(str(file))
        if size is None or not readable_image(str(file)):
            tally.unreadable.append(str(file))
            continue
        height, width = size
        txt = labels / file.relative_to(images).with_suffix(".txt")
        objects = parse_labels(txt, classes) if txt.is_file() else []  # none: background
        boxes, kept = [], []
        for label, (cx, cy, w, h), where in objects:
            box = checked_box((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                              (cy + h / 2) * height, height, width, where, tally)
            if box is not None:
                boxes.append(box)
                kept.append(label + 1)
        records.append(make_record(first_id + len(records), size, boxes, kept, [0] * len(kept),
                                   str(file)))
    if not records:
        raise ValueError(f"the image folder {images} holds no readable image")
    return records


def read_yolo(root: Path, tally: Tally
              ) -> tuple[list[ImageRecord], list[ImageRecord] | None, list[str]]:
    """``(train records, val records or None to split, class names)`` of a YOLO folder."""
    path = yolo_yaml(root)
    if path is None:
        raise ValueError(f"{root} has no data.yaml")
    config = read_yaml(path)
    classes = class_names(config.get("names"), path)
    base = root / config["path"] if isinstance(config.get("path"), str) else root
    train = yolo_split(split_folder(config, "train", base, path), len(classes), tally, 0)
    if config.get("val") is None:
        return train, None, classes
    val = yolo_split(split_folder(config, "val", base, path), len(classes), tally, len(train))
    return train, val, classes
