"""``digits-det``: an embedded detection data set of canvases holding real digit scans.

Each 128x128 RGB canvas has a dark background of a random colour (with mild pixel noise) and
one to four of scikit-learn's 8x8 handwritten digit scans, each upscaled to a random size of 16
to 48 pixels, drawn in a bright random colour at a random place, at least two pixels away from
the others; its box is tight around its ink, its class its digit. The layout comes from a fixed
seed, so the data are always the same: 1,000 training canvases drawn only from the training
scans of :func:`lightnets.data.digits.digits_split` and 200 validation canvases drawn only from
its validation scans. Nothing is downloaded; canvases are rendered when read.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as nnf

from lightnets.data.detection.records import ImageRecord, make_record
from lightnets.data.digits import CLASS_NAMES, digits_split

CANVAS_SIZE = 128
TRAIN_CANVASES, VAL_CANVASES = 1000, 200
TRAIN_SEED, VAL_SEED = 0, 1
DIGIT_SIZES = (16, 48)          # side of an upscaled scan, pixels, both included
DIGITS_PER_CANVAS = (1, 4)      # both included
GAP = 2                         # pixels kept free between two digits' boxes
PLACEMENT_TRIES = 30            # random places tried for a digit before it is left out
LEVELS = 16                     # the scans' own grey levels; a drawn pixel has alpha >= 1/16
NOISE = 0.03                    # standard deviation of the pixel noise, in [0, 1] units


@dataclass
class Placement:
    """One digit drawn on a canvas."""

    patch: tuple[int, int]      # (scan index, side): key of its alpha patch
    x: int
    y: int
    color: tuple[float, float, float]


def upscaled_patches(scans: torch.Tensor, keys: set[tuple[int, int]]
                     ) -> dict[tuple[int, int], torch.Tensor]:
    """For each ``(scan index, side)``: the ``(8, 8)`` scan in [0, 1] upscaled bilinearly to
    ``(side, side)`` and quantised to :data:`LEVELS` grey levels, as uint8 alpha steps (0 is no
    ink)."""
    patches = {}
    for side in sorted({side for _, side in keys}):
        indices = sorted(index for index, s in keys if s == side)
        upscaled = nnf.interpolate(scans[indices], size=(side, side), mode="bilinear",
                                   align_corners=False)[:, 0]
        levels = (upscaled.clamp(0, 1) * LEVELS).round().to(torch.uint8)
        patches.update({(index, side): patch for index, patch in zip(indices, levels)})
    return patches


def ink_box(patch: torch.Tensor) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` of the patch's nonzero pixels, ends exclusive."""
    rows = torch.nonzero(patch.any(dim=1)).flatten()
    cols = torch.nonzero(patch.any(dim=0)).flatten()
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def overlaps(box: tuple[int, int, int, int], others: list[tuple[int, int, int, int]]) -> bool:
    """Whether ``box`` grown by :data:`GAP` on every side meets any of ``others``."""
    x1, y1, x2, y2 = box[0] - GAP, box[1] - GAP, box[2] + GAP, box[3] + GAP
    return any(x1 < ox2 and ox1 < x2 and y1 < oy2 and oy1 < y2 for ox1, oy1, ox2, oy2 in others)


class DigitCanvases:
    """Lays out ``count`` canvases from ``scans`` with ``seed`` and renders them on demand
    (it is the dataset's ``read_image``). ``sources[i]`` lists the scan indices on canvas i."""

    def __init__(self, scans: torch.Tensor, labels: torch.Tensor, count: int, seed: int,
                 canvas_size: int = CANVAS_SIZE, noise: float = NOISE) -> None:
        self.seed, self.canvas_size, self.noise = seed, canvas_size, noise
        rng = np.random.default_rng(seed)
        # first what each canvas shows, so that the scans of each size are upscaled in one call
        chosen = []
        for _ in range(count):
            number = int(rng.integers(DIGITS_PER_CANVAS[0], DIGITS_PER_CANVAS[1] + 1))
            chosen.append([((int(rng.integers(len(scans))),
                             int(rng.integers(DIGIT_SIZES[0], DIGIT_SIZES[1] + 1))),
                            tuple(float(c) for c in rng.uniform(0.55, 1.0, 3)))
                           for _ in range(number)])
        self.patches = upscaled_patches(scans, {key for digits in chosen for key, _ in digits})
        inks = {key: ink_box(patch) for key, patch in self.patches.items()}
        # then where: random places until one keeps its distance from the digits already there
        self.layouts: list[list[Placement]] = []
        self.backgrounds: list[tuple[float, float, float]] = []
        self.records: list[ImageRecord] = []
        for image_id, digits in enumerate(chosen):
            placements, boxes = [], []
            for key, color in digits:
                ink = inks[key]
                for _ in range(PLACEMENT_TRIES):
                    x, y = (int(v) for v in rng.integers(0, canvas_size - key[1] + 1, 2))
                    box = (x + ink[0], y + ink[1], x + ink[2], y + ink[3])
                    if not overlaps(box, boxes):
                        placements.append(Placement(key, x, y, color))
                        boxes.append(box)
                        break
            self.layouts.append(placements)
            self.backgrounds.append(tuple(float(c) for c in rng.uniform(0.0, 0.3, 3)))
            self.records.append(make_record(
                image_id, (canvas_size, canvas_size), [list(map(float, b)) for b in boxes],
                [int(labels[p.patch[0]]) + 1 for p in placements], [0] * len(boxes)))
        self.sources = [[p.patch[0] for p in layout] for layout in self.layouts]

    def __call__(self, record: ImageRecord) -> torch.Tensor:
        """Canvas ``record.image_id`` as a uint8 ``(3, size, size)`` tensor (the same every
        time: the noise is seeded by the canvas)."""
        size = self.canvas_size
        canvas = torch.tensor(self.backgrounds[record.image_id]).view(3, 1, 1).repeat(1, size,
                                                                                     size)
        for placement in self.layouts[record.image_id]:
            alpha = self.patches[placement.patch].float() / LEVELS
            side = alpha.shape[0]
            region = canvas[:, placement.y:placement.y + side, placement.x:placement.x + side]
            color = torch.tensor(placement.color).view(3, 1, 1)
            region.mul_(1 - alpha).add_(color * alpha)
        if self.noise:
            rng = np.random.default_rng([self.seed, record.image_id])
            canvas += torch.from_numpy(rng.normal(0.0, self.noise, canvas.shape)
                                       .astype(np.float32))
        return (canvas.clamp(0, 1) * 255).round().to(torch.uint8)


@functools.lru_cache(maxsize=2)
def digit_canvases(noise: float = NOISE) -> tuple[DigitCanvases, DigitCanvases]:
    """The fixed training and validation canvases (training scans only, validation scans only),
    laid out once per process: they never change, and datasets only read them."""
    (train_x, train_y), (val_x, val_y) = digits_split()
    return (DigitCanvases(train_x, train_y, TRAIN_CANVASES, TRAIN_SEED, noise=noise),
            DigitCanvases(val_x, val_y, VAL_CANVASES, VAL_SEED, noise=noise))


__all__ = ["CANVAS_SIZE", "CLASS_NAMES", "DigitCanvases", "digit_canvases"]
