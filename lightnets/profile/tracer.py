"""Recording one forward pass at the dispatcher: every aten op that runs (functional ones such as
residual adds, concatenation and channel shuffle included), the module it ran in, its cost, and
the activation memory alive at each moment.

Module hooks are used only to know *where* the program is (a stack of qualified module names);
costs come from the ops themselves, so nothing a module does outside a registered sub-module is
missed. Live memory is measured, not estimated: each op output's storage is registered when it
appears and released when the last tensor object referring to it is destroyed (a
``weakref.finalize`` on every tensor), which is exactly when eager PyTorch frees it. The peak is
the largest sum of live storages seen at any allocation. (A storage kept alive only by a tensor
made outside the dispatcher, e.g. through ``.data``, would count as freed early; the zoo's models
make none.)
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.modules.module import register_module_forward_hook, register_module_forward_pre_hook
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from lightnets.profile.counter import element_ops, op_category, op_macs

aten = torch.ops.aten


@dataclass
class OpRecord:
    """One aten op: the module stack it ran in and what it cost."""

    path: tuple[str, ...]
    op: str
    category: str
    macs: int
    elements: int
    bytes_moved: int
    allocated: int
    kernel: str | None = None


@dataclass
class ModuleCall:
    """The first call of a module (shapes) and how often it ran."""

    name: str
    type_name: str
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]] = field(default_factory=list)
    calls: int = 1


def _tensors(value: Any) -> list[torch.Tensor]:
    return [t for t in tree_flatten(value)[0] if isinstance(t, torch.Tensor)]


def _nbytes(tensor: torch.Tensor) -> int:
    return tensor.numel() * tensor.element_size()


def _pair_text(values: list[int]) -> str:
    return "x".join(map(str, values))


def op_kernel(func: Any, args: tuple) -> str | None:
    """``"3x3/2 g32"``-style description of a convolution's or pooling's window."""
    packet = func.overloadpacket
    if packet is aten.convolution:
        weight, stride, dilation, groups = args[1], args[3], args[5], args[8]
        text = _pair_text(list(weight.shape[2:]))
        if any(s != 1 for s in stride):
            text += f"/{_pair_text(list(stride)) if len(set(stride)) > 1 else stride[0]}"
        if any(d != 1 for d in dilation):
            text += f" d{dilation[0]}"
        if groups > 1:
            text += " dw" if groups == args[0].shape[1] and weight.shape[1] == 1 else f" g{groups}"
        return ("T " if args[6] else "") + text
    name = packet.__name__
    if name.startswith(("max_pool", "avg_pool")):
        kernel = args[1] if isinstance(args[1], (list, tuple)) else [args[1]] * 2
        stride = args[2] if len(args) > 2 and args[2] else kernel
        stride = stride if isinstance(stride, (list, tuple)) else [stride]
        return f"{_pair_text(list(kernel))}/{stride[0]} {name.split('_')[0]}"
    return None


class ForwardTracer(TorchDispatchMode):
    """Context manager recording the ops of a forward pass of ``model`` (see module docstring).

    Storages of the model's parameters and buffers are not activations and are ignored, as are
    views of tensors created outside the pass; call :meth:`track_input` for the input so it
    counts toward the live memory.
    """

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.names = {id(m): name for name, m in model.named_modules()}
        self.stack: list[str | None] = []
        self.ops: list[OpRecord] = []
        self.calls: dict[str, ModuleCall] = {}
        self.live_bytes = self.peak_bytes = self.allocated_bytes = 0
        self._ignored = {t.untyped_storage()._cdata
                         for t in (*model.parameters(), *model.buffers())}
        self._storages: dict[int, list[int]] = {}  # key -> [nbytes, live tensor objects]
        self._finalizers: list[weakref.finalize] = []
        self._handles: list[Any] = []
        self._active = False

    # -- where are we: module stack ------------------------------------------------------------
    def _pre_hook(self, module: nn.Module, args: Any) -> None:
        name = self.names.get(id(module))
        self.stack.append(name)
        if name is None:
            return
        if name in self.calls:
            self.calls[name].calls += 1
        else:
            shapes = [tuple(t.shape) for t in _tensors(args)]
            self.calls[name] = ModuleCall(name, type(module).__name__, shapes)

    def _post_hook(self, module: nn.Module, args: Any, output: Any) -> None:
        name = self.stack.pop() if self.stack else None
        if name is not None and not self.calls[name].output_shapes:
            self.calls[name].output_shapes = [tuple(t.shape) for t in _tensors(output)]

    # -- live memory -------------------------------------------------------------------------
    def _release(self, key: int) -> None:
        entry = self._storages.get(key)
        if not self._active or entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            self.live_bytes -= entry[0]
            del self._storages[key]

    def _track(self, tensor: torch.Tensor, may_allocate: bool) -> int:
        """Count ``tensor`` as holding its storage alive; return the bytes newly allocated."""
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._ignored:
            return 0
        entry = self._storages.get(key)
        allocated = 0
        if entry is None:
            if not may_allocate:  # a view of something created outside the pass
                return 0
            allocated = storage.nbytes()
            entry = self._storages[key] = [allocated, 0]
            self.live_bytes += allocated
            self.peak_bytes = max(self.peak_bytes, self.live_bytes)
        entry[1] += 1
        finalizer = weakref.finalize(tensor, self._release, key)
        finalizer.atexit = False
        self._finalizers.append(finalizer)
        return allocated

    def track_input(self, tensor: torch.Tensor) -> None:
        """Count an input of the pass as live (it is not an op output, so not allocated)."""
        self._track(tensor, may_allocate=True)

    # -- the ops -------------------------------------------------------------------------------
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
        out = func(*args, **(kwargs or {}))
        category = op_category(func)
        outputs = _tensors(out)
        allocated = sum(self._track(t, may_allocate=not func.is_view) for t in outputs)
        self.allocated_bytes += allocated
        if category is not None:
            moved = sum(map(_nbytes, _tensors((args, kwargs)))) + sum(map(_nbytes, outputs))
            macs = op_macs(func, args, out)
            elements = 0 if category == "macs" else element_ops(category, func, args, out)
            path = tuple(name for name in self.stack if name is not None)
            self.ops.append(OpRecord(path, str(func.overloadpacket.__name__), category, macs,
                                     elements, moved, allocated, op_kernel(func, args)))
        return out

    def __enter__(self) -> ForwardTracer:
        self._active = True
        self._handles = [register_module_forward_pre_hook(self._pre_hook),
                         register_module_forward_hook(self._post_hook, always_call=True)]
        return super().__enter__()

    def __exit__(self, *exc: Any) -> None:
        super().__exit__(*exc)
        for handle in self._handles:
            handle.remove()
        self._active = False
        for finalizer in self._finalizers:
            finalizer.detach()
        self._finalizers.clear()
