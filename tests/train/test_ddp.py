"""Distributed data-parallel training: two CPU processes under torchrun make one run."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest

from lightnets.checkpoint import load_checkpoint
from lightnets.train import evaluate

# torchrun starts two training processes; each run has 300 s (subprocess timeout) of its own
pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.mark.xdist_group("ddp")
def test_two_process_cpu_run(tmp_path):
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "lightnets", "train",
               "--model", "mobilenet_v2_x0_25", "--epochs", "1", "--batch-size", "32",
               "--limit-train-batches", "3", "--device", "cpu", "--no-progress", "--json",
               "--runs-dir", str(runs)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])  # printed by rank 0 only
    assert done.stdout.count('"best_checkpoint"') == 1

    # one run folder with one checkpoint pair, written by rank 0
    assert [p.name for p in runs.iterdir()] == ["mobilenet_v2_x0_25-digits"]
    run = runs / "mobilenet_v2_x0_25-digits"
    assert sorted(p.name for p in run.iterdir()) == [
        "best.pt", "config.json", "curves.png", "last.pt", "metrics.csv"]
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 1 and 0.0 < float(rows[0]["train_loss"]) < 10
    # the validation tallies of both shards add up to the whole split, counted once
    top1 = float(rows[0]["val_top1"])
    assert summary["top1"] == pytest.approx(top1, rel=1e-5)
    alone = evaluate(run / "best.pt", device="cpu", workers=0)
    assert alone.count == 355 and alone.top1 == pytest.approx(top1, abs=1.5 / 355)
    assert alone.loss == pytest.approx(float(rows[0]["val_loss"]), rel=1e-4)
    assert load_checkpoint(run / "last.pt").epoch == 1


@pytest.mark.xdist_group("ddp")
@pytest.mark.parametrize("model, key", [("lraspp_mobilenet_v3_small", "val_miou"),
                                        ("fcos_mobilenet_v3_small", "val_map")])
def test_two_process_dense_runs(tmp_path, model, key):
    """Segmentation and detection under torchrun: the confusion matrix is summed and the
    detections gathered over the processes, so the run's validation figure equals one
    process evaluating the whole (limited) split."""
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "lightnets", "train", "--model", model,
               "--epochs", "1", "--batch-size", "8", "--input-size", "64",
               "--limit-train-batches", "2", "--device", "cpu", "--no-progress", "--json",
               "--runs-dir", str(runs), "--name", "dense"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = runs / "dense"
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    [row] = list(csv.DictReader((run / "metrics.csv").open()))
    alone = evaluate(run / "last.pt", device="cpu", workers=0, batch_size=64)
    whole = alone.miou if key == "val_miou" else alone.map
    assert whole == pytest.approx(float(row[key]), abs=1e-3)  # batch sizes differ: rounding
