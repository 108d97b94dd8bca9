"""Image folders: both layouts, seeded splits, corrupt files skipped, bad folders refused."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from lightnets.data import UnreadableImagesWarning, build_data, default_preprocess
from lightnets.tasks import get_task
from tests.conftest import add_corrupt_files, make_image_tree


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
            # as the training loop reads it: through the classifiers' task
            get_task("classification").build_data(str(root), default_preprocess("folder", 16, 3))
    assert "\n" not in str(error.value)


def test_a_classifier_refuses_segmentation_and_detection_folders(tmp_path):
    from tests.data.detection_folders import coco_images, write_coco, write_voc
    from tests.data.test_seg_data import pair_folder, write_pair
    pair_folder(tmp_path / "pairs", 2)
    pair_folder(tmp_path / "split" / "train", 2)
    write_pair(tmp_path / "segvoc" / "JPEGImages", tmp_path / "segvoc" / "SegmentationClass", "a")
    write_coco(tmp_path / "coco", coco_images(2))
    write_voc(tmp_path / "detvoc", 2, splits=False)
    task = get_task("classification")
    preprocess = default_preprocess("folder", 16, 3)
    for name, words in [("pairs", "a segmentation folder (images/, masks/)"),
                        ("split", "a segmentation folder (images/, masks/)"),
                        ("segvoc", "a Pascal VOC segmentation folder"),
                        ("coco", "a COCO detection folder"),
                        ("detvoc", "a Pascal VOC detection folder")]:
        data = str(tmp_path / name)
        for call in (lambda: task.data_kind(data),
                     lambda: task.calibration_images(data, preprocess),
                     lambda: build_data(data, preprocess)):
            with pytest.raises(ValueError, match="a classifier needs a folder of class") as error:
                call()
            assert f"--data {data} is {words}" in str(error.value)
            assert "\n" not in str(error.value)
    # a class folder named "images" beside others is still a classification folder
    make_image_tree(tmp_path / "cls", per_class=2)
    (tmp_path / "cls" / "red").rename(tmp_path / "cls" / "images")
    assert task.data_kind(str(tmp_path / "cls")) == "folder"
