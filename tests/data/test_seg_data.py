"""Segmentation data: the embedded digits-seg canvases, the VOC and pair folder layouts, their
checks before training, and the joint image/mask transforms."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import tv_tensors

from lightnets.data import IGNORE_INDEX, build_data, default_preprocess
from lightnets.tasks import get_task
from lightnets.data import digits_seg
from lightnets.data.digits import digits_split
from lightnets.data.seg_folders import VOC_CLASSES, read_mask
from lightnets.data.transforms import seg_eval_transform, seg_train_transform


def small_canvases(seed: int = 0, count: int = 12):
    (train_x, train_y), _ = digits_split()
    return digits_seg.compose_canvases(train_x, train_y, count, seed)


def test_canvases_are_seeded_and_labelled_where_the_ink_is():
    images, masks = small_canvases()
    again_images, again_masks = small_canvases()
    assert torch.equal(images, again_images) and torch.equal(masks, again_masks)
    assert not torch.equal(small_canvases(seed=1)[1], masks)
    assert images.shape == (12, 3, 64, 64) and images.dtype == torch.uint8
    assert masks.shape == (12, 64, 64) and int(masks.max()) <= 10
    for image, mask in zip(images, masks):
        assert (mask > 0).any()  # every canvas holds at least one digit
        brightness = image.float().mean(0)
        assert brightness[mask > 0].mean() > brightness[mask == 0].mean() + 60


def test_training_and_validation_canvases_come_from_disjoint_scans(monkeypatch):
    seen = []
    monkeypatch.setattr(digits_seg, "compose_canvases",
                        lambda scans, labels, count, seed: seen.append(scans) or (
                            torch.zeros(1, 3, 64, 64, dtype=torch.uint8),
                            torch.zeros(1, 64, 64, dtype=torch.uint8)))
    digits_seg.canvases.cache_clear()
    try:
        digits_seg.canvases(0)
    finally:
        digits_seg.canvases.cache_clear()
    train_scans, val_scans = (set(map(bytes, s.flatten(1).numpy())) for s in seen)
    assert len(train_scans) > 1000 and len(val_scans) > 300
    assert not train_scans & val_scans


def test_digits_seg_bundle_and_its_task():
    preprocess = default_preprocess("digits-seg", 64, 3)
    bundle = build_data("digits-seg", preprocess, normalize=False, kind="digits-seg")
    assert bundle.kind == "digits-seg" and bundle.classes[0] == "background"
    assert bundle.num_classes == 11 and (len(bundle.train), len(bundle.val)) == (4000, 500)
    image, mask = bundle.train[0]
    assert image.dtype == torch.uint8 and image.shape == (3, 64, 64)
    assert isinstance(mask, tv_tensors.Mask) and mask.shape == (64, 64)
    with pytest.raises(ValueError, match="digits-seg is segmentation data"):
        get_task("classification").data_kind("digits-seg")
    with pytest.raises(ValueError, match="digits is classification data.*digits-seg"):
        get_task("segmentation").data_kind("digits")


def test_joint_transforms_move_the_mask_with_the_image():
    image = torch.zeros(3, 40, 60, dtype=torch.uint8)
    image[:, 10:20, 30:50] = 200
    mask = torch.zeros(40, 60, dtype=torch.uint8)
    mask[10:20, 30:50] = 3
    mask[0, 0] = IGNORE_INDEX
    preprocess = default_preprocess("seg-folder", 32, 3)
    out_image, out_mask = seg_eval_transform(preprocess)(tv_tensors.Image(image),
                                                         tv_tensors.Mask(mask))
    assert out_image.shape == (3, 32, 32) and out_image.dtype == torch.float32
    assert out_mask.shape == (32, 32) and out_mask.dtype == torch.uint8
    assert set(out_mask.unique().tolist()) <= {0, 3, IGNORE_INDEX}  # nearest: no new indices
    torch.manual_seed(0)
    train = seg_train_transform(preprocess, "seg-folder", normalize=False)
    seen_square = False
    for _ in range(5):
        warped_image, warped_mask = train(tv_tensors.Image(image), tv_tensors.Mask(mask))
        seen_square |= bool((warped_mask == 3).any())
        bright = warped_image[0] > 100
        assert set(warped_mask.unique().tolist()) <= {0, 3, IGNORE_INDEX}
        labelled = warped_mask == 3
        if bright.any() or labelled.any():  # the crop holds the square: they overlap closely
            # (antialiasing moves the bright edge by up to a pixel; a misplaced mask overlaps
            # far less)
            assert (bright & labelled).sum() / (bright | labelled).sum() > 0.7
    assert seen_square, "no crop of five held the square"


# -- folders ---------------------------------------------------------------------------------
def write_pair(images_dir, masks_dir, stem, size=(24, 20), top=2, mode="L"):
    images_dir.mkdir(parents=True, exist_ok=True)
    masks_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(stem))
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        images_dir / f"{stem}.jpg")
    labels = rng.integers(0, top + 1, (size[1], size[0]), dtype=np.uint8)
    labels[0, :] = IGNORE_INDEX
    mask = Image.fromarray(labels, mode="L")
    if mode == "P":
        mask = mask.convert("P")
    elif mode == "RGB":
        mask = mask.convert("RGB")
    elif mode == "1":  # a 1-bit PNG: classes 0 and 1 only
        mask = Image.fromarray(labels % 2 == 1).convert("1")
    mask.save(masks_dir / f"{stem}.{'jpg' if mode == 'JPEG' else 'png'}")


def pair_folder(root, count=6, **kwargs):
    for i in range(count):
        write_pair(root / "images", root / "masks", f"img{i}", **kwargs)
    return root


def seg_bundle(root, **kwargs):
    return build_data(str(root), default_preprocess("seg-folder", 16, 3), augment=False,
                      kind="seg-folder", **kwargs)


def test_pair_folder_split_by_fraction_and_by_folders(tmp_path):
    bundle = seg_bundle(pair_folder(tmp_path / "flat"), val_fraction=0.34)
    assert (len(bundle.train), len(bundle.val)) == (4, 2) and bundle.kind == "seg-folder"
    assert bundle.classes == ["0", "1", "2"]  # from the highest index found
    image, mask = bundle.val[0]
    assert image.shape == (3, 16, 16) and mask.shape == (16, 16)
    assert IGNORE_INDEX in mask.unique().tolist()

    split = tmp_path / "split"
    pair_folder(split / "train", 3)
    pair_folder(split / "val", 2)
    (split / "classes.txt").write_text("sky\nroad\ncar\ntree\n")
    bundle = seg_bundle(split)
    assert (len(bundle.train), len(bundle.val)) == (3, 2)
    assert bundle.classes == ["sky", "road", "car", "tree"]


def test_voc_layout(tmp_path):
    root = tmp_path / "VOC2012"
    for i in range(4):
        write_pair(root / "JPEGImages", root / "SegmentationClass", f"2007_{i:06d}", top=20,
                   mode="P")
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("2007_000000\n2007_000001\n2007_000002\n")
    (lists / "val.txt").write_text("2007_000003\n")
    bundle = seg_bundle(root)
    assert bundle.classes == VOC_CLASSES and (len(bundle.train), len(bundle.val)) == (3, 1)
    (lists / "val.txt").write_text("2007_000009\n")
    with pytest.raises(ValueError, match="val.txt lists 2 file"):
        seg_bundle(root)


@pytest.mark.parametrize("damage, message", [
    ("orphan image", r"1 image\(s\) without a counterpart.*img9"),
    ("orphan mask", r"1 mask\(s\) without a counterpart.*img9"),
    ("size", r"mask .*img0.png' is 10x10 but its image is 24x20"),
    ("index", r"holds class index 5, but there are 3 classes"),
    ("colour", r"is a RGB image; expected a single-channel or palette PNG"),
    ("two images of one stem", r"img1.jpg' and '.*img1.png' share the stem 'img1'"),
])
def test_bad_pairs_are_one_line_errors_before_training(tmp_path, damage, message):
    root = pair_folder(tmp_path / "data", 4)
    (root / "classes.txt").write_text("a\nb\nc\n")
    if damage == "orphan image":
        write_pair(root / "images", tmp_path / "elsewhere", "img9")
    elif damage == "orphan mask":
        write_pair(tmp_path / "elsewhere", root / "masks", "img9")
    elif damage == "size":
        Image.fromarray(np.zeros((10, 10), np.uint8)).save(root / "masks" / "img0.png")
    elif damage == "index":
        write_pair(root / "images", root / "masks", "img1", top=5)
        labels = np.full((20, 24), 5, np.uint8)
        Image.fromarray(labels).save(root / "masks" / "img1.png")
    elif damage == "colour":
        write_pair(root / "images", root / "masks", "img2", mode="RGB")
    else:
        Image.fromarray(np.zeros((20, 24, 3), np.uint8)).save(root / "images" / "img1.png")
    with pytest.raises(ValueError, match=message) as error:
        seg_bundle(root, val_fraction=0.5)
    assert "\n" not in str(error.value)


def test_corrupt_files_are_skipped_and_counted(tmp_path):
    root = pair_folder(tmp_path / "data", 5)
    (root / "images" / "img3.jpg").write_bytes(b"not a jpeg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bundle = seg_bundle(root, val_fraction=0.4)
    assert len(bundle.train) + len(bundle.val) == 4
    assert bundle.skipped == [str(root / "images" / "img3.jpg")]
    assert any("skipped 1 unreadable" in str(w.message) for w in caught)


def test_folder_kinds_follow_the_task(tmp_path):
    root = pair_folder(tmp_path / "data", 2)
    assert get_task("segmentation").data_kind(str(root)) == "seg-folder"
    (tmp_path / "classes" / "cat").mkdir(parents=True)
    with pytest.raises(ValueError, match="neither a VOC nor a pair folder"):
        get_task("segmentation").data_kind(str(tmp_path / "classes"))


def test_a_validation_split_without_labelled_pixels_is_refused_before_training(tmp_path):
    root = tmp_path / "split"
    pair_folder(root / "train", 2)
    pair_folder(root / "val", 2)
    for mask in (root / "val" / "masks").iterdir():
        Image.fromarray(np.full((20, 24), IGNORE_INDEX, np.uint8)).save(mask)
    with pytest.raises(ValueError, match="has no labelled pixel: its 2 mask") as error:
        seg_bundle(root)
    assert f"the validation split of {str(root / 'val' / 'masks')!r}" in str(error.value)
    assert "\n" not in str(error.value)
    Image.fromarray(np.zeros((20, 24), np.uint8)).save(root / "val" / "masks" / "img0.png")
    assert len(seg_bundle(root).val) == 2  # one labelled pixel is enough


def test_a_1_bit_mask_reads_as_classes_0_and_1(tmp_path):
    root = tmp_path / "data"
    for i in range(2):
        write_pair(root / "images", root / "masks", f"img{i}", mode="1")
    with Image.open(root / "masks" / "img0.png") as mask:
        assert mask.mode == "1"
        expected = np.asarray(mask).astype(np.uint8)
    assert sorted(np.unique(expected).tolist()) == [0, 1]
    assert np.array_equal(read_mask(root / "masks" / "img0.png"), expected)
    bundle = build_data(str(root), default_preprocess("seg-folder", 24, 3), augment=False,
                        kind="seg-folder", val_fraction=0.5)
    assert bundle.classes == ["0", "1"]
    masks = [bundle.train[0][1], bundle.val[0][1]]
    assert all(set(mask.unique().tolist()) == {0, 1} for mask in masks)


def test_a_jpeg_mask_is_refused_as_lossy(tmp_path):
    root = pair_folder(tmp_path / "data", 3)
    (root / "masks" / "img1.png").unlink()
    write_pair(tmp_path / "elsewhere", root / "masks", "img1", mode="JPEG")
    with pytest.raises(ValueError, match=r"img1.jpg' is a .jpg file \(1 such in its folder\): "
                                         "masks must be lossless PNG") as error:
        seg_bundle(root, val_fraction=0.5)
    assert "without a counterpart" not in str(error.value)
