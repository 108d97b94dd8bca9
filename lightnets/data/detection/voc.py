"""Pascal VOC detection folders (Everingham et al. 2010, "The PASCAL Visual Object Classes
Challenge"): ``ROOT/JPEGImages/`` with ``ROOT/Annotations/<id>.xml`` (one ``<object>`` per box:
``<name>``, ``<difficult>``, ``<bndbox>`` with ``xmin ymin xmax ymax``) and, optionally,
``ROOT/ImageSets/Main/train.txt`` and ``val.txt`` listing the image ids of each split. Without
both lists, the ids of ``trainval.txt`` (or ``train.txt``, else every XML file) are split by a
seeded fraction.

VOC's corners are 1-based pixel indices with both ends inside the box; they become continuous
XYXY pixels as in Detectron2's reader: ``[xmin - 1, ymin - 1, xmax, ymax]``. Classes: the 20 VOC
classes in their usual order when every name found is one of them, else the names found,
sorted. ``difficult`` objects are kept with ``iscrowd`` 1, so mAP ignores them as VOC's own
evaluation does. A file listed but missing, invalid XML, a missing or non-numeric field, or
``xmax < xmin`` are errors naming the file and the object; other box repairs are counted as for
COCO (:func:`lightnets.data.detection.records.checked_box`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from torchvision.datasets.folder import IMG_EXTENSIONS

from lightnets.data.detection.records import (ImageRecord, Tally, checked_box, image_size,
                                              make_record)
from lightnets.data.folder import readable_image

VOC_CLASSES = ("aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
               "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
               "sheep", "sofa", "train", "tvmonitor")


@dataclass
class VocObject:
    name: str
    corners: tuple[float, float, float, float]   # xmin, ymin, xmax, ymax as written
    difficult: int
    where: str


def is_voc(root: Path) -> bool:
    """Whether ``root`` holds ``Annotations/`` and ``JPEGImages/``."""
    return (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir()


def read_ids(path: Path) -> list[str]:
    """The image ids of an ImageSets list, one per line (first word)."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    return [line.split()[0] for line in lines if line.strip()]


def voc_splits(root: Path) -> tuple[list[str], list[str] | None]:
    """``(train_ids, val_ids)`` from ImageSets/Main, or ``(all_ids, None)`` to be split."""
    lists = root / "ImageSets" / "Main"
    if (lists / "train.txt").is_file() and (lists / "val.txt").is_file():
        return read_ids(lists / "train.txt"), read_ids(lists / "val.txt")
    for name in ("trainval.txt", "train.txt"):
        if (lists / name).is_file():
            return read_ids(lists / name), None
    return sorted(p.stem for p in (root / "Annotations").glob("*.xml")), None


def text(element: ElementTree.Element, path: str, where: str) -> str:
    """The stripped text at ``path`` below ``element``, or an error naming it."""
    found = element.find(path)
    if found is None or not (found.text or "").strip():
        raise ValueError(f"{where}: missing <{path}>")
    return found.text.strip()


def number(element: ElementTree.Element, path: str, where: str) -> float:
    value = text(element, path, where)
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"{where}: <{path}> is {value!r}, expected a number") from None


def parse_voc_xml(path: Path) -> tuple[str | None, tuple[int, int] | None, list[VocObject]]:
    """``(filename, (height, width) or None, objects)`` of one annotation file."""
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as error:
        raise ValueError(f"{path}: not valid XML ({error})") from None
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    filename = (root.findtext("filename") or "").strip() or None
    size = None
    if root.find("size") is not None and root.findtext("size/width"):
        size = (int(number(root, "size/height", str(path))),
                int(number(root, "size/width", str(path))))
    objects = []
    for index, element in enumerate(root.findall("object")):
        where = f"{path}: object {index}"
        name = text(element, "name", where)
        corners = tuple(number(element, f"bndbox/{key}", where)
                        for key in ("xmin", "ymin", "xmax", "ymax"))
        if corners[2] < corners[0] or corners[3] < corners[1]:
            raise ValueError(f"{where} ({name}): xmax < xmin or ymax < ymin in {corners}; "
                             "expected xmin <= xmax and ymin <= ymax")
        difficult = int(number(element, "difficult", where)) if element.findtext(
            "difficult") else 0
        objects.append(VocObject(name, corners, int(bool(difficult)), f"{where} ({name})"))
    return filename, size, objects


def voc_image(root: Path, image_id: str, filename: str | None) -> Path:
    """The image file of ``image_id``: the XML's ``<filename>`` in JPEGImages/, else
    ``<id>.<ext>`` for any image extension."""
    folder = root / "JPEGImages"
    candidates = ([folder / filename] if filename else []) + [folder / f"{image_id}{ext}"
                                                              for ext in IMG_EXTENSIONS]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise ValueError(f"{root / 'Annotations' / (image_id + '.xml')}: image file "
                     f"{folder / (filename or image_id + '.jpg')} is missing")


def read_voc(root: Path, ids: list[str], tally: Tally
             ) -> list[tuple[str, Path, tuple[int, int], list[VocObject]]]:
    """``(id, image file, (height, width), objects)`` of each readable image of ``ids``."""
    images = []
    for image_id in ids:
        xml = root / "Annotations" / f"{image_id}.xml"
        if not xml.is_file():
            raise ValueError(f"VOC folder {str(root)!r}: image id {image_id!r} is listed but "
                             f"{xml} is missing")
        filename, stated, objects = parse_voc_xml(xml)
        file = voc_image(root, image_id, filename)
        size = image_size(str(file))
        if size is None or not readable_image(str(file)):
            tally.unreadable.append(str(file))
            continue
        if stated is not None and stated != (0, 0) and stated != size:
            raise ValueError(f"{xml}: <size> says {stated[1]}x{stated[0]} but {file} is "
                             f"{size[1]}x{size[0]}")
        images.append((image_id, file, size, objects))
    return images


def voc_class_names(images: list[tuple[str, Path, tuple[int, int], list[VocObject]]]
                    ) -> list[str]:
    """The 20 VOC classes when every name found is one of them, else the names found."""
    found = {obj.name for *_, objects in images for obj in objects}
    if not found:
        raise ValueError("the VOC annotations hold no object; detection needs at least one class")
    return list(VOC_CLASSES) if found <= set(VOC_CLASSES) else sorted(found)


def voc_records(images: list[tuple[str, Path, tuple[int, int], list[VocObject]]],
                classes: list[str], tally: Tally) -> list[ImageRecord]:
    """Checked records, image ids numbering ``images`` in order from 0."""
    label_of = {name: label for label, name in enumerate(classes, 1)}
    records = []
    for image_id, (_, file, (height, width), objects) in enumerate(images):
        boxes, labels, crowd = [], [], []
        for obj in objects:
            xmin, ymin, xmax, ymax = obj.corners
            box = checked_box(xmin - 1, ymin - 1, xmax, ymax, height, width, obj.where, tally)
            if box is not None:
                boxes.append(box)
                labels.append(label_of[obj.name])
                crowd.append(obj.difficult)
        records.append(make_record(image_id, (height, width), boxes, labels, crowd, str(file)))
    return records
