"""The training configuration: defaults per kind of data, unknown fields and bad values refused."""

from __future__ import annotations

import pytest

from lightnets.checkpoint import Checkpoint
from lightnets.train import TrainConfig
from lightnets.train.config import resolve_config, resumed_config


def test_config_defaults_per_data_and_unknown_fields():
    digits = resolve_config(TrainConfig(), "digits", 224)
    assert (digits.input_size, digits.in_chans, digits.optimizer) == (32, 1, "sgd")
    folder = resolve_config(TrainConfig(epochs=3), "folder", 224)
    assert (folder.input_size, folder.in_chans, folder.optimizer, folder.epochs) == (
        224, 3, "adamw", 3)
    with pytest.raises(ValueError, match="unknown configuration field"):
        TrainConfig.from_dict({"model": "x", "lerning_rate": 1})
    with pytest.raises(ValueError, match="label_smoothing"):
        resolve_config(TrainConfig(label_smoothing=1.5), "digits", 224)


def test_settings_are_checked_against_each_other():
    with pytest.raises(ValueError, match=r"warmup_epochs \(100\) must be fewer than epochs \(1\)"):
        resolve_config(TrainConfig(warmup_epochs=100, epochs=1), "digits", 224)
    with pytest.raises(ValueError, match=r"warmup_epochs \(3\) must be fewer than epochs \(3\)"):
        resolve_config(TrainConfig(warmup_epochs=3, epochs=3), "digits", 224)
    # the default warm-up (1 epoch for the digits, 2 for folders) is cut to fit a short run
    assert resolve_config(TrainConfig(epochs=1), "digits", 224).warmup_epochs == 0.5
    assert resolve_config(TrainConfig(epochs=2), "folder", 224).warmup_epochs == 1.0
    assert resolve_config(TrainConfig(epochs=3), "folder", 224).warmup_epochs == 2.0
    assert resolve_config(TrainConfig(epochs=1, warmup_epochs=0), "digits", 224).warmup_epochs == 0


def test_two_sources_of_starting_weights_are_refused_with_the_settings():
    with pytest.raises(ValueError, match="init_from and --pretrained both give"):
        resolve_config(TrainConfig(init_from="pruned.pt", pretrained="weights.pth"), "digits", 32)


def test_label_smoothing_follows_the_task_of_the_data():
    assert resolve_config(TrainConfig(), "digits", 32).label_smoothing == 0.1
    assert resolve_config(TrainConfig(), "digits-seg", 520).label_smoothing == 0.0
    assert resolve_config(TrainConfig(), "digits-det", 320).label_smoothing == 0.0
    assert resolve_config(TrainConfig(label_smoothing=0.2), "digits-seg", 520).label_smoothing \
        == 0.2


@pytest.mark.parametrize("kind, expected", [("coco", 0.5), ("voc", 0.5), ("yolo", 0.5),
                                            ("digits-det", 0.0), ("digits", 0.0),
                                            ("folder", 0.0), ("digits-seg", 0.0)])
def test_the_mosaic_is_on_by_default_for_real_detection_folders_only(kind, expected):
    assert resolve_config(TrainConfig(), kind, 320).mosaic == expected
    # it is an augmentation: off without augmentation, and a value given is kept
    assert resolve_config(TrainConfig(augment=False), kind, 320).mosaic == 0.0
    assert resolve_config(TrainConfig(mosaic=0.25), "coco", 320).mosaic == 0.25
    assert resolve_config(TrainConfig(mosaic=0.0), "coco", 320).mosaic == 0.0


def test_a_run_from_before_the_mosaic_resumes_without_it():
    stored = TrainConfig(model="gfl", data="coco-folder", epochs=3).to_dict()
    del stored["mosaic"]
    checkpoint = Checkpoint("gfl", {"num_classes": 3}, {}, config=stored, epoch=1,
                            path="runs/gfl/last.pt")
    assert resumed_config(TrainConfig(resume="runs/gfl"), checkpoint).mosaic == 0.0


@pytest.mark.parametrize("kind, expected", [("coco", False), ("voc", False), ("yolo", False),
                                            ("digits-det", True), ("digits", False)])
def test_the_colour_jitter_is_on_by_default_for_digits_det_only(kind, expected):
    assert resolve_config(TrainConfig(), kind, 320).colour_jitter is expected
    assert resolve_config(TrainConfig(augment=False), kind, 320).colour_jitter is False
    assert resolve_config(TrainConfig(colour_jitter=True), "yolo", 320).colour_jitter is True
    assert resolve_config(TrainConfig(colour_jitter=False), "digits-det", 320).colour_jitter \
        is False


def test_a_run_from_before_the_colour_switch_resumes_with_its_jitter():
    stored = TrainConfig(model="gfl", data="coco-folder", epochs=3).to_dict()
    del stored["colour_jitter"]
    checkpoint = Checkpoint("gfl", {"num_classes": 3}, {}, config=stored, epoch=1,
                            path="runs/gfl/last.pt")
    assert resumed_config(TrainConfig(resume="runs/gfl"), checkpoint).colour_jitter is True
    # one that did not augment had none, and resumes as it was (no contradiction to refuse)
    checkpoint.config = {**stored, "augment": False}
    resumed = resumed_config(TrainConfig(resume="runs/gfl"), checkpoint)
    assert (resumed.augment, resumed.colour_jitter) == (False, False)
    assert resolve_config(resumed, "coco", 320).colour_jitter is False
