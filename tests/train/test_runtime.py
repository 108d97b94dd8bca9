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
