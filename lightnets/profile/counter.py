"""Complexity counting at the dispatcher: every aten op a forward pass runs is seen, functional
ones included, and the model runs on the meta device, so no memory or time is spent on data.

MACs follow the papers' convention (``../reference/complexity.md``): multiply-accumulates of
convolutions and matrix products only; FLOPs = 2 x MACs.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

aten = torch.ops.aten


def conv_macs(inputs: torch.Tensor, weight: torch.Tensor, output: torch.Tensor,
              transposed: bool) -> int:
    """MACs of ``aten.convolution``: each output (or, transposed, each input) element costs
    ``in_channels / groups * prod(kernel)`` multiply-adds."""
    per_element = weight.shape[1] * math.prod(weight.shape[2:])
    return (inputs.numel() if transposed else output.numel()) * per_element


def matmul_macs(a: torch.Tensor, b: torch.Tensor) -> int:
    """MACs of a (batched) matrix product ``a @ b``."""
    return math.prod(a.shape) * b.shape[-1]


class MacCounter(TorchDispatchMode):
    """Adds up the MACs of convolutions and matrix products dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        packet = func.overloadpacket
        if packet is aten.convolution:
            self.macs += conv_macs(args[0], args[1], out, bool(args[6]))
        elif packet in (aten.mm, aten.bmm):
            self.macs += matmul_macs(args[0], args[1])
        elif packet in (aten.addmm, aten.baddbmm):
            self.macs += matmul_macs(args[1], args[2])
        return out


@dataclass
class Complexity:
    """Parameter count and multiply-accumulates of one forward pass."""

    params: int
    macs: int
    input_size: tuple[int, ...]

    @property
    def flops(self) -> int:
        return 2 * self.macs


def meta_model(name: str, **kwargs: Any) -> nn.Module:
    """Build a registered model on the meta device: shapes only, no memory, no initialisation cost."""
    from lightnets.registry import create_model

    with torch.device("meta"):
        return create_model(name, **kwargs).eval()


def count_complexity(model: nn.Module | str, input_size: tuple[int, ...] | None = None,
                     batch_size: int = 1) -> Complexity:
    """Params and MACs of ``model`` (an instance or a registered name) for one input of
    ``input_size`` (C, H, W), default the model's ``default_input_size``."""
    if isinstance(model, str):
        model = meta_model(model)
    elif any(p.device.type != "meta" for p in model.parameters()):
        model = copy.deepcopy(model).to("meta")
    model = model.eval()
    input_size = tuple(input_size or getattr(model, "default_input_size", (3, 224, 224)))
    params = sum(p.numel() for p in model.parameters())
    with torch.no_grad(), MacCounter() as counter:
        model(torch.empty(batch_size, *input_size, device="meta"))
    return Complexity(params=params, macs=counter.macs // batch_size, input_size=input_size)
