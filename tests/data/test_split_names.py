"""Split folders (train/, val/, valid/, validation/, test/) are recognised by name and never
taken for classes."""

from __future__ import annotations

import warnings

import pytest

from lightnets.data import build_data, default_preprocess, unsplit_images
from tests.conftest import COLOURS, make_image_tree

CLASSES = sorted(COLOURS)
PREPROCESS = default_preprocess("folder", 16, 3)


def bundle(root, **kwargs):
    return build_data(str(root), PREPROCESS, augment=False, **kwargs)


@pytest.mark.parametrize("train_name, val_name", [
    ("train", "val"), ("train", "valid"), ("train", "validation"), ("Train", "VAL")])
def test_train_with_a_validation_folder(tmp_path, train_name, val_name):
    make_image_tree(tmp_path / train_name, per_class=3, size=8)
    make_image_tree(tmp_path / val_name, per_class=2, size=8, seed=1)
    data = bundle(tmp_path)
    assert data.classes == CLASSES and (len(data.train), len(data.val)) == (9, 6)


def test_train_and_test_validate_on_test(tmp_path):
    make_image_tree(tmp_path / "train", per_class=3, size=8)
    make_image_tree(tmp_path / "test", per_class=1, size=8, seed=1)
    with pytest.warns(UserWarning, match="no val/ folder: validating on test/"):
        data = bundle(tmp_path)
    assert data.classes == CLASSES and (len(data.train), len(data.val)) == (9, 3)


def test_a_lone_train_folder_is_split(tmp_path):
    make_image_tree(tmp_path / "train", per_class=5, size=8)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing to warn about
        data = bundle(tmp_path, val_fraction=0.2)
    assert data.classes == CLASSES and (len(data.train), len(data.val)) == (12, 3)


@pytest.mark.parametrize("folders, message", [
    (["train", "red"], r"mixes split folders \(train/\) with other folders \(red\)"),
    (["test"], "has test/ but no train/ folder"),
    (["train", "val", "validation"], r"two validation folders \(val/, validation/\)"),
])
def test_ambiguous_layouts_are_errors(tmp_path, folders, message):
    for folder in folders:
        make_image_tree(tmp_path / folder, per_class=2, size=8)
    with pytest.raises(ValueError, match=message):
        bundle(tmp_path)


def test_unsplit_images_need_no_validation_split(tmp_path):
    # two images, one class: too few to split, still fine to calibrate on
    make_image_tree(tmp_path / "tree", per_class=2, size=8)
    for extra in ("green", "red"):
        for path in (tmp_path / "tree" / extra).iterdir():
            path.unlink()
        (tmp_path / "tree" / extra).rmdir()
    assert len(unsplit_images(str(tmp_path / "tree"), PREPROCESS)) == 2
    make_image_tree(tmp_path / "split" / "train", per_class=2, size=8)
    make_image_tree(tmp_path / "split" / "test", per_class=1, size=8)
    assert len(unsplit_images(str(tmp_path / "split"), PREPROCESS)) == 6  # train/ only
