"""Tiny COCO and VOC folders for the detection tests: each box is a filled rectangle of its
class's colour on a grey image, so a test can see that pixels and boxes stay together."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

COLORS = {"cat": (255, 0, 0), "dog": (0, 255, 0), "person": (0, 0, 255), "car": (255, 255, 0)}


def draw(path: Path, width: int, height: int, boxes: list[tuple[str, list[float]]]) -> None:
    """An image of ``width`` x ``height`` with each XYXY box filled in its class's colour."""
    pixels = np.full((height, width, 3), 90, dtype=np.uint8)
    for name, (x1, y1, x2, y2) in boxes:
        color = COLORS.get(name, (200, 200, 200))
        pixels[max(0, int(y1)):int(y2), max(0, int(x1)):int(x2)] = color
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(pixels).save(path, quality=95)


def coco_images(count: int, seed: int = 0) -> list[dict]:
    """``count`` images of 32x24 or 24x32, with zero to two boxes ``[x, y, w, h]`` each."""
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        width, height = (32, 24) if index % 2 == 0 else (24, 32)
        boxes = []
        for number in range(index % 3):
            x, y = int(rng.integers(0, 4)) + 12 * number, int(rng.integers(0, 6))
            boxes.append((["cat", "dog"][(index + number) % 2], [x, y, 8, 10]))
        images.append({"file": f"img{index}.png", "width": width, "height": height,
                       "boxes": boxes})
    return images


def write_coco(folder: Path, images: list[dict], categories: dict[int, str] | None = None,
               with_images: bool = True) -> dict:
    """``folder/annotations.json`` and ``folder/images/``; returns the JSON written."""
    categories = categories or {7: "dog", 3: "cat"}
    ids = {name: category_id for category_id, name in categories.items()}
    data = {"images": [], "annotations": [],
            "categories": [{"id": i, "name": n} for i, n in categories.items()]}
    for image_id, image in enumerate(images, start=100):
        data["images"].append({"id": image_id, "file_name": image["file"],
                               "width": image["width"], "height": image["height"]})
        for name, bbox in image["boxes"]:
            data["annotations"].append({"id": len(data["annotations"]) + 1,
                                        "image_id": image_id, "category_id": ids[name],
                                        "bbox": bbox, "area": bbox[2] * bbox[3],
                                        "iscrowd": 0})
        if with_images:
            draw(folder / "images" / image["file"], image["width"], image["height"],
                 [(n, [x, y, x + w, y + h]) for n, (x, y, w, h) in image["boxes"]])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "annotations.json").write_text(json.dumps(data))
    return data


def voc_xml(filename: str, width: int, height: int,
            objects: list[tuple[str, list[float], int]]) -> str:
    """A VOC annotation: objects are ``(name, [xmin, ymin, xmax, ymax] 1-based, difficult)``."""
    parts = [f"<annotation><filename>{filename}</filename><size><width>{width}</width>"
             f"<height>{height}</height><depth>3</depth></size>"]
    for name, (xmin, ymin, xmax, ymax), difficult in objects:
        parts.append(f"<object><name>{name}</name><difficult>{difficult}</difficult><bndbox>"
                     f"<xmin>{xmin}</xmin><ymin>{ymin}</ymin><xmax>{xmax}</xmax>"
                     f"<ymax>{ymax}</ymax></bndbox></object>")
    return "".join(parts) + "</annotation>"


def write_voc(root: Path, count: int = 6, names: tuple[str, ...] = ("cat", "dog", "person"),
              splits: bool = True) -> list[list[tuple[str, list[float], int]]]:
    """``count`` JPEGs with their XML files (and ImageSets/Main train/val lists when
    ``splits``: the last third validates); returns each image's objects."""
    (root / "Annotations").mkdir(parents=True)
    every = []
    for index in range(count):
        image_id = f"2007_{index:06d}"
        objects = [(names[index % len(names)], [3 + index, 5, 12 + index, 16], index % 4 == 3)]
        if index % 2:
            objects.append((names[(index + 1) % len(names)], [20, 2, 30, 20], 0))
        objects = [(n, b, int(d)) for n, b, d in objects]
        draw(root / "JPEGImages" / f"{image_id}.jpg", 32, 24,
             [(n, [b[0] - 1, b[1] - 1, b[2], b[3]]) for n, b, _ in objects])
        (root / "Annotations" / f"{image_id}.xml").write_text(
            voc_xml(f"{image_id}.jpg", 32, 24, objects))
        every.append(objects)
    if splits:
        lists = root / "ImageSets" / "Main"
        lists.mkdir(parents=True)
        ids = [f"2007_{i:06d}" for i in range(count)]
        cut = count - count // 3
        (lists / "train.txt").write_text("\n".join(ids[:cut]) + "\n")
        (lists / "val.txt").write_text("\n".join(ids[cut:]) + "\n")
    return every
