"""The CUDA path, where a GPU is present (skipped with its reason elsewhere): two epochs with
AMP fp16 (through the gradient scaler) and bf16, channels-last, with the recipe's moving
average and accumulation; exact resume; and, with two GPUs, DDP over NCCL with SyncBatchNorm.
Run with ``pytest -m gpu``."""

from __future__ import annotations

import csv
import dataclasses
import json
import math
import os
import subprocess
import sys

import pytest
import torch

from lightnets.checkpoint import load_checkpoint
from lightnets.train import TrainConfig, evaluate, train
from tests.train.conftest import tiny_config, train_killed_after_first_epoch

pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(),
                                 reason="needs a CUDA GPU (torch.cuda.is_available() is False)")]
DTYPES = {"fp16": "float16", "bf16": "bfloat16"}


def gpu_config(tmp_path, amp: str, **changes) -> TrainConfig:
    return tiny_config(tmp_path, device="cuda", amp=amp, channels_last=True, model_ema=True,
                       accumulate=2, workers=2, **changes)


@pytest.mark.parametrize("amp", ["fp16", "bf16"])
def test_two_epochs_with_amp_and_channels_last(tmp_path, amp):
    if amp == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this GPU has no bf16")
    result = train(gpu_config(tmp_path, amp, name=amp))
    recorded = json.loads((result.run_dir / "config.json").read_text())
    assert (recorded["amp"], recorded["channels_last"]) == (DTYPES[amp], True)
    assert recorded["device"].startswith("cuda")
    rows = list(csv.DictReader((result.run_dir / "metrics.csv").open()))
    assert len(rows) == 2 and all(math.isfinite(float(row["train_loss"])) for row in rows)
    last = load_checkpoint(result.last_checkpoint)
    if amp == "fp16":  # the scaler ran, and its scale is kept for a resume
        assert last.scaler["scale"] > 0 and last.scaler["_growth_tracker"] >= 0
    assert last.ema["updates"] == 4
    again = evaluate(result.last_checkpoint, device="cuda", limit_batches=1, batch_size=64)
    assert again.top1 == pytest.approx(float(rows[-1]["ema_val_top1"]), abs=1.5 / 64)


def test_resume_on_the_gpu(tmp_path, monkeypatch):
    # cuDNN's fastest kernels may differ from run to run; its deterministic ones do not
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    config = gpu_config(tmp_path, "fp16")
    straight = train(dataclasses.replace(config, name="straight"))
    train_killed_after_first_epoch(dataclasses.replace(config, name="killed"), monkeypatch)
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    train(TrainConfig(resume=str(tmp_path / "killed"), progress=False))
    first = load_checkpoint(straight.last_checkpoint)
    resumed = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert resumed.epoch == 2 and resumed.scaler["scale"] == first.scaler["scale"]
    for key, tensor in first.model.items():
        torch.testing.assert_close(resumed.model[key], tensor, rtol=1e-4, atol=1e-5, msg=key)
    for key, tensor in first.ema["model"].items():
        torch.testing.assert_close(resumed.ema["model"][key], tensor, rtol=1e-4, atol=1e-5,
                                   msg=key)


@pytest.mark.timeout(600)
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two CUDA GPUs")
def test_two_gpu_ddp_over_nccl_with_sync_bn(tmp_path):
    runs = tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "lightnets", "train",
               "--model", "mobilenet_v2_x0_25", "--epochs", "2", "--batch-size", "32",
               "--limit-train-batches", "3", "--device", "cuda", "--amp", "fp16",
               "--sync-bn", "--model-ema", "--accumulate", "2", "--no-progress", "--json",
               "--runs-dir", str(runs), "--name", "ddp"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=500,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    run = runs / "ddp"
    assert json.loads((run / "config.json").read_text())["world_size"] == 2
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert len(rows) == 2 and math.isfinite(float(rows[-1]["train_loss"]))
    # saved as plain BatchNorm keys: one GPU evaluates the whole split as the two did
    alone = evaluate(run / "last.pt", device="cuda")
    assert alone.count == 355
    assert alone.top1 == pytest.approx(float(rows[-1]["ema_val_top1"]), abs=1.5 / 355)
