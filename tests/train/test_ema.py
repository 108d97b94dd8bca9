"""The weights' moving average (--model-ema): the average itself against a hand computation,
and in a run: its validation columns, its checkpoint state, and eval taking it."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
import pytest
import torch
from torch import nn

from lightnets.checkpoint import load_checkpoint
from lightnets.optional import available
from lightnets.train import TrainConfig, evaluate, train
from lightnets.train.ema import ModelEma
from tests.train.conftest import tiny_config, train_killed_after_first_epoch


def small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.ReLU(), nn.Linear(4, 2))


def test_ema_equals_a_hand_computed_average_over_two_steps():
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    ema = ModelEma(model, decay=0.15)
    states = [{k: v.clone() for k, v in model.state_dict().items()}]
    for _ in range(2):
        loss = model(torch.randn(8, 3)).square().mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        ema.update()
        states.append({k: v.clone() for k, v in model.state_dict().items()})
    # decays: min(0.15, 1/10) = 0.1 (warming up), then min(0.15, 2/11) = 0.15
    for key, start in states[0].items():
        if not start.is_floating_point():  # BatchNorm's batch counter: copied
            assert torch.equal(ema.module.state_dict()[key], states[2][key])
            continue
        first = 0.1 * start + 0.9 * states[1][key]
        expected = 0.15 * first + 0.85 * states[2][key]
        torch.testing.assert_close(ema.module.state_dict()[key], expected, msg=key)
    assert ema.module.state_dict()["1.num_batches_tracked"] == 2  # running stats averaged too
    assert not ema.module.training and ema.updates == 2
    assert not any(p.requires_grad for p in ema.module.parameters())


def test_ema_state_round_trip_and_bad_decay():
    model = small_net()
    ema = ModelEma(model, decay=0.9)
    with torch.no_grad():
        model[0].weight.add_(1.0)
    ema.update()
    other = ModelEma(small_net(), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert other.decay == 0.9 and other.updates == 1
    assert torch.equal(other.module[0].weight, ema.module[0].weight)
    with pytest.raises(ValueError, match=r"decay must be in \(0, 1\)"):
        ModelEma(model, decay=1.0)


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """Two tiny epochs with the moving average, two batches per optimiser step, logged to
    TensorBoard where it is installed."""
    runs = tmp_path_factory.mktemp("ema")
    log = "tensorboard" if available("tensorboard") else None
    return train(tiny_config(runs, name="ema", model_ema=True, model_ema_decay=0.99,
                             accumulate=2, workers=0, log=log))


@pytest.mark.slow
def test_a_run_validates_saves_and_deploys_the_average(ema_run):
    rows = list(csv.DictReader((ema_run.run_dir / "metrics.csv").open()))
    assert {"ema_val_loss", "ema_val_top1", "ema_val_top5"} <= set(rows[0])
    last = load_checkpoint(ema_run.last_checkpoint)
    # 3 batches an epoch in groups of 2 (the last group of one): 2 updates an epoch
    assert last.ema["updates"] == 4 and last.ema["decay"] == 0.99
    assert last.scheduler["last_epoch"] == 4
    assert set(last.ema["model"]) == set(last.model)
    assert any(not torch.equal(last.ema["model"][k], v) for k, v in last.model.items())
    # best.pt is picked, and eval scores, by the average: the figure its column logged
    best_row = max(rows, key=lambda row: float(row["ema_val_top1"]))
    assert ema_run.best_score == pytest.approx(float(best_row["ema_val_top1"]))
    result = evaluate(ema_run.last_checkpoint, device="cpu", workers=0, limit_batches=1,
                      batch_size=64)
    assert result.top1 == pytest.approx(float(rows[-1]["ema_val_top1"]), abs=1e-6)
    built, raw = last.build_model(), last.build_model(raw=True)
    assert torch.equal(built.state_dict()[next(iter(last.model))],
                       last.ema["model"][next(iter(last.model))])
    assert all(torch.equal(raw.state_dict()[k], v) for k, v in last.model.items())


@pytest.mark.slow
def test_resume_with_ema_ends_with_the_same_average(ema_run, tmp_path, monkeypatch):
    config = tiny_config(tmp_path, name="killed", model_ema=True, model_ema_decay=0.99,
                         accumulate=2, workers=0)
    train_killed_after_first_epoch(config, monkeypatch)
    train(TrainConfig(resume=str(tmp_path / "killed"), progress=False))
    straight = load_checkpoint(ema_run.last_checkpoint)
    resumed = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert resumed.ema["updates"] == straight.ema["updates"]
    for key, tensor in straight.ema["model"].items():
        assert torch.equal(tensor, resumed.ema["model"][key]), key
    for key, tensor in straight.model.items():
        assert torch.equal(tensor, resumed.model[key]), key


@pytest.mark.slow
@pytest.mark.timeout(600)
@pytest.mark.xdist_group("ddp")
def test_two_processes_hold_one_average(tmp_path):
    """Under torchrun (gloo) every process averages rank 0's weights: the figure the processes
    validate together is that of the average rank 0 saved."""
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "lightnets", "train",
               "--model", "mobilenet_v2_x0_25", "--epochs", "1", "--batch-size", "32",
               "--limit-train-batches", "3", "--device", "cpu", "--no-progress",
               "--model-ema", "--accumulate", "2", "--runs-dir", str(runs), "--name", "ddp"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    [row] = list(csv.DictReader((runs / "ddp" / "metrics.csv").open()))
    alone = evaluate(runs / "ddp" / "last.pt", device="cpu", workers=0)
    assert alone.count == 355
    assert alone.loss == pytest.approx(float(row["ema_val_loss"]), rel=1e-4)
    assert load_checkpoint(runs / "ddp" / "last.pt").ema["updates"] == 2


@pytest.mark.slow
def test_a_segmenter_keeps_and_logs_the_average(tmp_path):
    """Every task validates the average: here mIoU (detectors' mAP comes the same way, from the
    task's validation row), with the picture of example predictions logged."""
    pytest.importorskip("tensorboard")
    result = train(TrainConfig(model="lraspp_mobilenet_v3_small", epochs=1, batch_size=8,
                               input_size=64, limit_train_batches=2, limit_val_batches=1,
                               progress=False, runs_dir=str(tmp_path), name="dense",
                               model_ema=True, log="tensorboard", workers=0))
    [row] = list(csv.DictReader((result.run_dir / "metrics.csv").open()))
    assert 0 <= float(row["ema_val_miou"]) <= 1
    assert load_checkpoint(result.last_checkpoint).ema["updates"] == 2
    assert tensorboard_tags(result.run_dir)["images"] == ["val/picture"]


def tensorboard_tags(run_dir) -> dict:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(run_dir / "tensorboard")).Reload().Tags()


@pytest.mark.slow
def test_the_run_logs_scalars_and_the_picture_to_tensorboard(ema_run):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(ema_run.run_dir / "tensorboard")).Reload()
    tags = events.Tags()
    assert {"train/loss", "train/acc", "val/top1", "val/loss", "ema_val/top1", "run/lr",
            "run/images_per_second"} <= set(tags["scalars"])
    assert [event.step for event in events.Scalars("ema_val/top1")] == [1, 2]
    [picture] = tags["images"]
    assert picture == "val/picture" and len(events.Images(picture)) == 2
    assert events.Images(picture)[0].width > 100  # the confusion matrix, drawn
