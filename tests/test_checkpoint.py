"""The lightnets checkpoint: plain data only, atomic writes, and files that are not ours refused."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
import torch

from lightnets.checkpoint import FORMAT, load_checkpoint, save_checkpoint
from tests.conftest import DIGITS_RUN


@DIGITS_RUN
def test_checkpoint_holds_everything_as_plain_data(digits_run):
    raw = torch.load(digits_run / "last.pt", weights_only=True)  # no pickled code inside
    assert raw["format"] == FORMAT and raw["model_name"] == "mobilenet_v2_x0_25"
    assert raw["model_args"] == {"num_classes": 10, "in_chans": 1} and raw["epoch"] == 2
    for key in ("model", "optimizer", "scheduler", "scaler", "config", "preprocess", "history"):
        assert key in raw
    assert isinstance(raw["rng"]["torch"], torch.Tensor)
    assert raw["preprocess"]["resize"] == [32, 32] and raw["class_names"][3] == "3"


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)
    real_write = Path.write_bytes

    def disk_fills_up(self, data):  # half the bytes land, then the disk is full
        real_write(self, bytes(data)[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(Path, "write_bytes", disk_fills_up)
    with pytest.raises(OSError, match=f"cannot write {path}: No space left on device"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


class Payload:
    """Pickled by reference: ``torch.load(weights_only=True)`` must refuse it."""


def test_code_and_foreign_files_are_refused(tmp_path):
    torch.save({"format": FORMAT, "payload": Payload()}, tmp_path / "code.pt")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_checkpoint(tmp_path / "code.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a lightnets checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
