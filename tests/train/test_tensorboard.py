"""``--log tensorboard``: the epoch's scalars and the validation picture in the run folder, and a
one-line error before any work where TensorBoard is missing."""

from __future__ import annotations

import sys

import pytest

from lightnets.cli import main
from lightnets.train.tensorboard import scalar_tag
from tests.conftest import TINY_TRAIN


@pytest.mark.slow
def test_scalars_and_the_validation_picture(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs = tmp_path / "runs"
    assert main(["train", *TINY_TRAIN, "--epochs", "2", "--limit-val-batches", "1",
                 "--model-ema", "--log", "tensorboard", "--workers", "0",
                 "--runs-dir", str(runs), "--name", "logged"]) == 0
    events = EventAccumulator(str(runs / "logged" / "tensorboard")).Reload()
    tags = events.Tags()
    assert {"train/loss", "train/acc", "val/top1", "val/loss", "ema_val/top1", "run/lr",
            "run/images_per_second"} <= set(tags["scalars"])
    assert [event.step for event in events.Scalars("val/top1")] == [1, 2]
    [picture] = tags["images"]
    assert picture == "val/picture" and len(events.Images(picture)) == 2
    assert events.Images(picture)[0].width > 100  # the confusion matrix, drawn


def test_tags():
    assert [scalar_tag(c) for c in ("val_top1", "ema_val_miou", "train_loss", "lr")] == [
        "val/top1", "ema_val/miou", "train/loss", "run/lr"]


def test_missing_tensorboard_is_one_line_before_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if it were not installed
    assert main(["train", *TINY_TRAIN, "--log", "tensorboard", "--runs-dir",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--log tensorboard needs tensorboard" in err and "lightnets[tensorboard]" in err
    assert len(err.splitlines()) == 1 and not any(tmp_path.iterdir())
