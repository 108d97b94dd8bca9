"""COCO mAP through pycocotools: perfect predictions score 1, shifted ones less, a missed class
loses its AP alone; empty predictions, crowd boxes, gathered per-process records, a missing
pycocotools, and COCO results that pycocotools reads back against the data's own file."""

from __future__ import annotations

import json
import pickle
import sys

import pytest
import torch
from torchvision import tv_tensors

from lightnets.metrics import (DetectionEvaluator, evaluate_detections, save_coco_detections,
                               to_coco_detections)
from lightnets.optional import MissingDependencyError

CLASSES = ["cat", "dog", "bird"]


def targets(count: int = 12) -> list[dict]:
    """``count`` images of 64x64 with one to three boxes of the three classes."""
    generator = torch.Generator().manual_seed(0)
    made = []
    for image_id in range(count):
        number = image_id % 3 + 1
        corner = torch.randint(0, 30, (number, 2), generator=generator).float()
        side = torch.randint(8, 30, (number, 2), generator=generator).float()
        boxes = tv_tensors.BoundingBoxes(torch.cat([corner, corner + side], 1), format="XYXY",
                                         canvas_size=(64, 64))
        labels = (torch.arange(number) + image_id) % 3 + 1
        made.append({"boxes": boxes, "labels": labels, "image_id": image_id,
                     "iscrowd": torch.zeros(number, dtype=torch.int64)})
    return made


def perfect(truth: list[dict]) -> list[dict]:
    return [{"boxes": t["boxes"].clone(), "labels": t["labels"].clone(),
             "scores": torch.linspace(0.9, 0.5, len(t["labels"]))} for t in truth]


def test_perfect_predictions_score_one_and_shifted_ones_less():
    truth = targets()
    result = evaluate_detections(perfect(truth), truth, CLASSES)
    assert result["map"] == result["map_50"] == result["map_75"] == 1.0
    assert result["per_class_ap"] == {"cat": 1.0, "dog": 1.0, "bird": 1.0}
    assert (result["count"], result["objects"], result["detections"]) == (12, 24, 24)
    shifted = perfect(truth)
    for prediction in shifted:
        prediction["boxes"] = prediction["boxes"] + 1.0  # IoU still over 0.5, under 0.95
    worse = evaluate_detections(shifted, truth, CLASSES)
    assert 0.0 < worse["map"] < 1.0 and worse["map_50"] == 1.0 and worse["map_75"] < 1.0
    assert all(0.0 < ap < 1.0 for ap in worse["per_class_ap"].values())
    json.dumps(worse)  # plain numbers, ready for --json


def test_a_missed_class_loses_its_ap_alone_and_wrong_labels_cost():
    truth = targets()
    predictions = perfect(truth)
    for prediction in predictions:
        keep = prediction["labels"] != 2
        prediction.update({k: v[keep] for k, v in prediction.items()})
    result = evaluate_detections(predictions, truth, CLASSES)
    assert result["per_class_ap"] == {"cat": 1.0, "dog": 0.0, "bird": 1.0}
    assert result["map"] == pytest.approx(2 / 3)
    relabelled = perfect(truth)
    relabelled[0]["labels"] = relabelled[0]["labels"] % 3 + 1
    assert evaluate_detections(relabelled, truth, CLASSES)["map"] < 1.0


def test_empty_predictions_score_zero_and_unseen_classes_have_no_ap():
    truth = targets(4)
    nothing = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.int64),
                "scores": torch.zeros(0)} for _ in truth]
    result = evaluate_detections(nothing, truth, CLASSES)
    assert result["map"] == result["map_50"] == 0.0 and result["detections"] == 0
    assert set(result["per_class_ap"].values()) == {0.0}
    more = evaluate_detections(perfect(truth), truth, CLASSES + ["fish"])
    assert more["per_class_ap"]["fish"] is None and more["map"] == 1.0
    truth[1] = {**truth[1], "boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=int),
                "iscrowd": torch.zeros(0, dtype=int)}  # an image without objects
    predictions = perfect(truth)
    predictions[1] = {"boxes": torch.tensor([[1.0, 1, 20, 20]]), "labels": torch.tensor([1]),
                      "scores": torch.tensor([0.99])}  # a false positive there
    assert evaluate_detections(predictions, truth, CLASSES)["per_class_ap"]["cat"] < 1.0


def test_crowd_boxes_and_background_detections_are_ignored():
    truth = targets(6)
    truth[0]["iscrowd"] = torch.ones_like(truth[0]["iscrowd"])  # one box, ignored
    predictions = perfect(truth)
    predictions[0] = {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=int),
                      "scores": torch.zeros(0)}  # missing a crowd costs nothing
    predictions[2] = {k: torch.cat([v, extra]) for (k, v), extra in zip(
        predictions[2].items(), (torch.tensor([[0.0, 0, 30, 30]]), torch.tensor([0]),
                                 torch.tensor([0.99])))}  # label 0: the background
    result = evaluate_detections(predictions, truth, CLASSES)
    assert result["map"] == 1.0 and result["objects"] == 11 and result["detections"] == 11


def test_records_gathered_from_processes_merge_to_the_same_result():
    truth, predictions = targets(), perfect(targets())
    for prediction in predictions[::2]:
        prediction["boxes"] = prediction["boxes"] + 3.0
    whole = DetectionEvaluator(CLASSES)
    for start in range(0, 12, 4):  # batch by batch
        whole.update(predictions[start:start + 4], truth[start:start + 4])
    ranks = [DetectionEvaluator(CLASSES) for _ in range(2)]
    for rank, evaluator in enumerate(ranks):  # a DistributedSampler's share, padded by repeats
        share = list(range(rank, 12, 2)) + [rank]
        evaluator.update([predictions[i] for i in share], [truth[i] for i in share])
    # all_gather_object pickles each process's records
    gathered = [pickle.loads(pickle.dumps(evaluator.records)) for evaluator in ranks]
    assert all(type(r["boxes"]) is torch.Tensor for records in gathered for r in records)
    ranks[0].merge(gathered)
    assert ranks[0].compute() == whole.compute()
    assert whole.compute()["map"] < 1.0


def test_bad_evaluations_are_one_line_errors():
    truth = targets(3)
    with pytest.raises(ValueError, match="2 predictions for 3 targets"):
        evaluate_detections(perfect(truth)[:2], truth, CLASSES)
    with pytest.raises(ValueError, match=r"ground-truth labels must lie in 1..2 \(the 2 "
                                         r"classes; 0 is the background\), got 1..3"):
        evaluate_detections(perfect(truth), truth, CLASSES[:2])
    predictions = perfect(truth)
    predictions[1]["labels"] = predictions[1]["labels"] + 3
    with pytest.raises(ValueError, match=r"predicted labels must lie in 1..3 .*, got 1..6"):
        evaluate_detections(predictions, truth, CLASSES)
    none = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=int),
             "image_id": i} for i in range(2)]
    with pytest.raises(ValueError, match="mAP needs ground-truth boxes; the 2 image"):
        evaluate_detections(perfect(none), none, CLASSES)


def test_missing_pycocotools_names_the_detect_extra(monkeypatch):
    for module in ("pycocotools", "pycocotools.coco", "pycocotools.cocoeval"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=r"detection mAP needs pycocotools, which "
                                                     r"is not installed \(pip install "
                                                     r"'lightnets\[detect\]'\)"):
        evaluate_detections(perfect(targets(2)), targets(2), CLASSES)


def test_coco_results_round_trip_through_pycocotools(tmp_path):
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    from lightnets.data.detection import detection_datasets
    from tests.data.detection_folders import coco_images, write_coco

    write_coco(tmp_path / "train", coco_images(3))
    original = write_coco(tmp_path / "val", coco_images(6, seed=2))
    data = detection_datasets(str(tmp_path), 80, augment=False)  # letterboxed: scale 2.5
    truth = [data.val[i][1] for i in range(len(data.val))]
    detections = to_coco_detections(perfect(truth), truth, data.category_ids)
    boxes = sorted((d["image_id"], d["category_id"], d["bbox"]) for d in detections)
    assert boxes == sorted((a["image_id"], a["category_id"], a["bbox"])
                           for a in original["annotations"])  # the file's ids and pixels
    path = save_coco_detections(tmp_path / "detections.json", detections)
    ground = COCO(str(tmp_path / "val" / "annotations.json"))
    evaluation = COCOeval(ground, ground.loadRes(str(path)), iouType="bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    assert evaluation.stats[0] == 1.0
    assert to_coco_detections(perfect(truth), truth)[0]["category_id"] in (1, 2)
