"""The runtime set-up: bf16 autocast on the CPU only where it helps, fp16 only on CUDA."""

from __future__ import annotations

import pytest
import torch

from lightnets.train import runtime


def test_cpu_autocast_only_where_it_helps(monkeypatch):
    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "native_bf16", lambda: (True, "native bf16 (test)"))
    assert runtime.pick_amp("auto", cpu, 224) == torch.bfloat16
    assert runtime.pick_amp("auto", cpu, 32) is None  # small inputs: no gain measured
    assert runtime.pick_amp("bf16", cpu, 32) == torch.bfloat16  # asked for explicitly
    assert runtime.pick_amp("off", cpu, 224) is None
    monkeypatch.setattr(runtime, "native_bf16", lambda: (False, "no native bf16 (test)"))
    assert runtime.pick_amp("auto", cpu, 224) is None
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        runtime.pick_amp("fp16", cpu)


def test_channels_last_by_device_and_size_unless_asked():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    side = runtime.MIN_CPU_CHANNELS_LAST_SIDE
    assert runtime.pick_channels_last(None, cpu, side) and runtime.pick_channels_last(None, cuda, 8)
    assert not runtime.pick_channels_last(None, cpu, side - 1)
    assert runtime.pick_channels_last(True, cpu, 8) and not runtime.pick_channels_last(False, cuda)
