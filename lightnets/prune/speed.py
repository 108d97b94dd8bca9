"""Latency of the unpruned and pruned models side by side: the same backends, the same batch
sizes, timed in one process in alternating blocks (:func:`lightnets.export.timing.time_callables`)
so that a busy machine slows both alike."""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch
from torch import nn

from lightnets.export.backends import BackendUnavailableError, available_backends, create_backend
from lightnets.export.timing import time_callables

# fp32 backends a prune report times (torch.compile is left out: minutes to compile per model
# and batch size on a small CPU, and slower than ONNX Runtime there; see docs/benchmarks.md)
LATENCY_BACKENDS = ("eager", "onnxruntime", "openvino")


@dataclass
class Latency:
    """Median milliseconds per batch of the unpruned and the pruned model in one backend."""

    backend: str
    batch_size: int
    original_ms: float
    pruned_ms: float

    @property
    def speedup(self) -> float:
        return self.original_ms / self.pruned_ms

    def as_dict(self) -> dict[str, float | int | str]:
        return {**asdict(self), "speedup": round(self.speedup, 3)}


def compare_latency(original: nn.Module, pruned: nn.Module, input_size: tuple[int, int, int],
                    batch_sizes: tuple[int, ...] = (1, 32),
                    backends: tuple[str, ...] = LATENCY_BACKENDS, repeats: int = 10,
                    warmup: int = 3, log: Callable[[str], None] | None = None) -> list[Latency]:
    """One :class:`Latency` per backend that runs here and batch size."""
    say = log or (lambda message: None)
    runners = {}
    reasons = available_backends()
    for name in backends:
        if reasons[name] is not None:
            say(f"skipping {name}: {reasons[name]}")
            continue
        say(f"preparing {name} (fp32) for both models...")
        try:
            runners[name] = {which: create_backend(model.eval(), name, input_size)
                             for which, model in (("original", original), ("pruned", pruned))}
        except BackendUnavailableError as error:
            say(f"skipping {name}: {error}")
    rows = []
    for batch_size in batch_sizes:
        say(f"timing at batch {batch_size}...")
        x = torch.randn(batch_size, *input_size)
        flat = {(name, which): run for name, pair in runners.items() for which, run in pair.items()}
        times = time_callables({f"{name}/{which}": run for (name, which), run in flat.items()},
                               x, warmup, repeats)
        for name in runners:
            rows.append(Latency(name, batch_size, statistics.median(times[f"{name}/original"]),
                                statistics.median(times[f"{name}/pruned"])))
    return rows


def fastest(rows: list[Latency], batch_size: int, which: str) -> Latency | None:
    """The row whose ``which`` ('original' or 'pruned') model ran fastest at ``batch_size``."""
    candidates = [row for row in rows if row.batch_size == batch_size]
    return min(candidates, key=lambda row: getattr(row, f"{which}_ms"), default=None)
