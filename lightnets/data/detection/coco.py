"""COCO-format detection folders (Lin et al. 2014, "Microsoft COCO"): instance annotations in
one ``annotations.json`` with ``images`` (``id``, ``file_name``, optionally ``width`` and
``height``), ``annotations`` (``image_id``, ``category_id``, ``bbox`` as ``[x, y, w, h]`` in
pixels, optionally ``iscrowd``) and ``categories`` (``id``, ``name``).

Layouts: ``ROOT/annotations.json`` with the images in ``ROOT/images/`` (or beside the JSON when
there is no ``images/``), split by a seeded fraction of the images; or split folders
``ROOT/train/`` and ``ROOT/val/`` (``valid/``, ``validation/``), each laid out the same way; a
lone ``ROOT/train/`` is split by the fraction. Category ids map to contiguous labels 1..K in
sorted id order, the names from ``categories``; both splits must have the same categories.

Checks, all before training: invalid JSON, a missing key, an unknown image or category id, a
malformed or negative-size ``bbox``, a box wholly outside its image, a missing image file or an
image whose ``width``/``height`` disagree with its file are errors naming the file and the
annotation. Boxes reaching past the border are clipped, zero-size boxes dropped and undecodable
image files skipped, all counted (:class:`lightnets.data.detection.records.Tally`). Crowd
annotations are kept with ``iscrowd`` 1: mAP ignores them, as COCO's evaluation does.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from lightnets.data.detection.records import (ImageRecord, Tally, checked_box, image_size,
                                              make_record)
from lightnets.data.folder import VAL_NAMES, readable_image

ANNOTATIONS, IMAGES = "annotations.json", "images"


def coco_split_folders(root: Path) -> tuple[Path | None, Path | None]:
    """``(train, val)`` folders holding an ``annotations.json``: ``(root, None)`` for one set,
    ``(train, None)`` for a lone ``train/``, ``(None, None)`` when ``root`` is no COCO folder."""
    if (root / ANNOTATIONS).is_file():
        return root, None
    train = root / "train"
    if not (train / ANNOTATIONS).is_file():
        return None, None
    vals = [root / name for name in VAL_NAMES if (root / name / ANNOTATIONS).is_file()]
    if len(vals) > 1:
        raise ValueError(f"COCO folder {str(root)!r} has two validation folders "
                         f"({', '.join(p.name + '/' for p in vals)}); keep one")
    return train, (vals[0] if vals else None)


def load_json(path: Path) -> dict[str, Any]:
    """The COCO object in ``path``, with its three lists, or a one-line error."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error.msg} at line {error.lineno} column "
                         f"{error.colno})") from None
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a COCO object with 'images', 'annotations' and "
                         f"'categories' lists, got a JSON {type(data).__name__}")
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise ValueError(f"{path}: expected a list under {key!r} (COCO instances format)")
    return data


def entry_field(entry: Any, key: str, kind: type | tuple[type, ...], where: str) -> Any:
    """``entry[key]`` checked to be of ``kind``."""
    value = entry.get(key) if isinstance(entry, dict) else None
    if not isinstance(value, kind) or isinstance(value, bool):
        name = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise ValueError(f"{where}: expected {key!r} to be a {name}, got {value!r}")
    return value


def coco_categories(data: dict[str, Any], path: Path) -> list[tuple[int, str]]:
    """``(id, name)`` of every category, sorted by id."""
    categories: dict[int, str] = {}
    for index, entry in enumerate(data["categories"]):
        where = f"{path}: category {index}"
        category_id = entry_field(entry, "id", int, where)
        if category_id in categories:
            raise ValueError(f"{path}: category id {category_id} appears twice")
        categories[category_id] = str(entry_field(entry, "name", str, where))
    if not categories:
        raise ValueError(f"{path}: 'categories' is empty; detection needs at least one class")
    return sorted(categories.items())


def coco_bbox(annotation: dict[str, Any], where: str) -> list[float]:
    """The annotation's ``[x, y, w, h]``: four finite numbers, width and height not negative."""
    bbox = annotation.get("bbox")
    if (not isinstance(bbox, list) or len(bbox) != 4
            or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in bbox)
            or not all(math.isfinite(v) for v in bbox)):
        raise ValueError(f"{where}: expected 'bbox' to be [x, y, w, h] of four finite numbers, "
                         f"got {bbox!r}")
    if bbox[2] < 0 or bbox[3] < 0:
        raise ValueError(f"{where}: bbox {bbox} has a negative width or height; expected "
                         "[x, y, w, h] with w, h >= 0")
    return [float(v) for v in bbox]


def read_coco(folder: Path, tally: Tally
              ) -> tuple[list[ImageRecord], list[tuple[int, str]]]:
    """The checked records of ``folder/annotations.json`` and its sorted categories."""
    path = folder / ANNOTATIONS
    data = load_json(path)
    categories = coco_categories(data, path)
    label_of = {category_id: label for label, (category_id, _) in enumerate(categories, 1)}
    image_dir = folder / IMAGES if (folder / IMAGES).is_dir() else folder
    images: dict[int, dict[str, Any]] = {}
    for index, entry in enumerate(data["images"]):
        where = f"{path}: image {index}"
        image_id = entry_field(entry, "id", int, where)
        if image_id in images:
            raise ValueError(f"{path}: image id {image_id} appears twice")
        for key in ("width", "height"):  # else "said to be 128x128 but is 128x128" later
            value = entry.get(key)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)
                                      and not (isinstance(value, float) and value.is_integer())):
                raise ValueError(f"{where}: expected {key!r} to be an integer number of pixels, "
                                 f"got the {type(value).__name__} {value!r}")
        images[image_id] = {"file": entry_field(entry, "file_name", str, where), "boxes": [],
                            "labels": [], "iscrowd": [], "entry": entry}
    annotations = []
    for index, annotation in enumerate(data["annotations"]):
        name = annotation.get("id", index) if isinstance(annotation, dict) else index
        where = f"{path}: annotation {name}"
        image_id = entry_field(annotation, "image_id", int, where)
        if image_id not in images:
            raise ValueError(f"{where}: image_id {image_id} is not among the file's images")
        category_id = entry_field(annotation, "category_id", int, where)
        if category_id not in label_of:
            raise ValueError(f"{where}: category_id {category_id} is not among the categories "
                             f"({', '.join(str(c) for c, _ in categories)})")
        annotations.append((where, image_id, category_id, coco_bbox(annotation, where),
                            int(bool(annotation.get("iscrowd", 0)))))
    records, sizes = [], {}
    for image_id, image in images.items():
        file = image_dir / image["file"]
        if not file.is_file():
            raise ValueError(f"{path}: image id {image_id}: file {file} is missing")
        size = image_size(str(file))
        if size is None or not readable_image(str(file)):
            tally.unreadable.append(str(file))
            continue
        stated = image["entry"].get("height"), image["entry"].get("width")
        if None not in stated and tuple(int(v) for v in stated) != size:
            raise ValueError(f"{path}: image id {image_id} is said to be {stated[1]}x{stated[0]} "
                             f"but {file} is {size[1]}x{size[0]}")
        sizes[image_id] = size
    for where, image_id, category_id, (x, y, w, h), crowd in annotations:
        if image_id not in sizes:  # its image was unreadable
            continue
        where = f"{where} (image {images[image_id]['file']})"
        box = checked_box(x, y, x + w, y + h, *sizes[image_id], where, tally)
        if box is not None:
            images[image_id]["boxes"].append(box)
            images[image_id]["labels"].append(label_of[category_id])
            images[image_id]["iscrowd"].append(crowd)
    for image_id, image in images.items():
        if image_id in sizes:
            records.append(make_record(image_id, sizes[image_id], image["boxes"],
                                       image["labels"], image["iscrowd"],
                                       str(image_dir / image["file"])))
    return records, categories
