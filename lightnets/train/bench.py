"""The trainer's training step for ``lightnets bench --mode train``: the same
:class:`~lightnets.train.step.TrainStep` the loop runs, with the loop's defaults for the device
and input size (autocast, memory format, optimiser implementation, label smoothing), timed by
:func:`lightnets.profile.bench.benchmark` beside a peer's plain step."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lightnets.train.config import DATA_DEFAULTS, TrainConfig
from lightnets.train.optim import build_optimizer, fused_by_default
from lightnets.train.runtime import pick_precision_and_layout
from lightnets.train.step import TrainStep


def trainer_step(model: nn.Module, images: torch.Tensor, compiled: bool = False
                 ) -> tuple[Callable[[], None], bool, str]:
    """The trainer's step of ``model`` on ``images`` (SGD with momentum, as the peer's plain
    step, at a small learning rate so that repeats stay finite), whether it runs channels-last,
    and its settings in words (a :data:`lightnets.profile.bench.StepFactory`). ``compiled``: the
    step of ``torch.compile(model)``, as ``lightnets train --compile`` runs it."""
    device, defaults = images.device, TrainConfig()  # what a classifier's run takes
    amp_dtype, channels_last = pick_precision_and_layout(
        defaults.amp, defaults.channels_last, device, model, tuple(images.shape[1:]))
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format).train()
    images = images.contiguous(memory_format=memory_format)
    labels = torch.zeros(len(images), dtype=torch.long, device=device)
    optimizer = build_optimizer(model, "sgd", lr=1e-4, weight_decay=5e-5)
    step = TrainStep(torch.compile(model) if compiled else model, optimizer, amp_dtype=amp_dtype,
                     label_smoothing=DATA_DEFAULTS["digits"]["label_smoothing"])

    def run() -> None:
        step.update(step.forward(images, labels)[1])

    precision = {torch.bfloat16: "bf16 autocast",
                 torch.float16: "fp16 autocast"}.get(amp_dtype, "fp32")
    layout = "channels-last" if channels_last else "NCHW"
    fused = "fused " if fused_by_default(device) else ""
    return run, channels_last, f"{precision}, {layout}, {fused}SGD"
