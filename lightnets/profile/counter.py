"""Complexity counting at the dispatcher: every aten op a forward pass runs is seen, functional
ones included, and the model runs on the meta device, so no memory or time is spent on data.

MACs follow the papers' convention (``../reference/complexity.md``): multiply-accumulates of
convolutions and matrix products only; FLOPs = 2 x MACs. The other ops are classified here
(:func:`op_category`: norm, activation, pooling, element-wise, copy) and counted as element
operations by :mod:`lightnets.profile.tracer` for :func:`lightnets.summary`.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from lightnets.registry import meta_model

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


def op_macs(func: Any, args: tuple, out: Any) -> int:
    """MACs of one aten op: non-zero only for convolutions and matrix products."""
    packet = func.overloadpacket
    if packet is aten.convolution:
        return conv_macs(args[0], args[1], out, bool(args[6]))
    if packet in (aten.mm, aten.bmm):
        return matmul_macs(args[0], args[1])
    if packet in (aten.addmm, aten.baddbmm):
        return matmul_macs(args[1], args[2])
    if packet in (aten.mv, aten.dot):
        return args[0].numel()
    if packet is aten.addmv:
        return args[1].numel()
    return 0


# The other ops, by kind: counted as element operations (one per output element; pooling and
# reductions: one per input element read), never mixed into MACs.
OTHER_OPS = {
    "norm": {"native_batch_norm", "_native_batch_norm_legit",
             "_native_batch_norm_legit_no_training",
             "_batch_norm_with_update", "_batch_norm_no_update", "batch_norm", "native_layer_norm",
             "native_group_norm", "instance_norm"},
    "activation": {"relu", "relu_", "relu6", "hardtanh", "hardtanh_", "hardswish", "hardswish_",
                   "hardsigmoid", "hardsigmoid_", "sigmoid", "sigmoid_", "silu", "silu_", "gelu",
                   "gelu_", "tanh", "tanh_", "leaky_relu", "leaky_relu_", "elu", "elu_", "selu",
                   "prelu", "_prelu_kernel", "softplus", "mish", "mish_", "threshold",
                   "threshold_", "clamp", "clamp_", "clamp_min", "clamp_min_", "_softmax",
                   "_log_softmax", "log_sigmoid_forward"},
    "pooling": {"max_pool2d_with_indices", "max_pool2d", "max_pool3d_with_indices", "avg_pool2d",
                "avg_pool3d", "_adaptive_avg_pool2d", "adaptive_max_pool2d", "_adaptive_avg_pool3d",
                "mean", "sum", "amax", "amin", "max", "min"},
    "elementwise": {"add", "add_", "sub", "sub_", "mul", "mul_", "div", "div_", "pow", "rsqrt",
                    "sqrt", "exp", "neg", "reciprocal", "addcmul", "addcdiv", "where", "maximum",
                    "minimum", "abs", "log", "lerp",
                    # bilinear resampling (segmenters' logits, ASPP's image pooling): a few
                    # multiply-adds per output element, not a convolution
                    "upsample_bilinear2d", "_upsample_bilinear2d_aa"},
    "copy": {"cat", "stack", "clone", "copy_", "_to_copy", "constant_pad_nd", "reflection_pad2d",
             "replication_pad2d", "index_select", "gather", "upsample_nearest2d", "fill_",
             "zero_", "zeros", "ones", "full", "zeros_like", "ones_like", "full_like"},
}
OP_CATEGORY = {name: category for category, names in OTHER_OPS.items() for name in names}
# Ops that only reinterpret or allocate memory: no arithmetic, no traffic.
FREE_OPS = {"_unsafe_view", "_reshape_alias", "detach", "lift_fresh", "empty", "empty_like",
            "new_empty", "new_empty_strided", "empty_strided", "_local_scalar_dense", "sym_size",
            "sym_stride", "sym_numel", "sym_storage_offset"}
CATEGORIES = ("macs", *OTHER_OPS, "other")


def op_category(func: Any) -> str | None:
    """``"macs"`` for conv/matmul ops, a key of :data:`OTHER_OPS`, ``"other"`` for an
    unrecognised op, or ``None`` for a view or allocation (no work)."""
    if func.is_view:
        return None
    name = func.overloadpacket.__name__
    if name in FREE_OPS:
        return None
    if func.overloadpacket in (aten.convolution, aten.mm, aten.bmm, aten.addmm, aten.baddbmm,
                               aten.mv, aten.addmv, aten.dot):
        return "macs"
    return OP_CATEGORY.get(name, "other")


def _numel(value: Any) -> int:
    return value.numel() if isinstance(value, torch.Tensor) else 0


def element_ops(category: str, func: Any, args: tuple, out: Any) -> int:
    """Element operations of a non-MAC op: output elements, or the input elements read for
    pooling and reductions (a k x k max-pool reads k*k inputs per output)."""
    first_out = out[0] if isinstance(out, (tuple, list)) else out
    if category != "pooling":
        return _numel(first_out)
    name = func.overloadpacket.__name__
    if name.startswith(("max_pool", "avg_pool")):
        kernel = args[1]
        if isinstance(kernel, int):  # one size for every spatial axis
            kernel = [kernel] * (first_out.dim() - 2)
        return _numel(first_out) * math.prod(kernel)
    return _numel(args[0])


class MacCounter(TorchDispatchMode):
    """Adds up the MACs of convolutions and matrix products dispatched while active."""

    def __init__(self) -> None:
        super().__init__()
        self.macs = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        self.macs += op_macs(func, args, out)
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


def network(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    """What to run on a batch to count ``model``: the model itself, or a detector's
    ``forward_raw`` (backbone, neck and head without torchvision's resizing and
    post-processing, which are data-dependent and cannot run on the meta device)."""
    return getattr(model, "forward_raw", model)


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
        network(model)(torch.empty(batch_size, *input_size, device="meta"))
    return Complexity(params=params, macs=counter.macs // batch_size, input_size=input_size)
