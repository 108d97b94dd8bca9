"""Settings chosen by timing them here (issue 31): the faster candidate wins, the plain setting
keeps its place within the noise, the choice is recorded and kept on resume, a setting the user
fixed is never timed, and a calibrated run equals an uncalibrated one with the same settings."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lightnets.registry import create_model
from lightnets.tasks import get_task
from lightnets.train import TrainConfig, calibrate, train
from lightnets.train.calibrate import PLAIN, Setting

from .conftest import tiny_config, train_killed_after_first_epoch

FAST = Setting("off", True, True)


def stub_timings(times: dict[Setting, float], calls: list[Setting] | None = None):
    def seconds_per_step(model, setting, batch, loss, *args, **kwargs):
        if calls is not None:
            calls.append(setting)
        return times.get(setting, 1.0)
    return seconds_per_step


def never_timed(*args, **kwargs):
    raise AssertionError("calibration ran")


def test_the_faster_candidate_wins_and_the_plain_one_keeps_its_place_within_the_noise():
    assert calibrate.choose([PLAIN, FAST], {PLAIN: 1.0, FAST: 0.5}.__getitem__)[0] == FAST
    assert calibrate.choose([PLAIN, FAST], {PLAIN: 1.0, FAST: 0.98}.__getitem__)[0] == PLAIN
    assert calibrate.choose([PLAIN, FAST], {PLAIN: 0.7, FAST: 1.0}.__getitem__)[0] == PLAIN


def test_the_candidates_hold_the_plain_loop_and_bf16_only_where_the_cpu_has_it():
    without = calibrate.candidates(bf16=False)
    with_bf16 = calibrate.candidates(bf16=True)
    assert without[0] == PLAIN and {s.amp for s in without} == {"off"}
    assert PLAIN in with_bf16 and {s.amp for s in with_bf16} == {"off", "bf16"}


def test_a_task_can_keep_its_runs_in_fp32_even_where_the_cpu_has_bf16():
    detection = calibrate.candidates(bf16=True,
                                     precisions=get_task("detection").calibration_precisions)
    assert detection[0] == PLAIN and {s.amp for s in detection} == {"off"}
    assert {s.channels_last for s in detection} == {False, True}


def test_a_detector_is_timed_on_random_boxes_of_the_real_size_and_left_alone():
    task = get_task("detection")
    images, targets = task.calibration_batch(2, (3, 64, 64), 3)
    assert [tuple(image.shape) for image in images] == [(3, 64, 64)] * 2
    assert all(0 <= image.min() and image.max() <= 1 for image in images)
    boxes = torch.cat([target["boxes"] for target in targets])
    labels = torch.cat([target["labels"] for target in targets])
    assert boxes.shape == (2, 4) and (boxes[:, 2:] > boxes[:, :2]).all()
    assert boxes.min() >= 0 and boxes.max() <= 64 and set(labels.tolist()) <= {1, 2, 3}
    model = create_model("gfl", num_classes=4, min_size=64, max_size=64)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seconds = calibrate.time_steps(
        model, FAST, (images, targets),
        lambda m, x, y: task.forward_loss(m, x, y, 0.0, 0.0)[1], warmup=1, timed=1)
    assert seconds > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_a_real_timing_leaves_the_model_alone():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.Flatten(), nn.LazyLinear(3))
    model(torch.zeros(1, 1, 8, 8))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batch = (torch.randn(4, 1, 8, 8), torch.randint(3, (4,)))
    seconds = calibrate.time_steps(model, FAST, batch,
                                   lambda m, x, y: nn.functional.cross_entropy(m(x), y),
                                   warmup=1, timed=2)
    assert seconds > 0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_cache_answers_the_second_time_and_an_unreadable_cache_counts_as_empty(tmp_path):
    path = tmp_path / "calibration.json"
    calls: list[Setting] = []
    first = calibrate.calibrated("key", [PLAIN, FAST],
                                 lambda s: calls.append(s) or {PLAIN: 1.0, FAST: 0.4}[s], path)
    assert first[0] == FAST and not first[2] and len(calls) == 3  # the first timed again
    second = calibrate.calibrated("key", [PLAIN, FAST], never_timed, path)
    assert second[0] == FAST and second[2] and second[1] == first[1]
    path.write_text("{not json")
    assert calibrate.calibrated("key", [PLAIN], lambda s: 1.0, path)[:2] == (PLAIN, {
        PLAIN.label(): 1000.0})


@pytest.mark.slow
def test_the_choice_is_recorded_kept_on_resume_and_equals_an_uncalibrated_run(tmp_path,
                                                                              monkeypatch):
    monkeypatch.setattr(calibrate, "MIN_RUN_STEPS", 0)
    calls: list[Setting] = []
    monkeypatch.setattr(calibrate, "time_steps", stub_timings({FAST: 0.1}, calls))
    monkeypatch.setattr(calibrate, "candidates", lambda **kwargs: [PLAIN, FAST])
    config = tiny_config(tmp_path, name="calibrated")
    train(config)
    assert calls == [PLAIN, FAST, PLAIN]
    recorded = json.loads((tmp_path / "calibrated" / "config.json").read_text())
    assert (recorded["channels_last"], recorded["fused_optimizer"]) == (True, True)
    assert recorded["calibration"]["chosen"] == FAST.label()
    calibrated = torch.load(tmp_path / "calibrated" / "last.pt", weights_only=True)["model"]

    # the same settings given by hand, without calibration: the same weights
    train(tiny_config(tmp_path, name="by-hand", amp="off", channels_last=True,
                      fused_optimizer=True, calibrate=False))
    by_hand = torch.load(tmp_path / "by-hand" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(calibrated[k], by_hand[k]) for k in calibrated)

    # killed and resumed: no second calibration, the same weights again
    killed = tiny_config(tmp_path, name="killed")
    train_killed_after_first_epoch(killed, monkeypatch)
    monkeypatch.setattr(calibrate, "time_steps", never_timed)
    train(TrainConfig(resume=str(tmp_path / "killed")))
    resumed = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)["model"]
    assert all(torch.equal(calibrated[k], resumed[k]) for k in calibrated)


def test_a_setting_the_user_fixed_is_never_timed(tmp_path, monkeypatch):
    monkeypatch.setattr(calibrate, "MIN_RUN_STEPS", 0)
    monkeypatch.setattr(calibrate, "time_steps", never_timed)
    train(tiny_config(tmp_path, epochs=1, channels_last=False, name="fixed"))
    recorded = json.loads((tmp_path / "fixed" / "config.json").read_text())
    assert recorded["calibration"] is None and recorded["channels_last"] is False


def test_a_choice_made_on_an_unsteady_machine_is_not_remembered(tmp_path):
    path = tmp_path / "calibration.json"
    timings = iter([1.0, 0.4, 1.5])  # the plain setting 50% slower the second time
    chosen = calibrate.calibrated("key", [PLAIN, FAST], lambda s: next(timings), path)[0]
    assert chosen == FAST and not path.exists()


@pytest.mark.slow
def test_a_detection_run_is_calibrated_on_its_own_kind_of_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(calibrate, "MIN_RUN_STEPS", 0)
    batches = []

    def seconds_per_step(model, setting, batch, loss, *args, **kwargs):
        batches.append(batch)
        return 0.1 if setting.channels_last else 1.0
    monkeypatch.setattr(calibrate, "time_steps", seconds_per_step)
    train(tiny_config(tmp_path, model="gfl", data="digits-det", input_size=64, epochs=1,
                      batch_size=4, name="detector"))
    images, targets = batches[0]
    assert len(images) == len(targets) == 4 and tuple(images[0].shape) == (3, 64, 64)
    recorded = json.loads((tmp_path / "detector" / "config.json").read_text())
    assert recorded["calibration"]["chosen"] == "fp32 channels-last fused"
    assert recorded["amp"] == "off" and recorded["channels_last"] is True
    assert not any("bf16" in label for label in recorded["calibration"]["ms_per_step"])
