"""COCO-format detection folders: both layouts, labels from sorted category ids, letterboxed
pixels and boxes kept together, repairs counted, and every bad annotation refused by name."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
from torchvision import tv_tensors

from lightnets.data.detection import (DetectionDataWarning, detection_collate,
                                      detection_data_kind, detection_datasets,
                                      detection_requirements, letterbox, rgb_image)
from lightnets.data.detection.coco import read_coco
from lightnets.data.detection.records import Tally
from tests.data.detection_folders import COLORS, coco_images, write_coco


def quiet(data, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DetectionDataWarning)  # nothing to repair here
        return detection_datasets(str(data), 64, augment=False, **kwargs)


def test_split_folders_map_sorted_category_ids_to_labels_and_letterbox(tmp_path):
    train_json = write_coco(tmp_path / "train", coco_images(6))
    write_coco(tmp_path / "val", coco_images(3, seed=1))
    data = quiet(tmp_path)
    assert detection_data_kind(str(tmp_path)) == "coco" and data.kind == "coco"
    # ids 3 (cat) and 7 (dog) become labels 1 and 2, in sorted id order
    assert data.classes == ["cat", "dog"] and data.category_ids == [3, 7]
    assert (len(data.train), len(data.val)) == (6, 3)
    for index, entry in enumerate(train_json["images"]):
        image, target = data.train[index]
        assert isinstance(image, tv_tensors.Image) and image.dtype == torch.uint8
        assert image.shape == (3, 64, 64)
        assert target["image_id"] == entry["id"]  # the file's own ids, for saved predictions
        scale = 64 / max(entry["width"], entry["height"])  # 2 for 32x24 and 24x32
        assert target["scale"].tolist() == [scale, scale]
        boxes = target["boxes"]
        assert isinstance(boxes, tv_tensors.BoundingBoxes) and boxes.canvas_size == (64, 64)
        annotations = [a for a in train_json["annotations"] if a["image_id"] == entry["id"]]
        expected = [[x * scale, y * scale, (x + w) * scale, (y + h) * scale]
                    for x, y, w, h in (a["bbox"] for a in annotations)]
        assert boxes.tolist() == expected
        assert target["labels"].tolist() == [{3: 1, 7: 2}[a["category_id"]] for a in annotations]
        for (x1, y1, x2, y2), label in zip(boxes.int().tolist(), target["labels"].tolist()):
            inside = image[:, y1 + 1:y2 - 1, x1 + 1:x2 - 1].flatten(1)
            assert inside.unique(dim=1).tolist() == [[c] for c in COLORS[data.classes[label - 1]]]
        # the letterbox pads at the bottom (wide images) or the right (tall ones) with black
        padding = image[:, 48:, :] if entry["height"] < entry["width"] else image[:, :, 48:]
        assert padding.max() == 0 and image[:, :48, :48].sum(dim=0).min() > 0
    assert len(train_json["images"]) == 6 and not data.train.records[0].labels.numel()
    assert len(data.train[0][1]["labels"]) == 0  # an image without objects is kept
    images, targets = detection_collate([data.val[0], data.val[1]])
    assert len(images) == len(targets) == 2 and targets[1]["image_id"] == 101


def test_one_annotation_file_is_split_by_a_seeded_fraction(tmp_path):
    write_coco(tmp_path, coco_images(10))
    first, again = quiet(tmp_path, val_fraction=0.3, seed=4), quiet(tmp_path, val_fraction=0.3,
                                                                    seed=4)
    other = quiet(tmp_path, val_fraction=0.3, seed=5)
    def ids(dataset):
        return [r.image_id for r in dataset.records]

    assert (len(first.train), len(first.val)) == (7, 3)
    assert ids(first.val) == ids(again.val) != ids(other.val)
    assert sorted(ids(first.train) + ids(first.val)) == list(range(100, 110))


def test_training_augments_without_losing_boxes(tmp_path):
    write_coco(tmp_path, coco_images(6))
    data = detection_datasets(str(tmp_path), 64, augment=True, seed=0)
    index = next(i for i, r in enumerate(data.train.records) if len(r.labels))
    torch.manual_seed(0)
    draws = [data.train[index] for _ in range(6)]
    assert len({tuple(t["boxes"].flatten().tolist()) for _, t in draws}) > 1
    for image, target in draws:
        assert image.shape == (3, 64, 64) and image.dtype == torch.uint8
        boxes = target["boxes"]
        assert len(boxes) == len(target["labels"]) == len(target["iscrowd"])
        assert (boxes[:, 2:] - boxes[:, :2] >= 1).all() and boxes.min() >= 0
        assert boxes.max() <= 64
    empty = next(i for i, r in enumerate(data.train.records) if not len(r.labels))
    image, target = data.train[empty]  # an image without objects goes through augmentation
    assert target["boxes"].shape == (0, 4) and target["labels"].shape == (0,)


def test_repairs_are_counted_in_one_warning_before_training(tmp_path):
    images = coco_images(4)
    images[0]["boxes"] = [("cat", [28, 4, 10, 10]),    # reaches past the right border
                          ("dog", [3, 3, 0, 5])]       # zero width
    write_coco(tmp_path / "train", images)
    write_coco(tmp_path / "val", coco_images(2))
    (tmp_path / "train" / "images" / "img3.png").write_bytes(b"\x89PNG not an image")
    with pytest.warns(DetectionDataWarning) as caught:
        data = detection_datasets(str(tmp_path), 64, augment=False)
    assert len(caught) == 1
    message = str(caught[0].message)
    assert "1 box(es) reaching past the image border clipped" in message
    assert "1 box(es) of zero width or height dropped" in message
    assert "1 unreadable image file(s) skipped" in message and "img3.png" in message
    assert len(data.notes) == 3 and len(data.train) == 3
    assert data.train.records[0].boxes.tolist() == [[28.0, 4.0, 32.0, 14.0]]


def test_boxes_too_small_at_the_training_size_are_counted(tmp_path):
    images = coco_images(2)
    images[0]["boxes"] = [("cat", [2, 2, 8, 0.6]), ("dog", [12, 2, 8, 8])]
    write_coco(tmp_path / "train", images)
    write_coco(tmp_path / "val", images)
    with pytest.warns(DetectionDataWarning, match="2 box.*under 1 px once images are resized "
                                                  "to 32x32"):
        data = detection_datasets(str(tmp_path), 32, augment=False)
    assert data.val[0][1]["labels"].tolist() == [2]  # and SanitizeBoundingBoxes drops them


def corrupt(data: dict, tmp_path):
    del data
    (tmp_path / "annotations.json").write_text('{"images": [}')


def set_first(key, value):
    def change(data, tmp_path):
        data["annotations"][0][key] = value
    return change


def missing_file(data, tmp_path):
    (tmp_path / "images" / data["images"][1]["file_name"]).unlink()


def wrong_size(data, tmp_path):
    data["images"][1]["width"] = 50


def no_categories_key(data, tmp_path):
    del data["categories"]


def set_image(key, value):
    def change(data, tmp_path):
        data["images"][1][key] = value
    return change


@pytest.mark.parametrize("change, expected", [
    (corrupt, r"annotations.json: not valid JSON \(Expecting value at line 1 column 13\)"),
    (set_first("bbox", [1, 2, -3, 4]), r"annotations.json: annotation 1: bbox \[1, 2, -3, 4\] "
                                        "has a negative width or height"),
    (set_first("bbox", [1, 2, 3]), r"annotation 1: expected 'bbox' to be \[x, y, w, h\]"),
    (set_first("bbox", [1, 2, float("nan"), 3]), r"annotation 1: expected 'bbox'"),
    (set_first("category_id", 5), r"annotation 1: category_id 5 is not among the categories "
                                   r"\(3, 7\)"),
    (set_first("image_id", 999), "annotation 1: image_id 999 is not among the file's images"),
    (set_first("bbox", [40, 2, 5, 5]), r"annotation 1 \(image img1.png\): box \[40, 2, 45, 7\] "
                                        r"\(XYXY\) lies wholly outside its 24x32 image"),
    (missing_file, r"image id 101: file .*img1.png is missing"),
    (wrong_size, r"image id 101 is said to be 50x32 but .*img1.png is 24x32"),
    (no_categories_key, "expected a list under 'categories'"),
    (set_image("width", "24"), r"annotations.json: image 1: expected 'width' to be an integer "
                               r"number of pixels, got the str '24'"),
    (set_image("height", 32.5), r"image 1: expected 'height' to be an integer number of pixels, "
                                r"got the float 32.5"),
    (set_first("bbox", ["1", 2, 3, 4]), r"annotation 1: expected 'bbox' to be \[x, y, w, h\] "
                                         "of four finite numbers"),
])
def test_bad_annotations_are_one_line_errors_naming_them(tmp_path, change, expected):
    data = write_coco(tmp_path, coco_images(4))
    change(data, tmp_path)
    if change is not corrupt:
        (tmp_path / "annotations.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=expected) as error:
        detection_datasets(str(tmp_path), 64)
    assert "\n" not in str(error.value)


def test_splits_with_different_categories_are_refused(tmp_path):
    write_coco(tmp_path / "train", coco_images(3))
    write_coco(tmp_path / "val", coco_images(2), categories={3: "cat", 8: "dog"})
    with pytest.raises(ValueError, match="val/ and train/ .* have different categories"):
        detection_datasets(str(tmp_path), 64)


def test_detection_data_kind_requirements_and_bad_arguments(tmp_path):
    assert detection_data_kind("digits-det") == "digits-det"
    assert detection_requirements("digits-det") == [("pycocotools", "detection mAP"),
                                                    ("sklearn", "--data digits-det")]
    assert detection_requirements(str(tmp_path)) == [("pycocotools", "detection mAP")]
    assert detection_data_kind("digits") is None  # the classification digits
    assert detection_data_kind(str(tmp_path / "nowhere")) is None
    (tmp_path / "cls" / "a").mkdir(parents=True)
    assert detection_data_kind(str(tmp_path / "cls")) is None
    with pytest.raises(ValueError, match="is no detection data: expected 'digits-det'"):
        detection_datasets(str(tmp_path / "cls"), 64)
    with pytest.raises(ValueError, match="at least 16 pixels"):
        detection_datasets("digits-det", 8)
    write_coco(tmp_path / "one", coco_images(1))
    with pytest.raises(ValueError, match="1 readable image.*too few to hold out"):
        detection_datasets(str(tmp_path / "one"), 64)
    write_coco(tmp_path / "two", coco_images(3))
    with pytest.raises(ValueError, match=r"val_fraction must be in \(0, 1\)"):
        detection_datasets(str(tmp_path / "two"), 64, val_fraction=1.5)


def test_letterbox_of_a_new_image_as_predict_needs_it(tmp_path):
    write_coco(tmp_path, coco_images(2))
    image = rgb_image(tmp_path / "images" / "img1.png")  # 24 wide, 32 high
    assert image.shape == (3, 32, 24) and image.dtype == torch.uint8
    boxed, none, scale = letterbox(image, None, 48)
    assert boxed.shape == (3, 48, 48) and none is None and scale == (1.5, 1.5)
    assert boxed[:, :, 36:].max() == 0  # padded at the right
    content = boxed[:, :, :36].float().mean(dim=(1, 2))  # the image, scaled 1.5x
    assert torch.allclose(content, image.float().mean(dim=(1, 2)), atol=2)


def test_a_validation_split_without_boxes_is_refused_before_training(tmp_path):
    write_coco(tmp_path / "split" / "train", coco_images(4))
    write_coco(tmp_path / "split" / "val", [dict(image, boxes=[]) for image in coco_images(2)])
    expected = str(tmp_path / "split" / "val" / "annotations.json")
    with pytest.raises(ValueError, match="has no boxes: mAP needs ground truth") as error:
        quiet(tmp_path / "split")
    assert f"the validation split of {expected!r}" in str(error.value)
    assert "\n" not in str(error.value)
    # one file split by a fraction: only boxless images land in validation
    images = coco_images(4)
    images[1]["boxes"] = []  # with images 0 and 3, three boxless images; image 2 has boxes
    write_coco(tmp_path / "one", images)
    with pytest.raises(ValueError, match=r"annotations.json' \(a seeded 0.5 of its images\) "
                                         "has no boxes"):
        quiet(tmp_path / "one", val_fraction=0.5, seed=0)


def test_whole_float_sizes_are_taken(tmp_path):
    data = write_coco(tmp_path, coco_images(4))
    data["images"][1]["width"], data["images"][1]["height"] = 24.0, 32.0
    (tmp_path / "annotations.json").write_text(json.dumps(data))
    records, _ = read_coco(tmp_path, Tally(size=64))
    assert [record.size for record in records][1] == (32, 24)
