"""Mosaic augmentation (Bochkovskiy, Wang and Liao, "YOLOv4: Optimal Speed and Accuracy of Object
Detection", 2020, arXiv:2004.10934): four training images tiled two by two, and a window of one
image's size cut from the tiling around a random centre. Each training image then shows parts of
four scenes at their own scale, objects in new contexts and cut by its edges (the paper credits it
with that richer context and with less need for large batches).

Objects cut by the window keep a box clipped to it when at least :data:`MIN_VISIBLE` of their
area stays inside (a smaller sliver of a digit is not that digit any more); the others are
dropped with their labels. The window's centre is drawn in the middle half of the tiling (each
side: ``size / 2`` to ``3 size / 2``), so every one of the four images can show.
"""

from __future__ import annotations

from typing import Any

import torch
from torchvision import tv_tensors

MIN_VISIBLE = 0.3  # of a box's area, for it to stay labelled in the window


def mosaic(samples: list[tuple[torch.Tensor, dict[str, Any]]], size: int,
           centre: tuple[int, int]) -> tuple[tv_tensors.Image, dict[str, Any]]:
    """One ``size`` x ``size`` image of four letterboxed ``(image, target)`` samples (uint8
    ``(3, size, size)`` images, XYXY pixel boxes): tiled two by two, then the window centred at
    ``centre = (x, y)`` of the ``2 size`` x ``2 size`` tiling. The target keeps the first
    sample's ``image_id`` and ``scale``."""
    if len(samples) != 4:
        raise ValueError(f"a mosaic takes 4 samples, got {len(samples)}")
    x, y = centre
    if not (size // 2 <= x <= 3 * size // 2 and size // 2 <= y <= 3 * size // 2):
        raise ValueError(f"mosaic centre {centre} outside [{size // 2}, {3 * size // 2}]")
    canvas = torch.empty((samples[0][0].shape[0], 2 * size, 2 * size), dtype=torch.uint8)
    boxes, labels, crowd = [], [], []
    for index, (image, target) in enumerate(samples):
        top, left = size * (index // 2), size * (index % 2)
        canvas[:, top:top + size, left:left + size] = image
        boxes.append(target["boxes"].as_subclass(torch.Tensor)
                     + torch.tensor([left, top, left, top], dtype=torch.float32))
        labels.append(target["labels"])
        crowd.append(target["iscrowd"])
    left, top = x - size // 2, y - size // 2
    window = torch.tensor([left, top, left, top], dtype=torch.float32)
    full = torch.cat(boxes) - window
    clipped = full.clamp(0, size)
    area = (full[:, 2:] - full[:, :2]).prod(dim=1)
    visible = (clipped[:, 2:] - clipped[:, :2]).clamp(min=0).prod(dim=1)
    keep = visible >= MIN_VISIBLE * area.clamp(min=1e-6)
    first = samples[0][1]
    target = {**first, "boxes": tv_tensors.BoundingBoxes(clipped[keep], format="XYXY",
                                                         canvas_size=(size, size)),
              "labels": torch.cat(labels)[keep], "iscrowd": torch.cat(crowd)[keep]}
    return tv_tensors.Image(canvas[:, top:top + size, left:left + size].clone()), target
