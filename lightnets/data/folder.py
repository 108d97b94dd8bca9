"""Image folders, read with torchvision's ``ImageFolder``.

Two layouts: split folders, ``ROOT/train/<class>/*`` with ``ROOT/val/<class>/*`` (or
``valid/``, ``validation/``; without one, ``test/`` validates, and a lone ``train/`` is split),
or one ``ROOT/<class>/*`` tree that is split per class by a seeded fraction. Split folders are
recognised by name (:data:`SPLIT_NAMES`, any case) and never taken for classes. Every file is
decoded once at start-up (JPEGs at reduced scale, which is cheap) so unreadable or corrupt files
are skipped before training, never mid-epoch; the caller warns once, naming them. Empty or
mis-shaped folders raise ``ValueError``.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from PIL import Image
from torch.utils.data import Dataset, Subset
from torchvision.datasets import ImageFolder
from torchvision.datasets.folder import IMG_EXTENSIONS, has_file_allowed_extension

from lightnets.data.images import load_rgb

TRAIN_NAMES, VAL_NAMES, TEST_NAMES = ("train",), ("val", "valid", "validation"), ("test",)
SPLIT_NAMES = TRAIN_NAMES + VAL_NAMES + TEST_NAMES


def readable_image(path: str) -> bool:
    """Whether PIL can decode the whole file."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(path) as image:
                image.draft(image.mode, (64, 64))  # JPEG: decode at 1/2..1/8 scale
                image.load()
        return True
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


class CheckedImageFolder(ImageFolder):
    """``ImageFolder`` keeping only files PIL can decode; the others are appended to
    ``skipped``. Should a file become unreadable later, the next sample stands in for it."""

    def __init__(self, root: str | Path, transform: Callable | None, skipped: list[str]) -> None:
        def is_valid_file(path: str) -> bool:
            if not has_file_allowed_extension(path, IMG_EXTENSIONS):
                return False
            if readable_image(path):
                return True
            skipped.append(path)
            return False

        super().__init__(str(root), transform=transform, loader=load_rgb,
                         is_valid_file=is_valid_file,
                         allow_empty=True)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for offset in range(len(self.samples)):
            position = (index + offset) % len(self.samples)
            try:
                return super().__getitem__(position)
            except OSError as error:
                warnings.warn(f"could not read {self.samples[position][0]} ({error}); "
                              "using the next image instead", stacklevel=2)
        raise ValueError(f"no readable image left in {self.root}")


def class_folders(root: Path) -> list[str]:
    """Class folder names under ``root``, with a clear error when there are none."""
    if not root.is_dir():
        raise ValueError(f"image folder {str(root)!r} does not exist or is not a folder")
    names = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        loose = [p for p in root.iterdir() if has_file_allowed_extension(p.name, IMG_EXTENSIONS)]
        what = (f"holds {len(loose)} image files but no class folders" if loose else "is empty")
        raise ValueError(f"image folder {str(root)!r} {what}; expected ROOT/<class>/<image> "
                         "or ROOT/train/<class>/... with ROOT/val/<class>/...")
    return names


def check_classes(dataset: ImageFolder, where: Path) -> None:
    """Fail when a class folder holds no readable image."""
    counts = torch.bincount(torch.tensor(dataset.targets, dtype=torch.long),
                            minlength=len(dataset.classes))
    empty = [name for name, count in zip(dataset.classes, counts.tolist()) if count == 0]
    if empty:
        raise ValueError(f"class folder(s) {', '.join(empty)} in {str(where)!r} hold no readable "
                         f"image (extensions: {', '.join(IMG_EXTENSIONS)})")
    if len(dataset.classes) < 2:
        raise ValueError(f"image folder {str(where)!r} has {len(dataset.classes)} class; "
                         "classification needs at least 2 class folders")


def seeded_split(targets: list[int], val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Train and validation indices: per class, a seeded shuffle puts ``val_fraction`` of the
    images (at least one where the class has two or more) into validation."""
    generator = torch.Generator().manual_seed(seed)
    labels = torch.tensor(targets)
    train, val = [], []
    for label in labels.unique().tolist():
        where = torch.nonzero(labels == label).flatten()
        where = where[torch.randperm(len(where), generator=generator)].tolist()
        n_val = max(1, round(len(where) * val_fraction)) if len(where) > 1 else 0
        val += where[:n_val]
        train += where[n_val:]
    return sorted(train), sorted(val)


def split_folders(root: Path) -> tuple[Path | None, Path | None]:
    """``(train, validation)`` split folders of ``root``: ``(None, None)`` for a class-folder
    tree, ``(train, None)`` for a lone ``train/``. A validation folder is ``val/``, ``valid/`` or
    ``validation/``, else ``test/``; split folders mixed with other folders, a split without
    ``train/``, or two validation folders are errors."""
    folders = {p.name.lower(): p for p in root.iterdir()
               if p.is_dir() and not p.name.startswith(".")}
    splits = {name: folders[name] for name in SPLIT_NAMES if name in folders}
    if not splits:
        return None, None
    named = ", ".join(f"{p.name}/" for p in splits.values())
    others = sorted(p.name for key, p in folders.items() if key not in splits)
    if others:
        raise ValueError(f"image folder {str(root)!r} mixes split folders ({named}) with other "
                         f"folders ({', '.join(others)}); expected either split folders "
                         "(train/ with val/) or class folders only")
    if "train" not in splits:
        raise ValueError(f"image folder {str(root)!r} has {named} but no train/ folder")
    vals = [splits[name] for name in VAL_NAMES if name in splits]
    if len(vals) > 1:
        raise ValueError(f"image folder {str(root)!r} has two validation folders "
                         f"({', '.join(f'{p.name}/' for p in vals)}); keep one")
    if not vals and "test" in splits:
        vals = [splits["test"]]
    return splits["train"], (vals[0] if vals else None)


def folder_datasets(root: str | Path, train_transform: Callable, val_transform: Callable,
                    val_fraction: float = 0.2, seed: int = 0
                    ) -> tuple[Dataset, Dataset, list[str], list[str]]:
    """``(train, val, class_names, skipped_files)`` for an image folder in either layout."""
    root = Path(root)
    skipped: list[str] = []
    train_dir, val_dir = split_folders(root) if root.is_dir() else (None, None)
    if val_dir and val_dir.name.lower() in TEST_NAMES:
        warnings.warn(f"{str(root)!r} has no val/ folder: validating on {val_dir.name}/",
                      stacklevel=3)
    if train_dir and val_dir:
        train_classes, val_classes = class_folders(train_dir), class_folders(val_dir)
        if train_classes != val_classes:
            only_train = sorted(set(train_classes) - set(val_classes))
            only_val = sorted(set(val_classes) - set(train_classes))
            raise ValueError(f"{train_dir.name}/ and {val_dir.name}/ of {str(root)!r} have "
                             f"different class folders (only in {train_dir.name}: "
                             f"{only_train or '-'}; only in {val_dir.name}: {only_val or '-'})")
        train = CheckedImageFolder(train_dir, train_transform, skipped)
        val = CheckedImageFolder(val_dir, val_transform, skipped)
        check_classes(train, train_dir)
        if len(val) == 0:
            raise ValueError(f"{str(val_dir)!r} holds no readable image")
        return train, val, train.classes, skipped
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    root = train_dir or root  # a lone train/ is the class-folder tree to split
    class_folders(root)
    tree = CheckedImageFolder(root, train_transform, skipped)
    check_classes(tree, root)
    val_tree = copy.copy(tree)  # same file list, evaluation transform
    val_tree.transform = val_transform
    train_indices, val_indices = seeded_split(tree.targets, val_fraction, seed)
    if not val_indices:
        raise ValueError(f"image folder {str(root)!r} is too small to hold out a validation split")
    return Subset(tree, train_indices), Subset(val_tree, val_indices), tree.classes, skipped


def folder_images(root: str | Path, transform: Callable) -> tuple[Dataset, list[str]]:
    """``(images, skipped_files)``: every readable image of an image folder, unsplit (its
    ``train/`` split folder, or the whole class-folder tree, any number of classes), for what
    needs images but no validation split, such as int8 calibration."""
    root = Path(root)
    train_dir, _ = split_folders(root)
    root = train_dir or root
    class_folders(root)
    skipped: list[str] = []
    images = CheckedImageFolder(root, transform, skipped)
    if len(images) == 0:
        raise ValueError(f"image folder {str(root)!r} holds no readable image (extensions: "
                         f"{', '.join(IMG_EXTENSIONS)})")
    return images, skipped
