"""``benchmarks/mnfinder_boxes.py``, the converter of issue 27's real detection set, on the
hand-made wheel of ``tests/segment/test_mnfinder_pairs.py``: one box per connected region of each
class, in tiles, small regions dropped, and a YOLO folder lightnets reads."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch

from lightnets.data.detection import detection_datasets
from tests.segment.test_mnfinder_pairs import fake_wheel

BENCHMARKS = Path(__file__).parents[2] / "benchmarks"


def load_script(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCHMARKS))  # it imports its sibling mnfinder_pairs
    spec = importlib.util.spec_from_file_location("mnfinder_boxes",
                                                  BENCHMARKS / "mnfinder_boxes.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_wheel_becomes_a_yolo_folder_of_boxes(tmp_path, monkeypatch):
    script = load_script(monkeypatch)
    wheel = fake_wheel(tmp_path / "m.whl")
    counts = script.convert(wheel, tmp_path / "boxes", 128, 3)
    # train: the nucleus (a hole where the micronucleus is) and that micronucleus in the first
    # tile, the 5x5 micronucleus in the last; val: the same nucleus and micronucleus
    assert counts == {"train": 4, "val": 2, "train boxes": 3, "val boxes": 2}
    data = detection_datasets(str(tmp_path / "boxes"), 128, augment=False)
    assert data.classes == ["nucleus", "micronucleus"]
    first, last = data.train.records[0], data.train.records[3]
    assert first.labels.tolist() == [1, 2] and last.labels.tolist() == [2]
    assert torch.equal(first.boxes, torch.tensor([[20.0, 10.0, 90.0, 100.0],
                                                  [50.0, 50.0, 60.0, 60.0]]))
    assert torch.equal(last.boxes, torch.tensor([[72.0, 72.0, 77.0, 77.0]]))
    assert [len(r.boxes) for r in data.train.records[1:3]] == [0, 0]  # background tiles
    # regions under --min-side pixels across are dropped: the 5x5 micronucleus
    assert script.convert(wheel, tmp_path / "six", 128, 6)["train boxes"] == 2
