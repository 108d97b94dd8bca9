"""Checkpoints written before the best figure was renamed (``best_top1``, no ``best_metric``)
still resume, evaluate and export."""

from __future__ import annotations

import torch

from lightnets.checkpoint import load_checkpoint
from lightnets.export import export_model, from_checkpoint
from lightnets.train import TrainConfig, evaluate, train
from tests.conftest import DIGITS_RUN
from tests.train.conftest import tiny_config


def as_written_before(path) -> None:
    """Rewrite ``path`` in the layout of the files written before: ``best_top1``."""
    values = torch.load(path, map_location="cpu", weights_only=True)
    values["best_top1"] = values.pop("best_score")
    del values["best_metric"]
    torch.save(values, path)


@DIGITS_RUN
def test_an_old_checkpoint_resumes_evaluates_and_exports(tmp_path):
    first = train(tiny_config(tmp_path, name="old", epochs=1))
    for name in ("last.pt", "best.pt"):
        as_written_before(first.run_dir / name)
    old = load_checkpoint(first.last_checkpoint)
    assert old.best_score == first.best_score > 0 and old.best_metric is None

    resumed = train(TrainConfig(resume=str(first.run_dir), epochs=2))
    again = load_checkpoint(resumed.last_checkpoint)
    assert again.epoch == 2 and again.best_metric == "top1"
    assert again.best_score == max(row["val_top1"] for row in again.history)

    result = evaluate(first.best_checkpoint, limit_batches=1)
    assert result.count > 0 and 0 <= result.top1 <= 1
    exported = export_model(from_checkpoint(first.best_checkpoint), "onnx",
                            tmp_path / "old.onnx")
    assert exported.verification.passed and exported.path.is_file()
