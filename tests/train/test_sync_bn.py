"""``--sync-bn``: refused in one line before any work without torchrun or without CUDA (the
conversion itself runs in tests/train/test_gpu.py's two-GPU run)."""

from __future__ import annotations

import pytest
import torch

from lightnets.cli import main
from lightnets.train.runtime import Runtime, check_sync_bn, sync_batchnorm
from tests.conftest import TINY_TRAIN


def test_without_torchrun_is_one_line_before_work(tmp_path, capsys):
    assert main(["train", *TINY_TRAIN, "--sync-bn", "--device", "cpu", "--runs-dir",
                 str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--sync-bn synchronises BatchNorm across processes" in err and "torchrun" in err
    assert len(err.splitlines()) == 1 and not any(tmp_path.iterdir())


def test_cpu_processes_are_refused():
    two_cpus = Runtime(torch.device("cpu"), None, False, rank=0, world_size=2)
    with pytest.raises(ValueError, match="needs CUDA devices"):
        check_sync_bn(two_cpus)
    with pytest.raises(ValueError, match="needs CUDA devices"):
        sync_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm2d(3)), two_cpus)
