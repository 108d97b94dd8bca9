"""Pascal VOC folders: ImageSets splits or a seeded fraction, 1-based corners to pixels, the 20
VOC classes or the names found, difficult objects flagged, bad files refused by name."""

from __future__ import annotations

import pytest
import torch

from lightnets.data.detection import detection_data_kind, detection_datasets
from lightnets.data.detection.voc import VOC_CLASSES
from tests.data.detection_folders import voc_xml, write_voc


def test_imagesets_splits_corners_classes_and_difficult(tmp_path):
    objects = write_voc(tmp_path, count=6)
    data = detection_datasets(str(tmp_path), 64, augment=False)
    assert detection_data_kind(str(tmp_path)) == "voc" and data.kind == "voc"
    assert data.classes == list(VOC_CLASSES) and data.category_ids is None
    assert (len(data.train), len(data.val)) == (4, 2)
    for dataset, first in ((data.train, 0), (data.val, 4)):
        for index, record in enumerate(dataset.records):
            expected = objects[first + index]
            # VOC's 1-based inclusive corners: [xmin - 1, ymin - 1, xmax, ymax]
            assert record.boxes.tolist() == [[b[0] - 1, b[1] - 1, b[2], b[3]]
                                             for _, b, _ in expected]
            assert record.labels.tolist() == [VOC_CLASSES.index(n) + 1 for n, _, _ in expected]
            assert record.iscrowd.tolist() == [d for _, _, d in expected]
            assert record.image_id == index
            assert record.file.endswith(f"2007_{first + index:06d}.jpg")
    assert data.train.records[3].iscrowd.tolist() == [1, 0]  # difficult -> ignored by mAP
    image, target = data.val[0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.uint8
    assert target["boxes"].tolist() == (data.val.records[0].boxes * 2).tolist()


def test_training_leaves_out_difficult_boxes_validation_keeps_them(tmp_path):
    write_voc(tmp_path, count=6)
    for augment in (False, True):
        data = detection_datasets(str(tmp_path), 64, augment=augment)
        record = data.train.records[3]  # [difficult, ordinary]
        _, target = data.train[3]
        assert target["iscrowd"].tolist() == [0] and target["labels"].tolist() == \
            record.labels[1:].tolist() and len(target["boxes"]) == 1
        if not augment:
            assert target["boxes"].tolist() == (record.boxes[1:] * 2).tolist()
        assert type(target["boxes"]).__name__ == "BoundingBoxes"
    data.val.records[0] = data.train.records[3]  # validation: the same record, both boxes
    _, target = data.val[0]
    assert target["iscrowd"].tolist() == [1, 0] and len(target["boxes"]) == 2


def test_other_names_are_the_classes_sorted_and_no_lists_split_by_fraction(tmp_path):
    write_voc(tmp_path, count=9, names=("widget", "cat", "gadget"), splits=False)
    data = detection_datasets(str(tmp_path), 32, augment=False, val_fraction=0.34, seed=2)
    assert data.classes == ["cat", "gadget", "widget"]
    assert (len(data.train), len(data.val)) == (6, 3)
    files = {r.file for r in data.train.records} | {r.file for r in data.val.records}
    assert len(files) == 9
    other = detection_datasets(str(tmp_path), 32, augment=False, val_fraction=0.34, seed=3)
    assert [r.file for r in other.val.records] != [r.file for r in data.val.records]


def rewrite(root, index, text):
    (root / "Annotations" / f"2007_{index:06d}.xml").write_text(text)


@pytest.mark.parametrize("damage, expected", [
    (lambda root: rewrite(root, 1, "<annotation><object>"), r"2007_000001.xml: not valid XML"),
    (lambda root: rewrite(root, 1, voc_xml("2007_000001.jpg", 32, 24,
                                           [("cat", [9, 5, 4, 16], 0)])),
     r"2007_000001.xml: object 0 \(cat\): xmax < xmin or ymax < ymin"),
    (lambda root: rewrite(root, 1, voc_xml("2007_000001.jpg", 32, 24,
                                           [("cat", [1, 5, "wide", 16], 0)])),
     r"2007_000001.xml: object 0: <bndbox/xmax> is 'wide', expected a number"),
    (lambda root: rewrite(root, 2, voc_xml("2007_000002.jpg", 32, 24, [])
                          .replace("</annotation>", "<object><name>cat</name></object>"
                                   "</annotation>")),
     r"2007_000002.xml: object 0: missing <bndbox/xmin>"),
    (lambda root: rewrite(root, 1, voc_xml("2007_000001.jpg", 32, 24,
                                           [("cat", [40, 30, 50, 40], 0)])),
     r"2007_000001.xml: object 0 \(cat\): box .* lies wholly outside its 32x24 image"),
    (lambda root: (root / "JPEGImages" / "2007_000003.jpg").unlink(),
     r"2007_000003.xml: image file .*2007_000003.jpg is missing"),
    (lambda root: (root / "Annotations" / "2007_000004.xml").unlink(),
     r"image id '2007_000004' is listed but .*2007_000004.xml is missing"),
    (lambda root: rewrite(root, 1, voc_xml("2007_000001.jpg", 40, 24, [])),
     r"2007_000001.xml: <size> says 40x24 but .*2007_000001.jpg is 32x24"),
])
def test_bad_files_are_one_line_errors_naming_them(tmp_path, damage, expected):
    write_voc(tmp_path, count=6)
    damage(tmp_path)
    with pytest.raises(ValueError, match=expected) as error:
        detection_datasets(str(tmp_path), 64)
    assert "\n" not in str(error.value)
