"""Choose a CPU run's precision, memory format and optimiser kernel by timing them here.

Thresholds measured on one CPU do not carry to another: on a Zen 1 without native bf16 the
rules in :mod:`lightnets.train.runtime` made ResNet-18 train slower than a plain PyTorch loop.
So before a long CPU run each candidate setting trains a few steps of a throwaway copy of the
real model on random batches of the real shape, and the fastest wins. The plain loop's own
setting (fp32, NCHW, PyTorch's default optimiser) is always a candidate and keeps its place
unless another is faster by more than the timing noise, so the choice is never slower than
the plain loop as measured. Results are cached per CPU, model, input size and batch in
``~/.cache/lightnets/calibration.json`` (``LIGHTNETS_CACHE`` moves it), so each is paid once.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from lightnets.files import write_atomic
from lightnets.hardware import cpu_flags, native_bf16

if TYPE_CHECKING:  # the loop's types, for the signatures of the two functions it calls
    from lightnets.checkpoint import Checkpoint
    from lightnets.tasks import Task
    from lightnets.train.config import TrainConfig
    from lightnets.train.runtime import Runtime

WARMUP_STEPS, TIMED_STEPS = 2, 3
# another setting must beat the plain one by more than this to replace it (the spread of
# repeated step timings on a quiet machine is a few percent)
MARGIN = 0.05
# calibration costs about (candidates x 5) training steps: it runs only when that is at most
# 5% of the run
MIN_RUN_STEPS = 500


@dataclass(frozen=True)
class Setting:
    """How a training step runs: autocast precision, memory format, fused optimiser."""

    amp: str             # 'off' (fp32) or 'bf16'
    channels_last: bool
    fused: bool          # the fused optimiser kernel; False: PyTorch's own choice

    def label(self) -> str:
        return (f"{'fp32' if self.amp == 'off' else self.amp} "
                f"{'channels-last' if self.channels_last else 'NCHW'}"
                f"{' fused' if self.fused else ''}")


PLAIN = Setting("off", False, False)  # what a plain PyTorch loop runs


def candidates(bf16: bool | None = None, precisions: tuple[str, ...] = ("off", "bf16")
               ) -> list[Setting]:
    """The plain setting, then each of ``precisions`` in both memory formats with the fused
    optimiser; bf16 only where this CPU computes it natively."""
    bf16 = native_bf16()[0] if bf16 is None else bf16
    precisions = tuple(p for p in precisions if p != "bf16" or bf16)
    return [PLAIN, *(Setting(amp, layout, True) for amp in precisions
                     for layout in (False, True))]


def choose(settings: list[Setting], seconds_per_step: Callable[[Setting], float],
           margin: float = MARGIN) -> tuple[Setting, dict[Setting, float]]:
    """The fastest of ``settings`` by ``seconds_per_step``, and every timing. :data:`PLAIN`,
    when among them, stays chosen unless another is faster by more than ``margin``."""
    times = {setting: seconds_per_step(setting) for setting in settings}
    best = min(times, key=times.__getitem__)
    if PLAIN in times and times[best] > times[PLAIN] * (1 - margin):
        best = PLAIN
    return best, times


def time_steps(model: nn.Module, setting: Setting, batch: tuple[Any, Any],
               loss: Callable[[nn.Module, Any, Any], torch.Tensor],
               warmup: int = WARMUP_STEPS, timed: int = TIMED_STEPS) -> float:
    """Median seconds of one SGD training step of a copy of ``model`` under ``setting``."""
    model = copy.deepcopy(model).train()
    memory_format = torch.channels_last if setting.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    images, labels = batch  # a detector's list of images is batched inside it
    if isinstance(images, torch.Tensor):
        images = images.to(memory_format=memory_format)
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9,
                                fused=setting.fused or None)
    dtype = torch.bfloat16 if setting.amp == "bf16" else None
    times = []
    for step in range(warmup + timed):
        started = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            value = loss(model, images, labels)
        optimizer.zero_grad(set_to_none=True)
        value.backward()
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - started)
    return statistics.median(times)


def cache_file() -> Path:
    root = os.environ.get("LIGHTNETS_CACHE") or Path(
        os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "lightnets"
    return Path(root) / "calibration.json"


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else the platform's word for it), its core
    count, PyTorch's best instruction set and a digest of its feature flags: virtual machines
    name very different CPUs alike ("AMD EPYC" for a Zen 1 and a Zen 4)."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    flags = hashlib.sha1(" ".join(sorted(cpu_flags())).encode()).hexdigest()[:8]
    return (f"{name}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}, "
            f"flags {flags}")


def cache_key(model: str, model_args: dict[str, Any], input_shape: tuple[int, ...],
              batch_size: int) -> str:
    args = json.dumps(model_args, sort_keys=True, default=str)
    return (f"{cpu_name()} | {torch.get_num_threads()} threads | torch {torch.__version__} | "
            f"{model} {args} | {'x'.join(map(str, input_shape))} | batch {batch_size}")


def read_cache(path: Path | None = None) -> dict[str, Any]:
    """The cached choices; an unreadable cache counts as empty (it is only a cache)."""
    try:
        values = json.loads((path or cache_file()).read_text())
    except (OSError, ValueError):
        return {}
    return values if isinstance(values, dict) else {}


def remember(key: str, chosen: Setting, times: dict[Setting, float],
             path: Path | None = None) -> None:
    """Add one choice to the cache; a cache that cannot be written is skipped silently."""
    path = path or cache_file()
    values = read_cache(path)
    values[key] = {"chosen": asdict(chosen),
                   "ms_per_step": {s.label(): round(t * 1000, 3) for s, t in times.items()}}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(values, indent=1))
    except OSError:
        pass


def calibrated(key: str, settings: list[Setting],
               seconds_per_step: Callable[[Setting], float], path: Path | None = None
               ) -> tuple[Setting, dict[str, float], bool]:
    """``(setting, ms per step by label, from_cache)``: the cached choice for ``key`` when it
    is one of ``settings``, else :func:`choose`. The first setting is timed again at the end:
    only when both timings agree within twice the margin is the machine steady enough for the
    choice to be remembered (a choice made under another program's load serves this run only).
    """
    entry = read_cache(path).get(key)
    if isinstance(entry, dict):
        try:
            setting = Setting(**entry["chosen"])
        except (TypeError, KeyError):
            setting = None
        if setting in settings:
            return setting, dict(entry.get("ms_per_step", {})), True
    chosen, times = choose(settings, seconds_per_step)
    first, again = times[settings[0]], seconds_per_step(settings[0])
    if abs(again - first) <= 2 * MARGIN * min(first, again):
        remember(key, chosen, times, path)
    return chosen, {s.label(): round(t * 1000, 3) for s, t in times.items()}, False


def wanted(config: TrainConfig, fixed: bool, runtime: Runtime, task: Task,
               resume_from: Checkpoint | None, steps: int) -> bool:
    """Whether this run times its candidate settings first :
    a new run on one CPU process, of a task whose step can be timed, long enough to pay for it,
    whose precision, memory format and optimiser kernel the user left open."""
    return (config.calibrate and not fixed and config.fused_optimizer is None
            and resume_from is None and runtime.device.type == "cpu"
            and not runtime.distributed and not config.compile and task.calibrates
            and config.epochs * steps >= MIN_RUN_STEPS)


def calibrate_run(config: TrainConfig, runtime: Runtime, task: Task, model: nn.Module,
                  num_classes: int) -> TrainConfig:
    """Time the candidate settings on copies of ``model`` (or take the cached choice), set the
    runtime to the fastest and record it in the configuration."""
    shape = (config.in_chans, config.input_size, config.input_size)

    def loss(network: nn.Module, images: Any, labels: Any) -> torch.Tensor:
        return task.forward_loss(network, images, labels, 0.0, 0.0)[1]

    key = cache_key(config.model, config.model_args, shape, config.batch_size)
    with torch.random.fork_rng():  # the timing steps must not move the run's random stream
        batch = task.calibration_batch(config.batch_size, shape, num_classes)
        chosen, times, cached = calibrated(
            key, candidates(precisions=task.calibration_precisions),
            lambda setting: time_steps(model, setting, batch, loss))
    runtime.amp_dtype = torch.bfloat16 if chosen.amp == "bf16" else None
    runtime.channels_last = chosen.channels_last
    return dataclasses.replace(config, amp=chosen.amp, channels_last=chosen.channels_last,
                               fused_optimizer=chosen.fused, calibration={
                                   "chosen": chosen.label(), "ms_per_step": times,
                                   "cached": cached})
