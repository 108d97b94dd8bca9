"""Segmentation data in folders: Pascal VOC's layout and a plain image/mask pair layout.

- **Pascal VOC** (Everingham et al. 2010): ``ROOT/JPEGImages/<id>.jpg``,
  ``ROOT/SegmentationClass/<id>.png`` (palette PNGs whose indices are the classes, 255 the
  void border) and ``ROOT/ImageSets/Segmentation/{train,val}.txt``; the 21 VOC classes.
- **Pairs**: ``ROOT/images/<stem>.<ext>`` with ``ROOT/masks/<stem>.png`` (single-channel or
  palette PNGs of class indices), an optional ``ROOT/classes.txt`` (one name per line, line *i*
  names index *i*), either split as ``ROOT/train/{images,masks}`` with ``ROOT/val/...`` or split
  by a seeded fraction.

Index 255 is "ignore" in both, in the loss and in the metrics. Every pair is checked when the
data is built, before any training: an image without a mask or the reverse, a mask of another
size than its image, a mask that is not single-channel or holds an index beyond the classes are
one-line errors; files that cannot be decoded are skipped and counted (the caller warns once).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets.folder import IMG_EXTENSIONS

from lightnets.data.folder import TRAIN_NAMES, VAL_NAMES
from lightnets.data.images import to_mode

IGNORE_INDEX = 255
VOC_CLASSES = ["background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car",
               "cat", "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person",
               "pottedplant", "sheep", "sofa", "train", "tvmonitor"]
# single-channel PNGs: grey, palette, integer, 1-bit (pixels 0/1: classes 0/1)
MASK_MODES = ("L", "P", "I", "I;16", "1")


def is_voc(root: Path) -> bool:
    return (root / "JPEGImages").is_dir() and (root / "SegmentationClass").is_dir()


def is_pairs(root: Path) -> bool:
    return (root / "images").is_dir() or any((root / split / "images").is_dir()
                                             for split in (*TRAIN_NAMES, *VAL_NAMES))


class SegmentationPairs(Dataset):
    """``(Image, Mask)`` tv_tensors for a list of ``(image_path, mask_path)`` pairs, through
    the joint ``transform``. Images are RGB uint8, masks uint8 class indices."""

    def __init__(self, pairs: list[tuple[Path, Path]], transform: Callable | None,
                 classes: list[str]) -> None:
        self.pairs, self.transform, self.classes = pairs, transform, classes

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_path, mask_path = self.pairs[index]
        with Image.open(image_path) as image:
            pixels = np.asarray(to_mode(image, "RGB"))
        image = tv_tensors.Image(torch.from_numpy(pixels.copy()).permute(2, 0, 1))
        mask = tv_tensors.Mask(torch.from_numpy(read_mask(mask_path)))
        return self.transform(image, mask) if self.transform else (image, mask)


def read_mask(path: Path) -> np.ndarray:
    """The class indices of a mask PNG as ``(H, W)`` uint8 (palette indices for palette PNGs),
    or a one-line error for a colour mask."""
    with Image.open(path) as mask:
        if mask.mode not in MASK_MODES:
            raise ValueError(f"mask {str(path)!r} is a {mask.mode} image; expected a single-"
                             "channel or palette PNG of class indices")
        values = np.asarray(mask)
    if values.max(initial=0) > IGNORE_INDEX:
        raise ValueError(f"mask {str(path)!r} holds index {int(values.max())}; class indices "
                         f"must be below {IGNORE_INDEX} ({IGNORE_INDEX} = ignore)")
    return values.astype(np.uint8)


def image_size(path: Path) -> tuple[int, int] | None:
    """``(width, height)`` of a decodable image, ``None`` if it cannot be decoded."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                size = image.size  # before draft, which shrinks a JPEG's decoded size
                image.draft(image.mode, (max(1, size[0] // 8), max(1, size[1] // 8)))
                image.load()
                return size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return None


def check_pairs(pairs: list[tuple[Path, Path]], num_classes: int | None, skipped: list[str]
                ) -> tuple[list[tuple[Path, Path]], int, int]:
    """The decodable pairs, checked (sizes equal, indices below ``num_classes`` or 255), the
    number of classes their masks need (``num_classes`` when given) and their labelled (not
    ignored) pixels. Undecodable files join ``skipped``."""
    kept, highest, labelled_pixels = [], 0, 0
    for image_path, mask_path in pairs:
        size = image_size(image_path)
        if size is None:
            skipped.append(str(image_path))
            continue
        try:
            mask = read_mask(mask_path)
        except (OSError, SyntaxError):
            skipped.append(str(mask_path))
            continue
        if (mask.shape[1], mask.shape[0]) != size:
            raise ValueError(f"mask {str(mask_path)!r} is {mask.shape[1]}x{mask.shape[0]} but its "
                             f"image is {size[0]}x{size[1]}; a mask must match its image")
        labelled = mask[mask != IGNORE_INDEX]
        top = int(labelled.max(initial=0))
        if num_classes is not None and top >= num_classes:
            raise ValueError(f"mask {str(mask_path)!r} holds class index {top}, but there are "
                             f"{num_classes} classes (0-{num_classes - 1}, {IGNORE_INDEX} = "
                             "ignore)")
        highest = max(highest, top)
        labelled_pixels += labelled.size
        kept.append((image_path, mask_path))
    return kept, num_classes or highest + 1, labelled_pixels


def _files(folder: Path, extensions: tuple[str, ...]) -> dict[str, Path]:
    """The files of ``folder`` by stem; two files of one stem (a.png, a.jpg) are an error, as
    only one of them could be paired with the stem's mask."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.is_file() and path.suffix.lower() in extensions and not path.name.startswith("."):
            if path.stem in found:
                raise ValueError(f"{str(found[path.stem])!r} and {str(path)!r} share the stem "
                                 f"{path.stem!r}; pairs are matched by stem, keep one of them")
            found[path.stem] = path
    return found


def match_pairs(images_dir: Path, masks_dir: Path) -> list[tuple[Path, Path]]:
    """Images and masks paired by file stem; an unpaired file on either side is an error."""
    for folder in (images_dir, masks_dir):
        if not folder.is_dir():
            raise ValueError(f"{str(folder)!r} is missing; the pair layout needs images/ and "
                             "masks/ folders side by side")
    lossy = sorted(p for p in masks_dir.iterdir()
                   if p.suffix.lower() in IMG_EXTENSIONS and p.suffix.lower() != ".png")
    if lossy:  # else reported as images without a mask, hiding the cause
        raise ValueError(f"mask {str(lossy[0])!r} is a {lossy[0].suffix} file ({len(lossy)} "
                         "such in its folder): masks must be lossless PNG (JPEG compression "
                         "changes label values); save them as .png")
    images, masks = _files(images_dir, IMG_EXTENSIONS), _files(masks_dir, (".png",))
    for what, extra, other in (("image", sorted(set(images) - set(masks)), masks_dir),
                               ("mask", sorted(set(masks) - set(images)), images_dir)):
        if extra:
            shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5
                                            else "")
            raise ValueError(f"{len(extra)} {what}(s) without a counterpart in "
                             f"{str(other)!r}: {shown}")
    if not images:
        raise ValueError(f"{str(images_dir)!r} holds no images (extensions: "
                         f"{', '.join(IMG_EXTENSIONS)})")
    return [(images[stem], masks[stem]) for stem in sorted(images)]


def read_classes(root: Path) -> list[str] | None:
    path = root / "classes.txt"
    if not path.is_file():
        return None
    names = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if len(names) < 2:
        raise ValueError(f"{str(path)!r} names {len(names)} class(es); segmentation needs at "
                         "least 2 (background and one more)")
    return names


def seeded_pair_split(pairs: list, val_fraction: float, seed: int) -> tuple[list, list]:
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    order = torch.randperm(len(pairs), generator=torch.Generator().manual_seed(seed)).tolist()
    n_val = max(1, round(len(pairs) * val_fraction))
    if len(pairs) < 2:
        raise ValueError("the pair folder is too small to hold out a validation split")
    return [pairs[i] for i in sorted(order[n_val:])], [pairs[i] for i in sorted(order[:n_val])]


def voc_pairs(root: Path) -> tuple[list, list]:
    """VOC's train and val lists, as pairs of paths."""
    lists = root / "ImageSets" / "Segmentation"
    splits = []
    for split in ("train", "val"):
        path = lists / f"{split}.txt"
        if not path.is_file():
            raise ValueError(f"{str(path)!r} is missing; a VOC folder needs "
                             "ImageSets/Segmentation/train.txt and val.txt")
        ids = [line.split()[0] for line in path.read_text().splitlines() if line.strip()]
        pairs = [(root / "JPEGImages" / f"{i}.jpg", root / "SegmentationClass" / f"{i}.png")
                 for i in ids]
        missing = [str(p) for pair in pairs for p in pair if not p.is_file()]
        if missing:
            raise ValueError(f"{split}.txt lists {len(missing)} file(s) that do not exist, first "
                             f"{missing[0]!r}")
        splits.append(pairs)
    return splits[0], splits[1]


def seg_folder_datasets(root: str | Path, train_transform: Callable, val_transform: Callable,
                        val_fraction: float = 0.2, seed: int = 0
                        ) -> tuple[Dataset, Dataset, list[str], list[str]]:
    """``(train, val, class_names, skipped_files)`` for a VOC or pair folder."""
    root = Path(root)
    skipped: list[str] = []
    if is_voc(root):
        train, val = voc_pairs(root)
        val_where = repr(str(root / "ImageSets" / "Segmentation" / "val.txt"))
        classes: list[str] | None = list(VOC_CLASSES)
    else:
        splits = {p.name.lower(): p for p in root.iterdir() if (p / "images").is_dir()}
        train_dir = next((splits[n] for n in TRAIN_NAMES if n in splits), None)
        val_dir = next((splits[n] for n in VAL_NAMES if n in splits), None)
        classes = read_classes(root)
        if train_dir and val_dir:
            train = match_pairs(train_dir / "images", train_dir / "masks")
            val = match_pairs(val_dir / "images", val_dir / "masks")
            val_where = repr(str(val_dir / "masks"))
        elif train_dir or val_dir:
            raise ValueError(f"{str(root)!r} has a {(train_dir or val_dir).name}/ split but not "
                             "the other; expected train/ and val/, or images/ and masks/ only")
        else:
            train, val = seeded_pair_split(match_pairs(root / "images", root / "masks"),
                                           val_fraction, seed)
            val_where = f"{str(root)!r} (a seeded {val_fraction:g} of its pairs)"
    train, num_classes, _ = check_pairs(train, len(classes) if classes else None, skipped)
    val, val_classes, val_labelled = check_pairs(val, len(classes) if classes else None, skipped)
    if val and not val_labelled:  # mIoU would be 0 every epoch and best.pt chosen on nothing
        raise ValueError(f"the validation split of {val_where} has no labelled pixel: its "
                         f"{len(val)} mask(s) are all {IGNORE_INDEX} (ignore), so mIoU cannot be "
                         "measured; label some pixels or use another validation split")
    num_classes = max(num_classes, val_classes)
    classes = classes or [str(i) for i in range(max(num_classes, 2))]
    if not train or not val:
        missing = "training" if not train else "validation"
        raise ValueError(f"{str(root)!r} has no readable {missing} pair")
    return (SegmentationPairs(train, train_transform, classes),
            SegmentationPairs(val, val_transform, classes), classes, skipped)
