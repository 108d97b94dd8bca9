"""YOLO txt detection folders: data.yaml, images/, labels/ with normalised ``class cx cy w h``
lines; what is read, and the one-line errors before training."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from lightnets.data.detection import detection_data_kind, detection_datasets
from lightnets.train.config import DATA_DEFAULTS


def write_folder(root: Path, labels: dict[str, str], val: dict[str, str] | None = None,
                 names: str = "[cat, dog]") -> Path:
    """A YOLO folder of 40x20 images named by ``labels`` (stem -> label file text, ``None``: no
    label file) under images/train, and ``val`` likewise under images/val."""
    splits = {"train": labels, **({"val": val} if val is not None else {})}
    for split, files in splits.items():
        (root / "images" / split).mkdir(parents=True)
        (root / "labels" / split).mkdir(parents=True)
        for stem, text in files.items():
            Image.new("RGB", (40, 20), (90, 90, 90)).save(root / "images" / split / f"{stem}.png")
            if text is not None:
                (root / "labels" / split / f"{stem}.txt").write_text(text)
    lines = [f"names: {names}", "train: images/train"]
    if val is not None:
        lines.append("val: images/val")
    (root / "data.yaml").write_text("\n".join(lines) + "\n")
    return root


def test_boxes_classes_and_background_images(tmp_path):
    root = write_folder(tmp_path, {"a": "1 0.5 0.5 0.5 0.5\n0 0.25 0.25 0.1 0.2\n", "b": None,
                                   "c": ""}, val={"d": "0 0.5 0.5 1.0 1.0"},
                        names="{0: cat, 1: dog}")
    assert detection_data_kind(str(root)) == "yolo"
    data = detection_datasets(str(root), 40, augment=False)
    assert data.kind == "yolo" and data.classes == ["cat", "dog"]
    first = data.train.records[0]
    assert first.labels.tolist() == [2, 1]  # class c is label c + 1
    assert torch.allclose(first.boxes, torch.tensor([[10.0, 5.0, 30.0, 15.0],
                                                     [8.0, 3.0, 12.0, 7.0]]))
    assert [len(r.boxes) for r in data.train.records] == [2, 0, 0]  # b, c: background
    assert data.val.records[0].boxes.tolist() == [[0.0, 0.0, 40.0, 20.0]]
    image, target = data.train[0]
    assert image.shape == (3, 40, 40) and target["boxes"].shape == (2, 4)


def test_without_a_val_split_a_seeded_fraction_is_held_out(tmp_path):
    root = write_folder(tmp_path, {f"i{k}": "0 0.5 0.5 0.5 0.5" for k in range(5)})
    data = detection_datasets(str(root), 32, val_fraction=0.4)
    assert len(data.train) + len(data.val) == 5 and len(data.val) == 2


@pytest.mark.parametrize("text, message", [
    ("0 0.5 0.5 0.5", r"a\.txt:1: 4 values; expected 5 \(class cx cy w h\)"),
    ("0 0.5 0.5 0.5 0.5 0.1", "6 values; expected 5"),
    ("0 0.5 x 0.5 0.5", "is not five numbers"),
    ("2 0.5 0.5 0.5 0.5", r"class 2 is not one of the 2 classes of data.yaml \(0..1\)"),
    ("0.5 0.5 0.5 0.5 0.5", "class 0.5 is not one of the 2 classes"),
    ("0 0.5 1.5 0.5 0.5", "must be normalised to 0-1"),
])
def test_bad_label_lines_are_one_line_errors(tmp_path, text, message):
    root = write_folder(tmp_path, {"a": "1 0.5 0.5 0.2 0.2\n" + text, "b": "0 0.5 0.5 0.2 0.2"})
    with pytest.raises(ValueError, match=message.replace("a\\.txt:1", "a\\.txt:2")):
        detection_datasets(str(root), 32)


def test_folder_errors_are_one_line(tmp_path):
    root = write_folder(tmp_path / "orphan", {"a": "0 0.5 0.5 0.2 0.2", "b": "0 0.5 0.5 0.2 0.2"})
    (root / "labels" / "train" / "ghost.txt").write_text("0 0.5 0.5 0.2 0.2")
    with pytest.raises(ValueError, match=r"label file .*ghost\.txt has no image in"):
        detection_datasets(str(root), 32)
    root = write_folder(tmp_path / "names", {"a": "0 0.5 0.5 0.2 0.2"}, names="[]")
    with pytest.raises(ValueError, match="names must be a non-empty list"):
        detection_datasets(str(root), 32)
    root = write_folder(tmp_path / "split", {"a": "0 0.5 0.5 0.2 0.2"})
    (root / "data.yaml").write_text("names: [a]\ntrain: images/training\n")
    with pytest.raises(ValueError, match=r"the train folder .*images/training does not exist"):
        detection_datasets(str(root), 32)


def test_a_six_decimal_overshoot_is_rounding_and_a_real_one_is_counted(tmp_path):
    # 0.987655 + 0.024691 / 2 = 1.0000005: past the 40 px border by 2e-5 px, as labelling
    # tools' 6 decimals give; 0.99 + 0.1 / 2 reaches 1.6 px past it
    root = write_folder(tmp_path, {"a": "0 0.987655 0.5 0.024691 0.5\n",
                                   "b": "0 0.99 0.5 0.1 0.5\n"}, val={"c": "0 0.5 0.5 0.2 0.2\n"})
    with pytest.warns(Warning) as caught:
        data = detection_datasets(str(root), 40, augment=False)
    messages = [str(w.message) for w in caught]
    assert any("1 box(es) reaching past the image border clipped" in m and "b.txt:1" in m
               and "a.txt" not in m for m in messages), messages
    assert [float(r.boxes[0, 2]) for r in data.train.records] == [40.0, 40.0]


@pytest.mark.slow
def test_a_yolo_folder_trains_with_the_real_folders_defaults(tmp_path, run_cli):
    box = "0 0.5 0.5 0.5 0.5\n1 0.25 0.75 0.2 0.3\n"
    root = write_folder(tmp_path / "yolo", {f"t{i}": box for i in range(4)},
                        val={"v0": box, "v1": box})
    status, _, err = run_cli("train", "--model", "gfl", "--data", str(root), "--input-size",
                             "64", "--epochs", "1", "--batch-size", "2",
                             "--limit-train-batches", "1", "--no-progress", "--runs-dir",
                             str(tmp_path / "runs"), "--name", "yolo")
    assert status == 0, err
    config = json.loads((tmp_path / "runs" / "yolo" / "config.json").read_text())
    coco = DATA_DEFAULTS["coco"]
    assert (config["optimizer"], config["lr"]) == (coco["optimizer"], coco["lr"])
