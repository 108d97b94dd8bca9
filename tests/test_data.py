"""Datasets and transforms: the fixed digits split, image folders in both layouts (corrupt files
skipped with one warning, mis-shaped folders refused), CIFAR pickles, preprocessing."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from lightnets.data import (
    UnreadableImagesWarning,
    build_data,
    data_kind,
    default_preprocess,
    eval_transform,
)
from lightnets.data.digits import digits_split

COLOURS = {"blue": (30, 60, 220), "green": (40, 200, 60), "red": (220, 40, 40)}


def make_image_tree(root: Path, per_class: int = 6, size: int = 20, seed: int = 0) -> Path:
    """``root/<colour>/<i>.png`` (and some JPEGs): noisy images of one colour per class."""
    rng = np.random.default_rng(seed)
    for name, colour in COLOURS.items():
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = np.clip(np.array(colour) + rng.normal(0, 25, (size, size, 3)), 0, 255)
            suffix = "jpg" if i % 3 == 2 else "png"
            Image.fromarray(pixels.astype(np.uint8)).save(root / name / f"{i}.{suffix}")
    return root


def add_corrupt_files(root: Path) -> list[Path]:
    """A PNG of garbage bytes and a truncated JPEG; a text file that must be ignored quietly."""
    garbage = root / "red" / "garbage.png"
    garbage.write_bytes(b"this is not an image" * 10)
    whole = (root / "green" / "2.jpg").read_bytes()
    truncated = root / "green" / "truncated.jpg"
    truncated.write_bytes(whole[: len(whole) // 2])
    (root / "blue" / "notes.txt").write_text("not an image, not an error")
    return [garbage, truncated]


def test_digits_split_is_fixed_disjoint_and_stratified():
    (train_x, train_y), (val_x, val_y) = digits_split()
    assert (len(train_y), len(val_y)) == (1442, 355)
    assert train_x.shape[1:] == (1, 8, 8) and 0 <= train_x.min() and train_x.max() <= 1
    assert val_y.bincount().tolist() == [35, 36, 35, 36, 36, 36, 36, 35, 34, 36]
    (again_x, _), _ = digits_split()
    assert torch.equal(train_x, again_x)
    # no validation image also appears in training
    train_rows = {tuple(row.tolist()) for row in train_x.flatten(1)}
    assert sum(tuple(row.tolist()) in train_rows for row in val_x.flatten(1)) < 5  # rare duplicates


@pytest.mark.parametrize("in_chans", [1, 3])
def test_digits_bundle_upscales_to_size_and_channels(in_chans):
    bundle = build_data("digits", default_preprocess("digits", 24, in_chans))
    image, label = bundle.val[0]
    assert image.shape == (in_chans, 24, 24) and image.dtype == torch.float32
    assert bundle.classes == [str(d) for d in range(10)] and 0 <= label < 10
    # normalised with the training split's statistics: roughly zero mean, unit spread
    batch = torch.stack([bundle.val[i][0] for i in range(64)])
    assert abs(batch.mean()) < 0.3 and 0.6 < batch.std() < 1.4
    augmented = torch.stack([bundle.train[0][0] for _ in range(4)])
    assert not torch.equal(augmented[0], augmented[1])  # random affine jitter


def test_eval_transform_handles_pil_grey_and_rgb():
    preprocess = default_preprocess("folder", 16, 3)
    assert preprocess["resize"] == 18
    rgb = Image.new("RGB", (40, 30), (255, 0, 0))
    grey = Image.new("L", (30, 40), 128)
    assert eval_transform(preprocess)(rgb).shape == (3, 16, 16)
    assert eval_transform(preprocess)(grey).shape == (3, 16, 16)
    assert eval_transform(default_preprocess("folder", 16, 1))(rgb).shape == (1, 16, 16)


def test_folder_with_train_and_val_subfolders(tmp_path):
    make_image_tree(tmp_path / "train", per_class=4)
    make_image_tree(tmp_path / "val", per_class=2, seed=1)
    bundle = build_data(str(tmp_path), default_preprocess("folder", 16, 3))
    assert bundle.kind == "folder" and bundle.classes == ["blue", "green", "red"]
    assert (len(bundle.train), len(bundle.val)) == (12, 6)
    image, label = bundle.train[0]
    assert image.shape == (3, 16, 16) and label == 0


def test_single_tree_split_is_seeded_and_per_class(tmp_path):
    make_image_tree(tmp_path, per_class=10)
    preprocess = default_preprocess("folder", 16, 3)
    first = build_data(str(tmp_path), preprocess, val_fraction=0.3, seed=5)
    again = build_data(str(tmp_path), preprocess, val_fraction=0.3, seed=5)
    other = build_data(str(tmp_path), preprocess, val_fraction=0.3, seed=6)
    assert (len(first.train), len(first.val)) == (21, 9)
    assert first.val.indices == again.val.indices != other.val.indices
    assert not set(first.train.indices) & set(first.val.indices)
    labels = [first.val.dataset.targets[i] for i in first.val.indices]
    assert np.bincount(labels).tolist() == [3, 3, 3]


def test_corrupt_files_are_skipped_with_one_warning_naming_them(tmp_path):
    make_image_tree(tmp_path, per_class=6)
    bad = add_corrupt_files(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = build_data(str(tmp_path), default_preprocess("folder", 16, 3))
    mine = [w for w in caught if issubclass(w.category, UnreadableImagesWarning)]
    assert len(mine) == 1
    message = str(mine[0].message)
    assert message.startswith("skipped 2 unreadable") and all(str(p) in message for p in bad)
    assert sorted(bundle.skipped) == sorted(map(str, bad))
    assert len(bundle.train) + len(bundle.val) == 18
    for index in range(len(bundle.train)):  # a whole epoch reads without error
        bundle.train[index]


@pytest.mark.parametrize("layout, expected", [
    ("empty", "is empty"),
    ("loose", "holds 2 image files but no class folders"),
    ("only_corrupt", "hold no readable image"),
    ("one_class", "at least 2 class folders"),
    ("mismatch", "different class folders"),
    ("missing", "no such folder"),
])
def test_bad_folders_fail_clearly_before_training(tmp_path, layout, expected):
    root = tmp_path / "data"
    root.mkdir()
    if layout == "loose":
        for i in range(2):
            Image.new("RGB", (8, 8)).save(root / f"{i}.png")
    elif layout == "only_corrupt":
        make_image_tree(root, per_class=2)
        (root / "empty_class").mkdir()
        (root / "empty_class" / "bad.png").write_bytes(b"nope")
    elif layout == "one_class":
        (root / "only").mkdir()
        Image.new("RGB", (8, 8)).save(root / "only" / "a.png")
    elif layout == "mismatch":
        make_image_tree(root / "train", per_class=2)
        make_image_tree(root / "val", per_class=1)
        (root / "val" / "red").rename(root / "val" / "purple")
    elif layout == "missing":
        root = tmp_path / "nowhere"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=expected) as error:
            build_data(str(root), default_preprocess("folder", 16, 3))
    assert "\n" not in str(error.value)


def write_fake_cifar10(root: Path, per_batch: int = 4) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, per_batch).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return folder


def test_cifar_pickle_folder(tmp_path, monkeypatch):
    import torchvision.datasets.cifar

    folder = write_fake_cifar10(tmp_path)
    assert data_kind(str(tmp_path)) == data_kind(str(folder)) == "cifar"
    # the generated files fail torchvision's MD5 check: a clear error, no crash
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        build_data(str(folder), default_preprocess("cifar", 32, 3))
    # stand-ins for the real files: accept any checksum
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    bundle = build_data(str(folder), default_preprocess("cifar", 32, 3))
    assert (len(bundle.train), len(bundle.val)) == (20, 4)
    assert bundle.classes[0] == "airplane" and bundle.train[0][0].shape == (3, 32, 32)
