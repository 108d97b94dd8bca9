"""``digits-seg``: an embedded semantic-segmentation set composed from scikit-learn's real digit
scans, so segmentation trains and tests without a download.

Each canvas is an RGB image with one to three digits pasted at random positions and scales on a
noisy dark background, each in its own bright colour. A pixel is labelled with its digit's class
(1-10 for the digits 0-9) where the upscaled scan's ink covers at least half of it, else 0
(background); the ink blends into the background through its antialiased edge, as photographed
objects do. Canvases come from a fixed seed, and the training and validation canvases are drawn
from the disjoint training and validation scans of :func:`lightnets.data.digits.digits_split`,
so no validation digit was ever seen in training.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from torchvision import tv_tensors

from lightnets.data.digits import CLASS_NAMES as DIGIT_NAMES
from lightnets.data.digits import digits_split

CLASS_NAMES = ["background", *DIGIT_NAMES]
CANVAS = 64                     # side of a canvas, pixels
TRAIN_CANVASES, VAL_CANVASES = 4000, 500
DIGIT_SIDES = (36, 60)          # a pasted digit's side, pixels (the 8x8 scan upscaled)
MAX_DIGITS = 2
INK = 0.5                       # the coverage that makes a pixel the digit's


class SegmentationTensors(Dataset):
    """Images ``(N, C, H, W)`` uint8 and masks ``(N, H, W)`` uint8 in memory; each item is an
    ``(Image, Mask)`` pair of tv_tensors through the joint ``transform``."""

    def __init__(self, images: torch.Tensor, masks: torch.Tensor,
                 transform: Callable | None = None, classes: list[str] | None = None) -> None:
        self.images, self.masks, self.transform = images, masks, transform
        self.classes = classes or [str(i) for i in range(int(masks.max()) + 1)]

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        pair = tv_tensors.Image(self.images[index]), tv_tensors.Mask(self.masks[index])
        return self.transform(*pair) if self.transform else pair


def compose_canvases(scans: torch.Tensor, labels: torch.Tensor, count: int, seed: int,
                     side: int = CANVAS) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` canvases ``(count, 3, side, side)`` uint8 and their masks ``(count, side,
    side)`` uint8 from ``scans`` ``(N, 1, 8, 8)`` in [0, 1] with digit ``labels``."""
    rng = np.random.default_rng(seed)
    images = np.empty((count, 3, side, side), np.uint8)
    masks = np.zeros((count, side, side), np.uint8)
    lo, hi = (max(8, round(s * side / CANVAS)) for s in DIGIT_SIDES)
    for n in range(count):
        background = rng.uniform(0, 90, 3)[:, None, None]
        canvas = background + rng.normal(0, 6, (3, side, side))
        taken = np.zeros((side, side), bool)
        for _ in range(rng.integers(1, MAX_DIGITS + 1)):
            size = int(rng.integers(lo, hi + 1))
            for _attempt in range(20):  # a free place, or leave the digit out
                y, x = rng.integers(0, side - size + 1, 2)
                if not taken[y:y + size, x:x + size].any():
                    break
            else:
                continue
            pick = int(rng.integers(len(scans)))
            ink = F.interpolate(scans[pick][None], size=(size, size), mode="bicubic",
                                align_corners=False).clamp(0, 1)[0, 0].numpy()
            colour = rng.uniform(150, 255, 3)[:, None, None]
            window = canvas[:, y:y + size, x:x + size]
            canvas[:, y:y + size, x:x + size] = window * (1 - ink) + colour * ink
            masks[n, y:y + size, x:x + size][ink >= INK] = int(labels[pick]) + 1
            taken[y:y + size, x:x + size] = True
        images[n] = np.clip(canvas, 0, 255).round().astype(np.uint8)
    return torch.from_numpy(images), torch.from_numpy(masks)


def digits_seg_datasets(train_transform: Callable | None, val_transform: Callable | None,
                        seed: int = 0) -> tuple[SegmentationTensors, SegmentationTensors]:
    """The fixed ``digits-seg`` training and validation sets with the given joint transforms
    (the canvases depend on ``seed``; the default 0 is the published set)."""
    train, val = canvases(seed)
    return (SegmentationTensors(*train, train_transform, CLASS_NAMES),
            SegmentationTensors(*val, val_transform, CLASS_NAMES))


@functools.lru_cache(maxsize=2)
def canvases(seed: int) -> tuple[tuple[torch.Tensor, torch.Tensor], tuple[torch.Tensor, ...]]:
    """The training and validation canvases and masks, composed once per process (a few
    seconds; the datasets never write to them)."""
    (train_x, train_y), (val_x, val_y) = digits_split()
    return (compose_canvases(train_x, train_y, TRAIN_CANVASES, seed),
            compose_canvases(val_x, val_y, VAL_CANVASES, seed + 1))


def write_pair_folder(root: str | Path, train_count: int, val_count: int, seed: int = 0) -> Path:
    """The first ``train_count`` training and ``val_count`` validation canvases as a pair
    folder (``root/{train,val}/{images,masks}/<i>.png``): a small real-format segmentation set
    to try the folder path, or to time a run on tiny data."""
    from PIL import Image

    root = Path(root)
    (train_x, train_y), (val_x, val_y) = canvases(seed)
    for split, images, masks, count in (("train", train_x, train_y, train_count),
                                        ("val", val_x, val_y, val_count)):
        for sub in ("images", "masks"):
            (root / split / sub).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            Image.fromarray(images[i].permute(1, 2, 0).numpy()).save(
                root / split / "images" / f"{i}.png")
            Image.fromarray(masks[i].numpy()).save(root / split / "masks" / f"{i}.png")
    return root
