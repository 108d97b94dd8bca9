"""``lightnets.summary``: a model's cost, layer by layer, measured on the meta device.

Conventions (``reference/complexity.md``): MACs are the multiply-accumulates of convolutions and
matrix products; FLOPs = 2 x MACs; normalisation, activations, pooling, element-wise arithmetic
and data movement (concat, copies, padding) are counted apart as element operations. Every
number is for one forward pass of ``batch_size`` images in eval mode.
"""

from __future__ import annotations

import copy
import io
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from rich.console import Console
from rich.table import Table
from torch import nn

from lightnets.models.base import normalize_input_size
from lightnets.profile.counter import CATEGORIES, network
from lightnets.profile.tracer import ForwardTracer, OpRecord
from lightnets.registry import meta_model


def format_count(count: float, unit: str = "") -> str:
    """``3504872`` -> ``3.50M``."""
    for scale, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(count) >= scale:
            return f"{count / scale:.2f}{suffix}{unit}"
    return f"{count:g}{unit}"


def format_bytes(count: float) -> str:
    """``14680064`` -> ``14.00 MiB``."""
    for scale, suffix in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if count >= scale:
            return f"{count / scale:.2f} {suffix}"
    return f"{int(count)} B"


@dataclass
class LayerStats:
    """One row: a module at most ``depth`` deep and the ops attributed to it (those run inside it
    but outside any deeper module shown). ``params`` are its own parameters, plus those of its
    sub-modules when they are not shown as rows of their own."""

    name: str
    type_name: str
    depth: int
    input_shapes: list[tuple[int, ...]]
    output_shapes: list[tuple[int, ...]]
    kernel: str | None
    params: int
    macs: int
    ops: dict[str, int]
    bytes_moved: int
    output_bytes: int
    calls: int

    @property
    def intensity(self) -> float:
        """Arithmetic intensity: MACs per byte read or written by the row's ops (unfused)."""
        return self.macs / self.bytes_moved if self.bytes_moved else 0.0


@dataclass
class ModelSummary:
    """Totals of one forward pass (attributes) and the per-layer rows (``layers``)."""

    name: str
    input_size: tuple[int, int, int]
    batch_size: int
    depth: int
    params: int
    trainable_params: int
    macs: int
    ops: dict[str, int]
    param_bytes: int
    buffer_bytes: int
    activation_bytes: int
    peak_activation_bytes: int
    bytes_moved: int
    layers: list[LayerStats] = field(default_factory=list)

    @property
    def flops(self) -> int:
        return 2 * self.macs

    @property
    def intensity(self) -> float:
        """MACs per byte moved over the whole pass (each op reads and writes memory)."""
        return self.macs / self.bytes_moved if self.bytes_moved else 0.0

    def totals(self) -> dict[str, Any]:
        """The totals as a JSON-ready dict (no layers)."""
        return {"name": self.name, "input_size": list(self.input_size),
                "batch_size": self.batch_size, "params": self.params,
                "trainable_params": self.trainable_params, "macs": self.macs,
                "flops": self.flops, "ops": dict(self.ops), "param_bytes": self.param_bytes,
                "buffer_bytes": self.buffer_bytes, "activation_bytes": self.activation_bytes,
                "peak_activation_bytes": self.peak_activation_bytes,
                "bytes_moved": self.bytes_moved, "intensity": round(self.intensity, 4)}

    def as_dict(self) -> dict[str, Any]:
        """Totals plus one dict per layer."""
        layers = [{**asdict(layer), "intensity": round(layer.intensity, 4)}
                  for layer in self.layers]
        return {**self.totals(), "depth": self.depth, "layers": layers}

    def table(self) -> Table:
        """The per-layer table, totals in the caption."""
        shape = "x".join(map(str, (self.batch_size, *self.input_size)))
        table = Table(title=f"{self.name} at {shape}", caption=self._caption(),
                      caption_justify="left")
        for column, justify in (("layer", "left"), ("input", "right"), ("output", "right"),
                                ("kernel", "left"), ("params", "right"), ("MACs", "right"),
                                ("%", "right"), ("MACs/B", "right"), ("other ops", "right")):
            table.add_column(column, justify=justify, no_wrap=column != "layer")
        shown = {layer.name for layer in self.layers}
        for layer in self.layers:
            # indent under the ancestors that have rows of their own
            level = sum(1 for name in _ancestors(layer.name) if name in shown)
            label = f"{'  ' * level}{layer.name or '(top)'} [dim]{layer.type_name}"
            label += f" x{layer.calls}[/]" if layer.calls > 1 else "[/]"
            share = 100 * layer.macs / self.macs if self.macs else 0.0
            other = sum(layer.ops.values())
            table.add_row(label, _shapes(layer.input_shapes), _shapes(layer.output_shapes),
                          layer.kernel or "", f"{layer.params:,}" if layer.params else "",
                          format_count(layer.macs) if layer.macs else "",
                          f"{share:.1f}" if layer.macs else "",
                          f"{layer.intensity:.1f}" if layer.macs else "",
                          format_count(other) if other else "")
        return table

    def _caption(self) -> str:
        other = ", ".join(f"{kind} {format_count(count)}" for kind, count in self.ops.items()
                          if count)
        return (f"params {self.params:,} (trainable {self.trainable_params:,})  "
                f"MACs {format_count(self.macs)}  FLOPs {format_count(self.flops)}\n"
                f"other element ops: {other or 'none'}\n"
                f"param memory {format_bytes(self.param_bytes)}  "
                f"activations {format_bytes(self.activation_bytes)} "
                f"(peak live {format_bytes(self.peak_activation_bytes)})  "
                f"intensity {self.intensity:.1f} MACs/byte")

    def __rich__(self) -> Table:
        return self.table()

    def __str__(self) -> str:
        console = Console(file=io.StringIO(), width=140, color_system=None)
        console.print(self.table())
        return console.file.getvalue()


def _shapes(shapes: list[tuple[int, ...]]) -> str:
    text = ", ".join(str(list(s)) for s in shapes[:2])
    return text + (", ..." if len(shapes) > 2 else "")


def _ancestors(name: str) -> list[str]:
    """``"a.b.c"`` -> ``["", "a", "a.b"]``."""
    if not name:
        return []
    parts = name.split(".")
    return ["", *(".".join(parts[:i]) for i in range(1, len(parts)))]


def _depth(name: str) -> int:
    return 0 if name == "" else name.count(".") + 1


def _row_of(path: tuple[str, ...], depth: int) -> str:
    """The innermost module of the stack at most ``depth`` deep ("" is the model itself)."""
    for name in reversed(path):
        if _depth(name) <= depth:
            return name
    return ""


def _aggregate(model: nn.Module, tracer: ForwardTracer, depth: int) -> list[LayerStats]:
    records: dict[str, list[OpRecord]] = {}
    for op in tracer.ops:
        records.setdefault(_row_of(op.path, depth), []).append(op)
    modules = dict(model.named_modules())
    rows = []
    for name, call in tracer.calls.items():  # modules in the order they were entered
        ops = records.get(name, [])
        module = modules[name]
        is_cut = _depth(name) == depth or not any(True for _ in module.children())
        params = sum(p.numel() for p in module.parameters(recurse=is_cut))
        if _depth(name) > depth or (not ops and not params):
            continue
        kernels = list(dict.fromkeys(op.kernel for op in ops if op.kernel))
        per_category = {c: 0 for c in CATEGORIES if c != "macs"}
        for op in ops:
            if op.category != "macs":
                per_category[op.category] += op.elements
        rows.append(LayerStats(
            name=name, type_name=call.type_name, depth=_depth(name),
            input_shapes=call.input_shapes, output_shapes=call.output_shapes,
            kernel=(kernels[0] + (" +" if len(kernels) > 1 else "")) if kernels else None,
            params=params, macs=sum(op.macs for op in ops), ops=per_category,
            bytes_moved=sum(op.bytes_moved for op in ops),
            output_bytes=sum(op.allocated for op in ops), calls=call.calls))
    return rows


def summary(model: nn.Module | str, input_size: int | tuple[int, ...] | None = None,
            depth: int = 3, batch_size: int = 1) -> ModelSummary:
    """Measure ``model`` (an instance or a registered name) on the meta device: params, MACs, the
    other ops by kind, parameter and activation memory (total and peak live), and per-layer
    rows down to ``depth`` levels of sub-modules. ``input_size`` is S, (H, W) or (C, H, W),
    default the model's ``default_input_size``."""
    if depth < 0 or batch_size < 1:
        raise ValueError(f"depth must be >= 0 and batch_size >= 1, got {depth} and {batch_size}")
    name = model if isinstance(model, str) else type(model).__name__
    if isinstance(model, str):
        model = meta_model(model)
    elif any(t.device.type != "meta" for t in (*model.parameters(), *model.buffers())):
        model = copy.deepcopy(model).to("meta")
    default = tuple(getattr(model, "default_input_size", (3, 224, 224)))
    size = normalize_input_size(input_size, default)
    was_training = model.training
    model.eval()
    params = list(model.parameters())
    try:
        x = torch.empty(batch_size, *size, device="meta")
        with torch.no_grad(), ForwardTracer(model) as tracer:
            tracer.track_input(x)
            network(model)(x)
            del x
    finally:
        model.train(was_training)
    ops = {c: 0 for c in CATEGORIES}
    for op in tracer.ops:
        ops[op.category] += op.macs if op.category == "macs" else op.elements
    return ModelSummary(
        name=name, input_size=size, batch_size=batch_size, depth=depth,
        params=sum(p.numel() for p in params),
        trainable_params=sum(p.numel() for p in params if p.requires_grad),
        macs=ops.pop("macs"), ops=ops,
        param_bytes=sum(p.numel() * p.element_size() for p in params),
        buffer_bytes=sum(b.numel() * b.element_size() for b in model.buffers()),
        activation_bytes=tracer.allocated_bytes, peak_activation_bytes=tracer.peak_bytes,
        bytes_moved=sum(op.bytes_moved for op in tracer.ops),
        layers=_aggregate(model, tracer, depth))
