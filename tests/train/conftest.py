"""The training tests' helper: a tiny ``TrainConfig`` (a few steps of the smallest MobileNetV2)."""

from __future__ import annotations

import dataclasses

from lightnets.train import TrainConfig


def tiny_config(tmp_path, **changes) -> TrainConfig:
    """Two epochs of three batches, one validation batch, runs under ``tmp_path``."""
    return dataclasses.replace(
        TrainConfig(model="mobilenet_v2_x0_25", epochs=2, batch_size=32, limit_train_batches=3,
                    limit_val_batches=1, progress=False, runs_dir=str(tmp_path)), **changes)
