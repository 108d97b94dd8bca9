"""Timing inference backends side by side in one process, in alternating blocks so that drift on
a busy machine hits all of them alike (see :func:`time_callables`).

Behind ``lightnets bench NAME --backend ...`` (:func:`bench_backends`) and
``lightnets export --latency`` (:func:`time_callables`).
"""

from __future__ import annotations

import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from lightnets.export.backends import (BACKENDS, Backend, BackendUnavailableError,
                                       available_backends, check_precision, create_backend)
from lightnets.export.onnx import export_onnx, onnx_session, run_session
from lightnets.export.verify import Runner
from lightnets.profile.bench import build_peer, p90
from lightnets.registry import create_model, peers_of, resolve_name

# Rows besides lightnets' own backends: torchvision's implementation of the same architecture,
# run eagerly (the baseline everyone starts from) or exported to ONNX Runtime (the goal).
PEER_ROWS = ("torchvision-eager", "torchvision-onnxruntime")


def time_callables(runs: dict[str, Runner], x: torch.Tensor, warmup: int = 3,
                   repeats: int = 10, rounds: int = 2,
                   settle_s: float = 0.05) -> dict[str, list[float]]:
    """Milliseconds per call of each runner on ``x``.

    Each runner is timed in ``rounds`` blocks of consecutive calls, the order of the runners
    reversed every round so that drift on a busy machine hits all of them alike; each block
    starts after a pause of ``settle_s`` and ``warmup`` untimed calls. Blocks, not call-by-call
    alternation: ONNX Runtime, OpenVINO and OpenMP keep their worker threads spinning for
    milliseconds after a call, which on a small machine slows whatever runs next (measured on
    2 cores: torchvision's MobileNetV2 in eager PyTorch, 15 ms alone, took 36 ms when each call
    followed an ONNX Runtime call)."""
    if warmup < 0 or repeats < 1 or rounds < 1:
        raise ValueError(f"need warmup >= 0, repeats >= 1 and rounds >= 1, got {warmup}, "
                         f"{repeats}, {rounds}")
    rounds = min(rounds, repeats)
    blocks = [repeats // rounds + (index < repeats % rounds) for index in range(rounds)]
    times: dict[str, list[float]] = {name: [] for name in runs}
    order = list(runs)
    with torch.inference_mode():
        for index, block in enumerate(blocks):
            for name in order if index % 2 == 0 else order[::-1]:
                if settle_s and len(runs) > 1:
                    time.sleep(settle_s)
                for _ in range(warmup):
                    runs[name](x)
                for _ in range(block):
                    start = time.perf_counter()
                    runs[name](x)
                    times[name].append(1e3 * (time.perf_counter() - start))
    return times


@dataclass
class BackendTiming:
    """One row of a backend comparison."""

    model: str
    backend: str
    precision: str
    batch_size: int
    median_ms: float
    p90_ms: float
    notes: str = ""
    speedup_vs_baseline: float | None = None

    @property
    def images_per_s(self) -> float:
        return 1e3 * self.batch_size / self.median_ms

    def as_dict(self) -> dict[str, Any]:
        return {**self.__dict__, "images_per_s": round(self.images_per_s, 2)}


def expand_backends(names: list[str]) -> list[str]:
    """``all`` -> every backend that can run here; unknown names are an error."""
    if "all" in names:
        return [name for name, reason in available_backends().items() if reason is None]
    unknown = sorted(set(names) - set(BACKENDS))
    if unknown:
        raise ValueError(f"unknown backend(s) {', '.join(unknown)}; expected "
                         f"{', '.join(BACKENDS)} or all")
    return list(dict.fromkeys(names))


def peer_runner(row: str, name: str, input_size: tuple[int, int, int]) -> Runner:
    """torchvision's model of the same architecture, eager or in ONNX Runtime."""
    peer = build_peer("torchvision", name).eval()
    if row == "torchvision-eager":
        return peer
    # torchvision's model exported as it is (no fusing here: ONNX Runtime folds BN itself)
    with tempfile.TemporaryDirectory() as folder:
        session = onnx_session(export_onnx(peer, Path(folder) / "peer.onnx", input_size))
    return lambda x: run_session(session, x)


# what a row of a backend comparison times: (precision, notes, runner)
PreparedRow = tuple[str, str, Runner]


def bench_backends(name: str, backends: list[str], batch_sizes: list[int],
                   input_size: tuple[int, int, int] | None = None, precision: str = "fp32",
                   peers: tuple[str, ...] = ("torchvision-eager",), warmup: int = 3,
                   repeats: int = 10, allow_emulated_bf16: bool = False,
                   log: Callable[[str], None] | None = None,
                   model: torch.nn.Module | None = None) -> list[BackendTiming]:
    """Time registered model ``name`` behind each backend (and the ``peers`` rows, where
    torchvision has the architecture) at each batch size. A backend asked for by name that
    cannot run here raises :class:`BackendUnavailableError` before any timing; ``all`` takes
    those that can and reports the others through ``log``. Speed-ups are against the first
    peer row.
    ``model``: time this instance of ``name`` (e.g. a checkpoint's) instead of a fresh one."""
    name = resolve_name(name)
    everything = "all" in backends
    say = log or (lambda message: None)
    chosen = choose_backends(backends, precision, allow_emulated_bf16, say)
    model = (create_model(name) if model is None else model).eval()
    size = tuple(input_size or model.default_input_size)
    runs = backend_rows(model, chosen, size, precision, allow_emulated_bf16, everything, say)
    runs.update(peer_rows(name, peers, size, say))
    results = []
    for batch_size in batch_sizes:
        say(f"timing {name} at batch {batch_size}...")
        results += time_rows(name, runs, torch.randn(batch_size, *size), peers, warmup,
                             repeats)
    return results


def choose_backends(backends: list[str], precision: str, allow_emulated_bf16: bool,
                    say: Callable[[str], None]) -> list[str]:
    """The backends to time, checked before any work: one asked for by name that cannot run
    here, or not at ``precision``, is an error; ``all`` leaves those out and says so."""
    everything = "all" in backends
    for backend_name, reason in available_backends().items():
        if reason and (everything or backend_name in backends):
            if not everything:
                raise BackendUnavailableError(f"backend {backend_name} {reason}")
            say(f"leaving out {backend_name}: {reason}")
    chosen = expand_backends(backends)
    if not everything:
        with warnings.catch_warnings():  # (the warning of emulated bf16 comes when it runs)
            warnings.simplefilter("ignore")
            for backend_name in chosen:
                check_precision(backend_name, precision, allow_emulated_bf16)
    return chosen


def backend_rows(model: torch.nn.Module, chosen: list[str], size: tuple[int, int, int],
                 precision: str, allow_emulated_bf16: bool, everything: bool,
                 say: Callable[[str], None]) -> dict[str, PreparedRow]:
    """``model`` behind each chosen backend, by backend name; with ``everything`` (``all``) one
    that fails to build is left out, otherwise its error is raised."""
    runs: dict[str, PreparedRow] = {}
    for backend_name in chosen:
        say(f"preparing {backend_name} ({precision})...")
        try:
            backend: Backend = create_backend(model, backend_name, size, precision,
                                              allow_emulated_bf16=allow_emulated_bf16)
        except BackendUnavailableError as error:
            if not everything:
                raise
            say(f"leaving out {backend_name}: {error}")
            continue
        runs[backend_name] = (backend.precision, ", ".join(backend.notes), backend)
    return runs


def peer_rows(name: str, peers: tuple[str, ...], size: tuple[int, int, int],
              say: Callable[[str], None]) -> dict[str, PreparedRow]:
    """torchvision's model of the same architecture in each ``peers`` row, the first the
    baseline; none where torchvision lacks it."""
    runs: dict[str, PreparedRow] = {}
    if "torchvision" in peers_of(name):
        for row in peers:
            say(f"preparing {row}...")
            note = "baseline" if row == peers[0] else ""
            runs[row] = ("fp32", note, peer_runner(row, name, size))
    elif peers:
        say(f"no torchvision counterpart for {name}: no baseline rows")
    return runs


def time_rows(name: str, runs: dict[str, PreparedRow], x: torch.Tensor, peers: tuple[str, ...],
              warmup: int, repeats: int) -> list[BackendTiming]:
    """One timing of every row on the batch ``x``, with its speed-up against the first peer
    row where that ran."""
    times = time_callables({row: run for row, (_, _, run) in runs.items()}, x, warmup, repeats)
    rows = [BackendTiming(name, row, runs[row][0], len(x), statistics.median(times[row]),
                          p90(times[row]), runs[row][1])
            for row in runs]
    baseline = next((r.median_ms for r in rows if peers and r.backend == peers[0]), None)
    for row in rows:
        row.speedup_vs_baseline = baseline / row.median_ms if baseline else None
    return rows
