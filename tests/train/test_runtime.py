"""The runtime set-up: bf16 autocast and channels-last on the CPU only where they help, fp16
only on CUDA."""

from __future__ import annotations

import pytest
import torch

from lightnets.registry import meta_model
from lightnets.train import runtime


def test_cpu_autocast_only_where_it_helps(monkeypatch):
    cpu = torch.device("cpu")
    large, small = runtime.MIN_CPU_AUTOCAST_MACS, runtime.MIN_CPU_AUTOCAST_MACS - 1
    monkeypatch.setattr(runtime, "native_bf16", lambda: (True, "native bf16 (test)"))
    assert runtime.pick_amp("auto", cpu, large) == torch.bfloat16
    assert runtime.pick_amp("auto", cpu, small) is None  # small convolutions: bf16 is slower
    assert runtime.pick_amp("bf16", cpu, small) == torch.bfloat16  # asked for explicitly
    assert runtime.pick_amp("off", cpu, large) is None
    monkeypatch.setattr(runtime, "native_bf16", lambda: (False, "no native bf16 (test)"))
    assert runtime.pick_amp("auto", cpu, large) is None
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        runtime.pick_amp("fp16", cpu)


@pytest.mark.parametrize("name, side, bf16, expected", [
    ("mobilenet_v2", 224, True, (torch.bfloat16, True)),  # 300M MACs
    ("mobilenet_v2", 32, True, (None, True)),  # depthwise: channels-last even in fp32
    ("resnet18", 224, True, (torch.bfloat16, True)),
    ("resnet18", 32, True, (None, False)),  # dense and fp32: NCHW
    ("resnet18", 224, False, (None, False)),  # no native bf16
])
def test_cpu_precision_and_layout_by_model_and_size(monkeypatch, name, side, bf16, expected):
    monkeypatch.setattr(runtime, "native_bf16", lambda: (bf16, "(test)"))
    cpu = torch.device("cpu")
    model = meta_model(name)
    assert runtime.pick_precision_and_layout("auto", None, cpu, model, (3, side, side)) == expected
    # explicit flags override
    assert runtime.pick_precision_and_layout("off", True, cpu, model, (3, side, side)) == (
        None, True)


def test_channels_last_on_cuda_and_when_asked():
    cpu, cuda = torch.device("cpu"), torch.device("cuda", 0)
    assert runtime.pick_channels_last(None, cuda, None, grouped_convs=False)
    assert runtime.pick_channels_last(None, cpu, torch.bfloat16, grouped_convs=False)
    assert not runtime.pick_channels_last(None, cpu, None, grouped_convs=False)
    assert not runtime.pick_channels_last(False, cuda) and runtime.pick_channels_last(True, cpu)
