"""The training tests' helpers: a tiny ``TrainConfig`` (a few steps of the smallest MobileNetV2),
and a run killed after its first epoch."""

from __future__ import annotations

import dataclasses

import pytest

from lightnets.train import TrainConfig, loop, train


def tiny_config(tmp_path, **changes) -> TrainConfig:
    """Two epochs of three batches, one validation batch, runs under ``tmp_path``."""
    return dataclasses.replace(
        TrainConfig(model="mobilenet_v2_x0_25", epochs=2, batch_size=32, limit_train_batches=3,
                    limit_val_batches=1, progress=False, runs_dir=str(tmp_path)), **changes)


def train_killed_after_first_epoch(config: TrainConfig, monkeypatch) -> None:
    """Run ``config`` and kill it right after its first epoch's checkpoint is written."""
    real_save = loop.save_checkpoint

    def save_then_die(payload, path):
        real_save(payload, path)
        if path.name == "last.pt":
            raise KeyboardInterrupt

    monkeypatch.setattr(loop, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.undo()
