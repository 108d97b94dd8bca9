"""Quantization-aware training (QAT): a short fine-tuning of a trained model with its int8
rounding simulated ("fake quantization") in the forward pass, so the weights learn to sit where
int8 loses least (Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018, arXiv 1712.05877; Krishnamoorthi, "Quantizing
deep convolutional networks for efficient inference: A whitepaper", 2018, arXiv 1806.08342).

PyTorch 2 Export (PT2E) quantization, as torchao documents it ("PyTorch 2 Export Quantization-
Aware Training"): ``torch.export`` of the training-mode model, ``prepare_qat_pt2e`` with
ExecuTorch's ``XNNPACKQuantizer`` (symmetric int8 weights per output channel, int8 activations,
``is_qat=True``: BatchNorm stays a separate op that QAT folds into the convolution's fake-
quantized weight), a few epochs of the task's loss on the checkpoint's own training split,
then ``convert_pt2e``. The converted graph is lowered to an int8 ``.pte`` (XNNPACK) or exported
to an ONNX QDQ graph (``QuantizeLinear`` / ``DequantizeLinear`` around float operators, int8
weights) that ONNX Runtime fuses into integer kernels.

As the torchao tutorial does, the second half of the epochs (of two or more) runs with the
activation ranges (observers) and the BatchNorm statistics frozen: the weights then fine-tune
against the ranges and the folded scales the int8 file will have.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from rich.console import Console
from torch import nn
from torch.utils.data import DataLoader

from lightnets.export.formats import Target
from lightnets.export.onnx import export_onnx, quiet_exporter, without_inplace
from lightnets.export.runtimes import executorch_pte
from lightnets.export.source import ModelSource
from lightnets.files import first_line
from lightnets.optional import require
from lightnets.tasks import Task
from lightnets.train.optim import build_optimizer, build_scheduler
from lightnets.train.report import epoch_progress
from lightnets.train.step import TrainStep

PACKAGES = (("torchao", "quantization-aware training"),
            ("executorch", "quantization-aware training (the XNNPACK quantizer)"))
# the runtimes a QAT model is written for: an int8 .pte, or an ONNX QDQ graph
QAT_BACKENDS = ("onnxruntime", "executorch")
QAT_DEFAULT_BACKEND = "onnxruntime"
# PyTorch's batch-norm ops in an exported training graph; argument 5 is ``training``
BATCH_NORM_OPS = (torch.ops.aten.batch_norm.default,
                  torch.ops.aten._native_batch_norm_legit.default)
# fine-tuning starts from trained weights: a small fraction of the training's peak rate (our
# choice, measured on the digits: see the deployment guide), not a figure from the papers
LR_FRACTION = 0.01


@dataclass(frozen=True)
class QatOptions:
    """How long and how fast to fine-tune (``lr`` None: the checkpoint's peak rate times
    :data:`LR_FRACTION`); ``max_steps`` caps the optimiser steps per epoch (tests)."""

    epochs: int = 1
    lr: float | None = None
    max_steps: int | None = None


def qat_packages() -> tuple[tuple[str, str], ...]:
    """``(package, purpose)`` QAT needs beyond post-training quantization's."""
    return PACKAGES


def check_qat(precision: str, backend: str, options: QatOptions) -> None:
    """A one-line error for options QAT does not take, before any work."""
    if precision != "int8":
        raise ValueError(f"--qat fine-tunes for int8, not {precision}")
    if backend not in QAT_BACKENDS:
        raise ValueError(f"--qat writes for {' or '.join(QAT_BACKENDS)}, not {backend!r}")
    if options.epochs < 1 or (options.lr is not None and options.lr <= 0):
        raise ValueError(f"--qat needs epochs >= 1 and a positive learning rate, got "
                         f"{options.epochs} and {options.lr}")
    if options.max_steps is not None and options.max_steps < 1:
        raise ValueError(f"max_steps must be >= 1, got {options.max_steps}")


def check_qat_task(task: Task) -> None:
    """A one-line error for a model QAT does not fine-tune (read from the checkpoint)."""
    if not task.quantization_aware:
        raise ValueError(f"--qat fine-tunes classifiers, not a {task.model_noun}: quantize it "
                         "after training, without --qat")


class Network(nn.Module):
    """The prepared graph as the task's loss calls a lightnets classifier
    (``model(x, return_aux=True)``): the exported graph has no auxiliary heads."""

    def __init__(self, graph: nn.Module) -> None:
        super().__init__()
        self.graph = graph

    def forward(self, x: torch.Tensor, return_aux: bool = False) -> Any:
        logits = self.graph(x)
        return (logits, []) if return_aux else logits


def prepare(model: nn.Module, input_size: tuple[int, ...]) -> torch.fx.GraphModule:
    """``torch.export`` of the training-mode ``model`` (dynamic batch), fake-quantized for
    XNNPACK's int8 kernels by ``prepare_qat_pt2e``."""
    pt2e = require("torchao.quantization.pt2e.quantize_pt2e", "quantization-aware training")
    xnnpack = require("executorch.backends.xnnpack.quantizer.xnnpack_quantizer",
                      "quantization-aware training")
    quantizer = xnnpack.XNNPACKQuantizer().set_global(
        xnnpack.get_symmetric_quantization_config(is_per_channel=True, is_qat=True))
    batch = torch.export.Dim("batch", min=1, max=executorch_pte.MAX_BATCH)
    try:
        with quiet_exporter():
            program = torch.export.export(without_inplace(model).train(),
                                          (torch.randn(2, *input_size),),
                                          dynamic_shapes=({0: batch},))
    except Exception as error:
        raise ValueError(f"torch.export of {type(model).__name__} for QAT failed: "
                         f"{first_line(error)}") from None
    return pt2e.prepare_qat_pt2e(program.module(), quantizer)


def freeze_ranges_and_statistics(prepared: torch.fx.GraphModule) -> None:
    """Stop the observers updating the activation ranges and the BatchNorm layers their
    running statistics (torchao's QAT tutorial: ``disable_observer`` and the batch-norm ops'
    ``training`` argument set to False)."""
    prepared.apply(require("torchao.quantization.pt2e", "quantization-aware training")
                   .disable_observer)
    for node in prepared.graph.nodes:
        if node.target in BATCH_NORM_OPS:
            node.args = (*node.args[:5], False, *node.args[6:])
    prepared.recompile()


def fine_tune(prepared: torch.fx.GraphModule, task: Task, train_data: Any,
              training: dict[str, Any], options: QatOptions, show: bool) -> float:
    """``options.epochs`` of the task's loss on ``train_data`` with the checkpoint's optimiser,
    batch size, weight decay and label smoothing, cosine-decayed from the QAT learning rate;
    the last training loss."""
    pt2e = require("torchao.quantization.pt2e", "quantization-aware training")
    batch_size = min(int(training.get("batch_size") or 32), executorch_pte.MAX_BATCH)
    loader = DataLoader(train_data, batch_size=batch_size, shuffle=True, drop_last=True,
                        collate_fn=task.collate,
                        generator=torch.Generator().manual_seed(int(training.get("seed", 0))))
    steps = min(len(loader), options.max_steps or len(loader))
    if steps < 1:
        raise ValueError(f"QAT needs at least one batch of {batch_size} training images, got "
                         f"{len(train_data)}")
    network = Network(prepared)
    lr = options.lr or LR_FRACTION * float(training.get("lr") or 0.01)
    optimizer = build_optimizer(network, training.get("optimizer") or "sgd", lr,
                                float(training.get("weight_decay") or 0.0),
                                float(training.get("momentum", 0.9)))
    step = TrainStep(network, optimizer, build_scheduler(optimizer, 0, steps * options.epochs),
                     label_smoothing=float(training.get("label_smoothing") or 0.0), task=task)
    pt2e.move_exported_model_to_train(prepared)
    frozen_from = options.epochs - options.epochs // 2  # the second half of two or more
    loss = torch.tensor(math.nan)
    for epoch in range(options.epochs):
        if epoch == frozen_from:
            freeze_ranges_and_statistics(prepared)
        with epoch_progress(Console(stderr=True), show, accuracy=False) as progress:
            bar = progress.add_task(f"QAT epoch {epoch + 1}/{options.epochs}", total=steps,
                                    loss=0.0, speed=0.0)
            for images, labels in itertools.islice(loader, steps):
                _, loss = step.forward(images, labels)
                step.update(loss)
                progress.update(bar, advance=1, loss=float(loss.detach()))
    pt2e.move_exported_model_to_eval(prepared)
    return float(loss.detach())


def qat_model(source: ModelSource, task: Task, train_data: Any, options: QatOptions,
              say: Callable[[str], None], show: bool = False) -> torch.fx.GraphModule:
    """The int8 graph (torchao's ``convert_pt2e``) of ``source``'s model after QAT on
    ``train_data``."""
    pt2e = require("torchao.quantization.pt2e.quantize_pt2e", "quantization-aware training")
    say(f"QAT: fake-quantizing {source.name} (PT2E, XNNPACK quantizer)...")
    prepared = prepare(source.model, source.input_size)
    say(f"QAT: fine-tuning {options.epochs} epoch(s) on {len(train_data)} training images...")
    loss = fine_tune(prepared, task, train_data, source.training, options, show)
    say(f"QAT: last training loss {loss:.4f}; converting to int8...")
    return pt2e.convert_pt2e(prepared)


def write_qat(converted: torch.fx.GraphModule, path: Path, artefact_format: str,
              input_size: tuple[int, ...], name: str) -> Path:
    """The converted int8 graph as an XNNPACK ``.pte`` or an ONNX QDQ file (dynamic batch)."""
    if artefact_format == "executorch":
        target = Target(path, tuple(input_size), True, 1, False, 0)
        return executorch_pte.write_program(executorch_pte.exported_program(converted, target),
                                            path, name)
    return export_onnx(converted, path, tuple(input_size))


def training_split(source: ModelSource, task: Task) -> Any:
    """The checkpoint's own training split (its data, validation fraction and seed: none of
    the gate's validation images), augmented as it trained."""
    training = source.training
    if not training.get("data"):
        raise ValueError("the checkpoint does not record its data, which QAT fine-tunes on")
    return task.build_data(training["data"], source.preprocess,
                           augment=bool(training.get("augment", True)),
                           val_fraction=training.get("val_fraction", 0.2),
                           seed=training.get("seed", 0), warn=False).train


def qat_reduced(source: ModelSource, task: Task, folder: Path, artefact_format: str,
                options: QatOptions, say: Callable[[str], None], show: bool = False) -> Path:
    """The int8 file (in ``folder``) of ``source`` after QAT on its training split."""
    converted = qat_model(source, task, training_split(source, task), options, say, show)
    say("QAT: writing the int8 model...")
    suffix = ".pte" if artefact_format == "executorch" else ".onnx"
    return write_qat(converted, folder / f"qat{suffix}", artefact_format, source.input_size,
                     source.name)
