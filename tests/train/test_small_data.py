"""Tiny data is not slowed by by-products (issue 30, small data): the curves are redrawn only
while drawing stays within PLOT_SHARE of the run's time, and after the last epoch; precise BN
averages over at most one pass of the training batches."""

from __future__ import annotations

import time

import pytest

from lightnets.checkpoint import load_checkpoint
from lightnets.train import loop, report, train
from tests.train.conftest import tiny_config


@pytest.mark.slow  # four short epochs, two drawn at 2 s each
def test_slow_curves_are_drawn_first_and_last_only(tmp_path, monkeypatch):
    drawn = []
    real_plot = report.plot_curves

    def slow_plot(run_dir, history, task, title):
        real_plot(run_dir, history, task, title)
        drawn.append(len(history))
        time.sleep(2.0)  # far above PLOT_SHARE of these sub-second epochs

    monkeypatch.setattr(report, "plot_curves", slow_plot)
    result = train(tiny_config(tmp_path, epochs=4, limit_train_batches=1, name="plots"))
    assert drawn == [1, 4]
    assert (result.run_dir / "curves.png").stat().st_size > 1000
    best = load_checkpoint(result.best_checkpoint)  # written from last.pt's bytes
    assert best.best_score == result.best_score and 1 <= best.epoch <= 4
    assert [row["epoch"] for row in best.history] == list(range(1, best.epoch + 1))


@pytest.mark.slow  # a training run
def test_precise_bn_takes_one_pass_of_a_short_epoch(tmp_path, monkeypatch):
    counts = []
    real = loop.recompute_batchnorm_stats

    def counted(model, images, forward=None):
        counts.append(real(model, images, forward))
        return counts[-1]

    monkeypatch.setattr(loop, "recompute_batchnorm_stats", counted)
    train(tiny_config(tmp_path, epochs=1, limit_train_batches=2, precise_bn_batches=20))
    assert counts == [2]
