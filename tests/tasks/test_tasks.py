"""The task seam: every registered task answers every question the workflow asks, the answers
that differ by task are the task's, and no module outside ``lightnets/tasks`` and the registry
compares task names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import lightnets
from lightnets.data import IGNORE_INDEX
from lightnets.registry import TASKS as TASK_NAMES
from lightnets.tasks import TASKS, Task, get_task, register_task, task_for
from lightnets.tasks.base import Task as BaseTask

PACKAGE = Path(lightnets.__file__).parent
# the questions each task must answer itself (the base class has no answer for them)
OWN_ANSWERS = ("folder_kind", "forward_loss", "hits_and_counts", "evaluate", "save_picture",
               "headline", "summary", "epoch_summary")
OWN_FACTS = ("name", "embedded_data", "expected_data", "metric", "metric_label",
             "second_metric", "val_columns", "curves", "curves_axis", "picture_stem",
             "picture_name", "reference_metric")


def test_every_task_of_the_registry_has_its_object():
    assert set(TASKS) == set(TASK_NAMES)
    for name in TASK_NAMES:
        assert get_task(name).name == name


@pytest.mark.parametrize("name", TASK_NAMES)
def test_each_task_answers_every_question_itself(name):
    task = get_task(name)
    for method in OWN_ANSWERS:
        if method == "hits_and_counts" and not task.train_accuracy:
            continue  # never asked: the task counts no training accuracy
        assert getattr(type(task), method) is not getattr(BaseTask, method), (name, method)
    for fact in OWN_FACTS:
        assert hasattr(task, fact), (name, fact)
    assert f"val_{task.metric}" in task.val_columns
    assert task.second_metric[0] in task.val_columns
    assert {column for column, _, _ in task.curves} <= set(task.val_columns)


def test_registering_a_name_twice_and_unknown_names_are_errors():
    with pytest.raises(ValueError, match="registered already"):
        register_task(get_task("classification"))
    with pytest.raises(ValueError, match="unknown task 'keypoints'; expected one of"):
        get_task("keypoints")


def test_models_find_their_task_by_name_and_by_module():
    assert task_for("mobilenet_v2").name == "classification"
    assert task_for("lraspp_mobilenet_v3_large").name == "segmentation"
    assert task_for("fcos").name == "detection"
    assert task_for(torch.nn.Linear(2, 2)).name == "classification"  # no task attribute


def test_the_background_rule_is_the_detection_tasks_alone():
    counts = {name: get_task(name).model_classes(10) for name in TASK_NAMES}
    assert counts == {"classification": 10, "segmentation": 10, "detection": 11}
    assert get_task("detection").describe_classes(11) == (
        "10 object classes (11 with the background)")


def test_embedded_data_of_another_task_is_named_in_one_line():
    with pytest.raises(ValueError, match="--data digits-det is detection data, the model is a "
                       "classification model; expected 'digits'"):
        get_task("classification").data_kind("digits-det")
    for name in TASK_NAMES:
        task = get_task(name)
        assert task.data_kind(task.embedded_data) == task.embedded_data


def test_segmentation_counts_labelled_pixels_only():
    logits = torch.zeros(1, 3, 2, 2)
    logits[0, 1] = 1.0  # every pixel predicts class 1
    masks = torch.tensor([[[1, 1], [2, IGNORE_INDEX]]])
    hits, counted = get_task("segmentation").hits_and_counts(logits, masks)
    assert (float(hits), float(counted)) == (2.0, 3.0)
    hits, counted = get_task("classification").hits_and_counts(torch.eye(3)[[0, 1, 1]],
                                                               torch.tensor([0, 1, 2]))
    assert (float(hits), float(counted)) == (2.0, 3.0)


def test_detectors_train_in_fp32_nchw_unless_asked():
    detection, classification = get_task("detection"), get_task("classification")
    assert detection.runtime_defaults("auto", None) == ("off", False)
    assert detection.runtime_defaults("bf16", True) == ("bf16", True)
    assert classification.runtime_defaults("auto", None) == ("auto", None)


def test_the_epoch_line_is_the_tasks():
    row = {"val_loss": 0.5, "val_top1": 0.9, "val_top5": 1.0, "val_miou": 0.4,
           "val_pixel_acc": 0.8, "val_map": 0.25, "val_map_50": 0.5, "val_map_75": 0.2}
    assert get_task("classification").epoch_summary(row) == (
        "val loss 0.5000 top1 90.00% top5 100.00%")
    assert get_task("segmentation").epoch_summary(row) == (
        "val loss 0.5000 mIoU 40.00% pixel acc 80.00%")
    assert get_task("detection").epoch_summary(row) == (
        "val mAP 0.250 mAP@.5 0.500 mAP@.75 0.200")


TASK_NAME = re.compile(r"[\"'](detection|segmentation|classification)[\"']")


def task_name_lines(root: Path) -> list[str]:
    """The lines of ``root``'s modules that spell a task name, outside ``tasks/`` and the
    registry (where the names are declared)."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        if relative.parts[0] == "tasks" or relative.name == "registry.py":
            continue
        found += [f"{relative}:{number}: {line.strip()}"
                  for number, line in enumerate(path.read_text().splitlines(), 1)
                  if TASK_NAME.search(line)]
    return found


def test_no_module_outside_the_tasks_compares_task_names():
    assert task_name_lines(PACKAGE) == []


def test_the_task_name_check_sees_a_comparison(tmp_path):
    (tmp_path / "loop.py").write_text('if task == "detection":\n    pass\n')
    (tmp_path / "tasks").mkdir()
    (tmp_path / "tasks" / "detection.py").write_text('name = "detection"\n')
    assert task_name_lines(tmp_path) == ['loop.py:1: if task == "detection":']


def test_a_task_registered_from_outside_the_package_is_found_by_name(monkeypatch):
    class Keypoints(Task):
        name = "keypoints"

    monkeypatch.delitem(TASKS, "keypoints", raising=False)
    task = register_task(Keypoints())
    try:
        assert get_task("keypoints") is task
    finally:
        TASKS.pop("keypoints")


def test_a_better_figure_is_the_tasks_direction(monkeypatch):
    task = get_task("classification")
    assert task.improves(0.5, None) and task.improves(0.6, 0.5) and not task.improves(0.5, 0.5)
    monkeypatch.setattr(type(task), "higher_is_better", False)  # a loss-like metric
    assert task.improves(0.4, 0.5) and not task.improves(0.6, 0.5)
