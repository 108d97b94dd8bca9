"""A real detection set without a run-time download: the ``mnfinder`` wheel's fluorescence
microscopy (DiPeso et al., MIT licence; see ``mnfinder_pairs.py``) as a YOLO-format folder of grey
tiles with one box per nucleus and per micronucleus.

The wheel's masks mark pixels, not objects: each connected region of a class (8-connected, by
``scipy.ndimage.label``) is taken as one object, so nuclei that touch in the hand-drawn mask
become one box. A region cut by a tile's edge keeps the part inside the tile; regions under
``--min-side`` pixels across are dropped (stray marks of the drawing). Tiles without objects
keep an empty label file (background images)::

    pip download mnfinder==1.2.3 --no-deps -d wheels
    python benchmarks/mnfinder_boxes.py wheels/mnfinder-1.2.3-py3-none-any.whl mnfinder-boxes
    lightnets train --model gfl_shufflenet_v2_x1_0 --data mnfinder-boxes --input-size 320
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

# benchmarks/mnfinder_pairs.py
from mnfinder_pairs import CLASSES, mnfinder_images, tiles, wheel_parser

NAMES = CLASSES[1:]  # nucleus, micronucleus: the mask's classes 1 and 2


def boxes(mask: np.ndarray, min_side: int) -> list[tuple[int, float, float, float, float]]:
    """``(class, cx, cy, w, h)`` normalised, one per connected region of each class of
    ``mask`` at least ``min_side`` pixels wide and high."""
    height, width = mask.shape
    out = []
    for index in range(len(NAMES)):
        regions, _ = ndimage.label(mask == index + 1, structure=np.ones((3, 3)))
        for rows, cols in ndimage.find_objects(regions):
            w, h = cols.stop - cols.start, rows.stop - rows.start
            if min(w, h) >= min_side:
                out.append((index, (cols.start + w / 2) / width, (rows.start + h / 2) / height,
                            w / width, h / height))
    return out


def convert(wheel_path: Path, output: Path, side: int, min_side: int) -> dict[str, int]:
    """Write ``output/images/{train,val}``, ``output/labels/{train,val}`` and ``data.yaml``;
    tiles and boxes per split."""
    counts = {"train": 0, "val": 0, "train boxes": 0, "val boxes": 0}
    for split, stem, image, mask in mnfinder_images(wheel_path):
        for sub in ("images", "labels"):
            (output / sub / split).mkdir(parents=True, exist_ok=True)
        for i, (pixels, labels) in enumerate(zip(tiles(image, side), tiles(mask, side))):
            found = boxes(labels, min_side)
            Image.fromarray(pixels).save(output / "images" / split / f"{stem}_{i:03d}.png")
            (output / "labels" / split / f"{stem}_{i:03d}.txt").write_text(
                "".join(f"{c} {x:.8g} {y:.8g} {w:.8g} {h:.8g}\n" for c, x, y, w, h in found))
            counts[split] += 1
            counts[f"{split} boxes"] += len(found)
    (output / "data.yaml").write_text("train: images/train\nval: images/val\n"
                                      f"names: [{', '.join(NAMES)}]\n")
    return counts


def main() -> None:
    parser = wheel_parser(__doc__.splitlines()[0], "YOLO folder", 256)
    parser.add_argument("--min-side", type=int, default=3,
                        help="smallest box side kept, in pixels (default 3)")
    args = parser.parse_args()
    counts = convert(args.wheel, args.output, args.tile, args.min_side)
    print(f"wrote {counts['train']} training tiles ({counts['train boxes']} boxes) and "
          f"{counts['val']} validation tiles ({counts['val boxes']} boxes) of "
          f"{args.tile}x{args.tile} to {args.output}")


if __name__ == "__main__":
    main()
