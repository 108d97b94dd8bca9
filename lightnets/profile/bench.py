"""Latency and throughput, measured beside the machine's own limit.

A benchmark times single steps (a forward pass under ``torch.inference_mode``, or in train mode
forward + backward + an SGD step) after a warm-up, and reports the median and 90th percentile.
Achieved GFLOP/s (2 x MACs per image, x3 in train mode for the backward pass) is set against the
peak of a large fp32 matrix product on the same device, so a user sees how far a model is from
what the hardware can do. A peer implementation of the same architecture (torchvision or timm)
can run in the same process, alternating with ours every repeat so drift hits both equally.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from lightnets.models.base import normalize_input_size
from lightnets.optional import require
from lightnets.profile.counter import count_complexity
from lightnets.registry import PEER_LIBRARIES, create_model, peers_of, resolve_name


def build_peer(peer: str, name: str, device: str | torch.device = "cpu") -> nn.Module:
    """The ``peer`` library's implementation of registered model ``name`` (random weights), as
    the family file declares it (``register_model(peers=...)``)."""
    if peer not in PEER_LIBRARIES:
        raise ValueError(f"unknown peer {peer!r}; expected one of {', '.join(PEER_LIBRARIES)}")
    name = resolve_name(name)
    spec = peers_of(name).get(peer)
    if spec is None:
        raise ValueError(f"no {peer} counterpart for {name} (the family file's "
                         "register_model(peers=...) lists them)")
    library = require(peer, f"--vs {peer}")
    with torch.device(device):
        if peer == "timm":
            return library.create_model(spec.name, pretrained=False, **spec.kwargs)
        return library.models.get_model(spec.name, weights=None, **spec.kwargs)


def p90(times: list[float]) -> float:
    """The 90th percentile of ``times`` (linear between the two nearest, as NumPy's default)."""
    return float(np.percentile(times, 90))


@dataclass
class BenchResult:
    """Timings of one implementation at one batch size (milliseconds per batch)."""

    model: str
    impl: str
    mode: str
    batch_size: int
    input_size: tuple[int, int, int]
    device: str
    threads: int
    channels_last: bool
    params: int
    macs_per_image: int
    times_ms: list[float]
    peak_gflops: float | None = None
    settings: str = ""  # how the step ran: precision, memory format, optimiser

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p90_ms(self) -> float:
        return p90(self.times_ms)

    @property
    def images_per_s(self) -> float:
        return 1e3 * self.batch_size / self.median_ms

    @property
    def gflops(self) -> float:
        """Achieved GFLOP/s at the median (train: forward + 2x for the backward pass)."""
        passes = 3 if self.mode == "train" else 1
        return passes * 2 * self.macs_per_image * self.images_per_s / 1e9

    @property
    def efficiency(self) -> float | None:
        """Achieved / peak GFLOP/s."""
        return self.gflops / self.peak_gflops if self.peak_gflops else None

    def as_dict(self) -> dict[str, Any]:
        record = {k: v for k, v in asdict(self).items() if k != "times_ms"}
        record["input_size"] = list(self.input_size)
        record.update(median_ms=round(self.median_ms, 4), p90_ms=round(self.p90_ms, 4),
                      images_per_s=round(self.images_per_s, 2), gflops=round(self.gflops, 3),
                      efficiency=None if self.efficiency is None else round(self.efficiency, 4),
                      repeats=len(self.times_ms))
        return record


def _synchronizer(device: torch.device) -> Callable[[], None]:
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def measure_peak_gflops(size: int = 2048, repeats: int = 5, device: str = "cpu") -> float:
    """The best fp32 GFLOP/s of a ``size x size`` matrix product: the practical peak."""
    device = torch.device(device)
    a, b = (torch.randn(size, size, device=device) for _ in range(2))
    sync = _synchronizer(device)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


# Our own step for a mode, in place of make_step's: (model, input) -> (the step, whether it runs
# channels-last, its settings in words). ``lightnets.train.bench.trainer_step`` is one.
StepFactory = Callable[[nn.Module, torch.Tensor], tuple[Callable[[], None], bool, str]]


def plain_settings(mode: str, channels_last: bool) -> str:
    """What :func:`make_step` runs, in words."""
    layout = "channels-last" if channels_last else "NCHW"
    return f"fp32, {layout}" + (", SGD" if mode == "train" else "")


def make_step(model: nn.Module, x: torch.Tensor, mode: str) -> Callable[[], None]:
    """One timed unit: inference forward, or forward + backward + SGD step (the plain step:
    full precision, PyTorch's default optimiser implementation)."""
    if mode == "infer":
        model.eval()

        def infer() -> None:
            with torch.inference_mode():
                model(x)
        return infer
    if mode != "train":
        raise ValueError(f"mode must be 'infer' or 'train', got {mode!r}")
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def train() -> None:
        optimizer.zero_grad(set_to_none=True)
        out = model(x)
        if isinstance(out, dict):  # torchvision's segmenters: {"out": ..., "aux": ...}
            out = out["out"]
        out = out[0] if isinstance(out, (tuple, list)) else getattr(out, "logits", out)
        # one class index per image, or per pixel for a segmenter's (N, K, H, W) logits
        target = torch.zeros(out.shape[:1] + out.shape[2:], dtype=torch.long, device=x.device)
        F.cross_entropy(out, target).backward()
        optimizer.step()
    return train


def time_interleaved(steps: dict[str, Callable[[], Any]], warmup: int, repeats: int,
                     device: str | torch.device = "cpu",
                     on_step: Callable[[], None] | None = None,
                     clock: Callable[[], float] = time.perf_counter) -> dict[str, list[float]]:
    """Milliseconds of each step over ``repeats`` rounds after ``warmup`` untimed ones. Every
    round runs each step once, in reversed order every other round, so that a change of load
    on a shared machine hits every step alike. ``clock``: wall time by default;
    ``time.process_time`` at one thread gives the CPU time, which others' load leaves alone."""
    sync = _synchronizer(torch.device(device))
    times: dict[str, list[float]] = {name: [] for name in steps}
    order = list(steps)
    for index in range(warmup + repeats):
        for name in order if index % 2 == 0 else order[::-1]:
            sync()
            start = clock()
            steps[name]()
            sync()
            if index >= warmup:
                times[name].append(1e3 * (clock() - start))
            if on_step:
                on_step()
    return times


def benchmark(name: str, batch_size: int = 1, input_size: int | tuple[int, ...] | None = None,
              mode: str = "infer", warmup: int = 5, repeats: int = 20, device: str = "cpu",
              channels_last: bool = False, vs: str | None = None,
              peak_gflops: float | None = None,
              on_step: Callable[[], None] | None = None,
              model: nn.Module | None = None, our_step: StepFactory | None = None
              ) -> list[BenchResult]:
    """Time registered model ``name`` (and, with ``vs``, the peer's same architecture,
    alternating every repeat). Returns ``[ours]`` or ``[ours, peer]``. ``on_step`` is called
    after every step, warm-up included (for a progress display). ``model``: time this instance
    of ``name`` (e.g. a checkpoint's, pruned) instead of a fresh one. ``our_step`` times ours
    with its own step (and memory format) instead of the plain one the peer gets."""
    if batch_size < 1 or warmup < 0 or repeats < 1:
        raise ValueError(f"need batch_size >= 1, warmup >= 0, repeats >= 1; got {batch_size}, "
                         f"{warmup}, {repeats}")
    name = resolve_name(name)
    device = torch.device(device)
    models = {"lightnets": (create_model(name) if model is None else model).to(device)}
    size = normalize_input_size(input_size, models["lightnets"].default_input_size)
    if vs:
        models[vs] = build_peer(vs, name, device)
    # on meta copies: no memory, no time
    counts = {"lightnets": count_complexity(name if model is None else model, size)}
    if vs:
        counts[vs] = count_complexity(build_peer(vs, name, "meta"), size)
    if vs and counts[vs].params != counts["lightnets"].params:
        raise ValueError(f"{vs}'s {name} has {counts[vs].params:,} params, lightnets' "
                         f"{counts['lightnets'].params:,}: not the same architecture")
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    torch.manual_seed(0)
    x = torch.randn(batch_size, *size, device=device).contiguous(memory_format=memory_format)
    steps = {impl: make_step(model.to(memory_format=memory_format), x, mode)
             for impl, model in models.items() if impl != "lightnets" or our_step is None}
    layouts = {impl: channels_last for impl in models}
    settings = {impl: plain_settings(mode, channels_last) for impl in models}
    if our_step is not None:
        steps["lightnets"], layouts["lightnets"], settings["lightnets"] = our_step(
            models["lightnets"], x.contiguous())
    times = time_interleaved({impl: steps[impl] for impl in models}, warmup, repeats, device,
                             on_step)
    return [BenchResult(model=name, impl=impl, mode=mode, batch_size=batch_size,
                        input_size=size, device=str(device), threads=torch.get_num_threads(),
                        channels_last=layouts[impl], params=counts[impl].params,
                        macs_per_image=counts[impl].macs, times_ms=times[impl],
                        peak_gflops=peak_gflops, settings=settings[impl]) for impl in models]
