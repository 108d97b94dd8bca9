"""A segmenter and a detector killed (SIGKILL, a real process) during their second epoch and
resumed end with the same weights as runs never interrupted, loader processes or not: their
augmentation is drawn from seeds the main process hands out (lightnets/data/seeding.py), not
from the loader processes' RNG, which persistent workers carry from epoch to epoch."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lightnets.files import lock_folder
from tests.train.test_run_lock import ENV, wait_for


def train_command(runs: Path, name: str, model: str, data: str, workers: int) -> list[str]:
    return [sys.executable, "-m", "lightnets", "train", "--model", model, "--data", data,
            "--epochs", "2", "--input-size", "64", "--batch-size", "2",
            "--limit-train-batches", "2", "--limit-val-batches", "1", "--seed", "3",
            "--workers", str(workers), "--no-progress", "--runs-dir", str(runs), "--name", name]


@pytest.mark.slow
@pytest.mark.parametrize("model, data", [("lraspp_mobilenet_v3_small", "digits-seg"),
                                         ("fcos_mobilenet_v3_small", "digits-det")])
def test_a_killed_dense_run_resumes_to_the_same_weights(tmp_path, model, data):
    subprocess.run(train_command(tmp_path, "straight", model, data, 1), env=ENV, check=True,
                   capture_output=True, timeout=600)
    killed = subprocess.Popen(train_command(tmp_path, "killed", model, data, 1), env=ENV,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: (tmp_path / "killed" / "last.pt").exists(), killed,
                 "its first checkpoint")
        killed.send_signal(signal.SIGKILL)  # in its second epoch: no clean-up at all
        killed.wait(timeout=60)
    finally:
        killed.kill()
    # free at once: its loader process closed its copy of the lock's descriptor when forked
    with lock_folder(tmp_path / "killed"):
        pass
    first = torch.load(tmp_path / "killed" / "last.pt", weights_only=True)
    assert first["epoch"] == 1
    # resumed on another number of loader processes (a machine's default may differ)
    subprocess.run([sys.executable, "-m", "lightnets", "train", "--resume",
                    str(tmp_path / "killed"), "--workers", "0", "--no-progress"], env=ENV,
                   check=True, capture_output=True, timeout=600)

    straight, resumed = (torch.load(tmp_path / name / "last.pt", weights_only=True)
                         for name in ("straight", "killed"))
    assert resumed["epoch"] == straight["epoch"] == 2
    differ = [name for name, tensor in straight["model"].items()
              if not torch.equal(tensor, resumed["model"][name])]
    assert not differ, f"{len(differ)} of {len(straight['model'])} tensors differ: {differ[:5]}"
    assert ([row["train_loss"] for row in straight["history"]]
            == [row["train_loss"] for row in resumed["history"]])
