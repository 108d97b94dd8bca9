"""``--log tensorboard``: its tags, and a one-line error before any work where TensorBoard is
missing (the logged run: tests/train/test_ema.py)."""

from __future__ import annotations

import sys

from lightnets.cli import main
from lightnets.train.tensorboard import scalar_tag
from tests.conftest import TINY_TRAIN


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
