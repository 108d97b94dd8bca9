"""The training loop, read top to bottom: set-up (run folder, model settings, data, model and
optimiser, resume), then per epoch :func:`train_one_epoch`, :func:`validate` and
:func:`save_epoch`. What differs by task (data, batches, loss, metric) the model's task answers
(:mod:`lightnets.tasks`).

Runs on one process or, under ``torchrun``, on several with DistributedDataParallel (one data
shard per process, metrics summed over processes, files written by rank 0 only). On the CPU a run
killed and resumed ends with the same weights as one never interrupted: every checkpoint holds
the RNG states, and the data order and augmentation derive from them alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import itertools
import random
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, Subset

from lightnets.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lightnets.files import write_atomic
from lightnets.data import (CLASSIFICATION_KINDS, DataBundle, build_data, default_preprocess,
                            default_workers, make_loader, normalize_transform)
from lightnets.data.seeding import SeededSampler, SeededSamples
from lightnets.optional import by_product
from lightnets.registry import create_model, meta_model
from lightnets.tasks import Task, task_for
from lightnets.train import calibrate, report
from lightnets.train.config import (TrainConfig, given_backbone, resolve_config, resumed_config,
                                    run_label)
from lightnets.train.distill import load_teacher
from lightnets.train.ema import ModelEma
from lightnets.train.finetune import backbone_parameters, freeze_backbone
from lightnets.train.optim import build_optimizer, build_scheduler
from lightnets.train.precise_bn import lagging_batchnorm, recompute_batchnorm_stats
from lightnets.train.rng import capture_rng, restore_rng
from lightnets.train.runtime import (Runtime, check_sync_bn, pick_precision_and_layout,
                                     setup_runtime, sync_batchnorm)
from lightnets.train.step import TrainStep, accumulation_group, optimizer_steps
from lightnets.train.tensorboard import check_logger, open_logger
from lightnets.weights import SourceWeights, build_pretrained, read_pretrained

# batches precise BN averages over, where the model's BatchNorm averages lag (slow momentum or
# short epochs: see precise_bn.py)
PRECISE_BN_BATCHES = 20
# Most of the run's time the curves may take: one plot costs ~0.3 s of matplotlib, more than a
# whole epoch on a dozen images, so they are redrawn only while the drawing so far stays within
# this share of the run's time (and always after the last epoch).
PLOT_SHARE = 0.05


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped, its last good checkpoint kept."""


@dataclass
class TrainResult:
    """Where a finished run left its files, and how it did: ``best_score`` is the best
    validation figure of the ``task``'s ``metric`` (top-1, mIoU or mAP, a fraction)."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    best_score: float
    history: list[dict[str, float]]
    train_seconds: float
    task: str
    metric: str


@dataclass
class Run:
    """What the set-up hands the epochs: the settings, the data, the model and its optimiser,
    and the state a checkpoint carries on."""

    config: TrainConfig
    runtime: Runtime
    task: Task
    run_dir: Path
    data: DataBundle
    preprocess: dict[str, Any]
    train_loader: DataLoader
    val_loader: DataLoader
    sampler: DistributedSampler | None
    steps_per_epoch: int
    model: nn.Module
    model_args: dict[str, Any]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    train_step: TrainStep | None = None
    mix: Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, Any]] | None = None
    ema: ModelEma | None = None
    backbone: list[nn.Parameter] = field(default_factory=list)
    pruning: dict[str, Any] | None = None
    start_epoch: int = 0
    best_score: float = -1.0
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def memory_format(self) -> torch.memory_format:
        return self.runtime.memory_format

    @property
    def normalize(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The last preprocessing step, run on the device on whole batches."""
        return normalize_transform(self.preprocess)

    @property
    def last_path(self) -> Path:
        return self.run_dir / "last.pt"

    @property
    def best_path(self) -> Path:
        return self.run_dir / "best.pt"


def train(config: TrainConfig, overwrite: bool = False, console: Console | None = None
          ) -> TrainResult:
    """Train ``config.model`` on ``config.data``; see :class:`TrainConfig` for every knob.
    Returns the run folder, checkpoints and metrics. Raises ``ValueError`` for bad settings
    (before any training) and :class:`NonFiniteLossError` if the loss diverges."""
    epochs = train_epochs(config, overwrite, console)
    while True:
        try:
            next(epochs)
        except StopIteration as finished:
            return finished.value


def train_epochs(config: TrainConfig, overwrite: bool = False, console: Console | None = None
                 ) -> Generator[dict[str, float], None, TrainResult]:
    """:func:`train` one epoch at a time: yields each epoch's metrics row once its checkpoint
    is written, and returns the :class:`TrainResult` (for interleaving a run with other work,
    as ``benchmarks/train_vs_torchvision.py`` does with torchvision's loop)."""
    resume_from = None
    if config.resume:  # the stored configuration, with the caller's changes
        resume_from = load_checkpoint(config.resume, prefer="last")
        resume_from.require("to resume training", "optimizer", "scheduler", "scaler", "rng")
        config = resumed_config(config, resume_from)
    if config.data is None:  # the embedded data of the model's task
        config = dataclasses.replace(config, data=task_for(config.model).embedded_data)
    check_logger(config.log)
    runtime = setup_runtime(config.device, config.amp, config.channels_last)
    with contextlib.ExitStack() as cleanup:  # the process group, then the run folder's lock
        cleanup.callback(runtime.close)
        return (yield from _train(config, runtime, resume_from, overwrite, console or Console(),
                                  cleanup))


def _train(config: TrainConfig, runtime: Runtime, resume_from: Checkpoint | None,
           overwrite: bool, console: Console, cleanup: contextlib.ExitStack
           ) -> Generator[dict[str, float], None, TrainResult]:
    """The loop proper, once the runtime (and process group) is set up."""
    if config.sync_bn:
        check_sync_bn(runtime)
    seed = config.seed + runtime.rank  # each process its own augmentation and dropout
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)
    run_dir = claim_run_dir(config, runtime, resume_from, overwrite, cleanup)
    plots = runtime.is_main and by_product("matplotlib", f"{run_dir / 'curves.png'}")
    run = set_up(config, runtime, resume_from, run_dir)
    write_run_files(run, resume_from, overwrite, console)
    logger = cleanup.enter_context(open_logger(run.config.log, run_dir, runtime.is_main))
    seconds = 0.0  # of training, validation and checkpoints (not of a paused consumer)
    plot_seconds = 0.0
    for epoch in range(run.start_epoch, run.config.epochs):
        epoch_start = time.perf_counter()
        tally, train_seconds = train_one_epoch(run, epoch, console)
        examples = logger.examples(run.task) if logger else 0
        result = validate(run, epoch, examples=examples)
        # the moving average is what eval, export and predict take: its figure picks best.pt
        averaged = validate(run, epoch, run.ema.module, examples) if run.ema else None
        row = {"epoch": epoch + 1, "lr": run.optimizer.param_groups[0]["lr"],
               "train_loss": float(tally[0] / tally[3]),
               **({"train_acc": float(tally[1] / tally[2].clamp(min=1))}
                  if run.task.train_accuracy else {}),
               **result.row(), **(report.ema_columns(averaged.row()) if averaged else {}),
               "epoch_seconds": time.perf_counter() - epoch_start,
               "images_per_second": float(tally[3]) / train_seconds}
        draw = plots and (epoch + 1 == run.config.epochs or plot_seconds <= PLOT_SHARE * seconds)
        plot_seconds += save_epoch(run, epoch, row, (averaged or result).primary, draw, console)
        if logger:
            logger.log_epoch(run.task, row, averaged or result)
        seconds += time.perf_counter() - epoch_start
        yield row
    return TrainResult(run_dir, run.last_path, run.best_path, run.best_score, run.history,
                       seconds, run.task.name, run.task.metric)


def claim_run_dir(config: TrainConfig, runtime: Runtime, resume_from: Checkpoint | None,
                  overwrite: bool, cleanup: contextlib.ExitStack) -> Path:
    """The run folder: chosen and locked by rank 0 before any long work, shared with the
    other processes (each stops on rank 0's error, none waits forever)."""
    choice: list[str | None] = [None, None]  # the folder, or why there is none
    failure: Exception | None = None
    if runtime.is_main:
        try:
            resume_dir = Path(resume_from.path).parent if resume_from is not None else None
            choice[0] = str(cleanup.enter_context(report.claimed_run_dir(
                config.runs_dir, config.name, run_label(config), config.data, overwrite,
                resume_dir)))
        except (ValueError, OSError) as error:
            failure, choice[1] = error, str(error)
    if runtime.distributed:
        dist.broadcast_object_list(choice, src=0)
    if choice[1]:
        raise failure or ValueError(choice[1])
    return Path(choice[0])


def set_up(config: TrainConfig, runtime: Runtime, resume_from: Checkpoint | None,
           run_dir: Path) -> Run:
    """Settings, data, model, optimiser and, when resuming, their stored states."""
    fixed = config.amp != "auto" or config.channels_last is not None  # before they resolve
    config, task, kind, pretrained = resolve_model_settings(config, resume_from, runtime)
    preprocess = default_preprocess(kind, config.input_size, config.in_chans,
                                    pretrained.preprocess if pretrained else None)
    if resume_from is not None and config.pretrained:  # what the first run derived from them
        preprocess = resume_from.preprocess
    # the loaders hand over images before their last step (uint8 for decoded files), which
    # runs on the device, on whole batches: see transforms.train_transform
    data = build_data(config.data, preprocess, config.augment, config.val_fraction,
                      config.seed, warn=runtime.is_main, normalize=False, kind=kind,
                      auto_augment=config.auto_augment, random_erase=config.random_erase,
                      mosaic=config.mosaic, zoom_crop=config.zoom_crop,
                      colour_jitter=config.colour_jitter)
    train_loader, val_loader, sampler, steps = make_loaders(config, runtime, task, data)
    model, model_args, pruning = build_model(config, runtime, task, data, pretrained,
                                             resume_from)
    if calibrate.wanted(config, fixed, runtime, task, resume_from, steps):
        config = calibrate.calibrate_run(config, runtime, task, model, data.num_classes)
        model = model.to(memory_format=runtime.memory_format)
    if config.precise_bn_batches is None:
        config = dataclasses.replace(config, precise_bn_batches=PRECISE_BN_BATCHES
                                     if lagging_batchnorm(model, steps) else 0)
    teacher = (load_teacher(config.teacher, data.num_classes, config.in_chans, runtime.device)
               .to(memory_format=runtime.memory_format) if config.teacher else None)
    # the fused kernels take every parameter's momentum buffer at once, and a backbone frozen
    # for the first epochs has none when it thaws: PyTorch's own update there
    optimizer = build_optimizer(model, config.optimizer, config.lr, config.weight_decay,
                                config.momentum, fused=False if config.freeze_backbone_epochs
                                else config.fused_optimizer)
    # the schedule counts optimiser steps: one per group of `accumulate` batches
    updates = optimizer_steps(steps, config.accumulate)
    scheduler = build_scheduler(optimizer, round(config.warmup_epochs * updates),
                                config.epochs * updates)
    scaler = torch.amp.GradScaler(runtime.device.type,
                                  enabled=runtime.amp_dtype == torch.float16)
    run = Run(dataclasses.replace(config, name=run_dir.name, runs_dir=str(run_dir.parent),
                                  resume=None),
              runtime, task, run_dir, data, preprocess, train_loader, val_loader, sampler,
              steps, model, model_args, optimizer, scheduler, scaler, pruning=pruning)
    if resume_from is not None:
        restore_state(run, resume_from, config.seed + runtime.rank)
    run.train_step = make_train_step(run, teacher)
    run.mix = task.batch_mix(config, data.num_classes)
    if config.model_ema:  # after DDP has given every process rank 0's weights
        run.ema = ModelEma(model, config.model_ema_decay)
        if resume_from is not None:
            resume_from.require("to resume a run with --model-ema", "ema")
            resume_from.restore("ema", run.ema.load_state_dict)
    return run


def resolve_model_settings(config: TrainConfig, resume_from: Checkpoint | None,
                           runtime: Runtime
                           ) -> tuple[TrainConfig, Task, str, SourceWeights | None]:
    """The configuration with the model's and data's defaults filled in and checked, the
    model's task, the kind of its data, and the pretrained weights (read before the data: their
    preprocessing sets the data's). Precision and memory format are chosen
    for this model at this size (the memory format recorded, so that `lightnets eval` and a
    resumed run use it too)."""
    fixed = sorted({"num_classes", "in_chans"} & set(config.model_args))
    if fixed:
        raise ValueError(f"model_args cannot set {', '.join(fixed)}: the data decides them "
                         "(use --in-chans for the channels)")
    task = task_for(config.model)
    # the constructor options that reproduce the weights join the model arguments (so a
    # resume, which does not read them again, rebuilds the same network); a backbone's weights
    # are read where the model is built
    pretrained: SourceWeights | None = None
    if config.pretrained and resume_from is None and not task.pretrained_is_backbone:
        pretrained = read_pretrained(config.pretrained, config.model, config.pretrained_source,
                                     **config.model_args)
        config = dataclasses.replace(config, model_args={**pretrained.options,
                                                         **config.model_args})
    shape_only = meta_model(config.model, **config.model_args)
    task.check_config(config)
    if config.drop_path_rate:  # a constructor argument, kept with the others in checkpoints
        if "drop_path_rate" not in inspect.signature(type(shape_only)).parameters:
            raise ValueError(f"--drop-path: {config.model} has no residual branch to drop "
                             "(stochastic depth applies to MobileNetV2/V3, GhostNet, ResNet, "
                             "ResNeXt, SE-ResNet, ShuffleNetV1 and Xception)")
        config = dataclasses.replace(config, model_args={
            **config.model_args, "drop_path_rate": config.drop_path_rate})
    kind = task.data_kind(config.data)
    # Auxiliary classifiers (GoogLeNet, Inception v3) are built off by default, like
    # torchvision's; training switches them on, as their papers train, unless told otherwise.
    if ("aux_logits" in inspect.signature(type(shape_only)).parameters
            and "aux_logits" not in config.model_args):
        config = dataclasses.replace(config, model_args={**config.model_args, "aux_logits": True})
    config = resolve_config(config, kind, pretrained.preprocess["input_size"] if pretrained
                            else shape_only.default_input_size[-1])
    runtime.amp_dtype, runtime.channels_last = pick_precision_and_layout(
        *task.runtime_defaults(config.amp, config.channels_last), runtime.device, shape_only,
        task.input_shape(shape_only, config.input_size))
    config = dataclasses.replace(config, channels_last=runtime.channels_last)
    min_size = max(shape_only.min_input_size)
    if config.input_size < min_size:
        raise ValueError(f"{config.model} needs inputs of at least {min_size}x{min_size}; "
                         f"got --input-size {config.input_size}")
    return config, task, kind, pretrained


def make_loaders(config: TrainConfig, runtime: Runtime, task: Task, data: DataBundle
                 ) -> tuple[DataLoader, DataLoader, DistributedSampler | None, int]:
    """The training loader (a shard per process), the validation loader (every
    world_size-th image per process, so the summed tallies count each once), the sampler
    and the steps of an epoch."""
    batch_size = config.batch_size // runtime.world_size  # per process
    if batch_size < 1:
        raise ValueError(f"batch_size {config.batch_size} is smaller than the "
                         f"{runtime.world_size} processes")
    if len(data.train) < batch_size * runtime.world_size:
        raise ValueError(f"the training split has {len(data.train)} images, fewer than one batch "
                         f"of {config.batch_size}; lower --batch-size")
    workers = default_workers(data.kind) if config.workers is None else config.workers
    sampler = (DistributedSampler(data.train, runtime.world_size, runtime.rank, shuffle=True,
                                  seed=config.seed, drop_last=True)
               if runtime.distributed else None)
    # Loader processes keep their RNG from epoch to epoch (persistent workers), which a resumed
    # run cannot reproduce: with them, and for segmenters and detectors always (so that a run
    # does not depend on how many there are), each sample's augmentation is drawn from a seed
    # the main process hands out with it (data/seeding.py), and the loaders' own seeds come
    # from a generator of theirs, not from the main process's RNG (persistent workers draw
    # them once, at the first epoch run). Classifiers on 0 workers draw as they always did.
    train_set, order, generator = data.train, sampler, None
    if workers > 0 or data.kind not in CLASSIFICATION_KINDS:
        train_set = SeededSamples(data.train)
        order = SeededSampler(sampler if sampler is not None else RandomSampler(data.train))
        generator = torch.Generator().manual_seed(config.seed)
    train_loader = make_loader(train_set, batch_size, runtime.device, workers, shuffle=True,
                               sampler=order, drop_last=True, collate=task.collate,
                               generator=generator)
    val_shard = Subset(data.val, range(runtime.rank, len(data.val), runtime.world_size))
    val_loader = make_loader(val_shard, 2 * batch_size, runtime.device, workers,
                             collate=task.collate, generator=generator)
    steps = len(train_loader)
    if config.limit_train_batches:
        steps = min(steps, config.limit_train_batches)
    return train_loader, val_loader, sampler, steps


def build_model(config: TrainConfig, runtime: Runtime, task: Task, data: DataBundle,
                pretrained: SourceWeights | None, resume_from: Checkpoint | None
                ) -> tuple[nn.Module, dict[str, Any], dict[str, Any] | None]:
    """The model on its device and memory format, its constructor arguments (what the
    checkpoint records) and, when it starts from a pruned model, its pruning."""
    num_classes = task.model_classes(data.num_classes, config.binary)
    model_args = {**task.model_args(config), **config.model_args, "num_classes": num_classes,
                  "in_chans": config.in_chans}
    init = load_checkpoint(config.init_from, prefer="last") if config.init_from else None
    if init is not None:  # e.g. a pruned model, rebuilt from its channel plan
        init.check_matches(config.model, num_classes, config.in_chans, what="init_from")
        model_args = dict(init.model_args)
        model = init.build_model()
    elif pretrained:
        model = build_pretrained(pretrained, **model_args)
    elif task.pretrained_is_backbone and config.pretrained and resume_from is None:
        # classifier weights (lightnets, torchvision, timm) for the trunk; the checkpoint keeps
        # the arguments without them, since its state dict holds every weight
        model = create_model(config.model, **model_args, backbone_args={
            "checkpoint_path": config.pretrained, "source": config.pretrained_source})
    else:
        model = create_model(config.model, **model_args)
    model = model.to(runtime.device).to(memory_format=runtime.memory_format)
    return model, model_args, init.pruning if init else None


def restore_state(run: Run, resume_from: Checkpoint, seed: int) -> None:
    """Weights, optimiser, schedule, scaler, epoch, metrics and RNG of the run resumed."""
    resume_from.check_matches(run.config.model, run.model_args["num_classes"],
                              run.config.in_chans, what="--resume checkpoint")
    resume_from.restore("model", run.model.load_state_dict)
    resume_from.restore("optimizer", run.optimizer.load_state_dict)
    resume_from.restore("scheduler", run.scheduler.load_state_dict)
    if resume_from.scaler or not run.scaler.is_enabled():  # else fp16 starts a fresh scaler
        resume_from.restore("scaler", run.scaler.load_state_dict)
    run.start_epoch, run.best_score = resume_from.epoch, resume_from.best_score
    run.history = list(resume_from.history)
    if run.runtime.distributed:  # one stored state cannot serve every process: re-seed
        torch.manual_seed(seed + 1_000_003 * run.start_epoch)
    else:
        resume_from.restore("rng", restore_rng)


def make_train_step(run: Run, teacher: nn.Module | None) -> TrainStep:
    """The step on the model as it trains: wrapped by DistributedDataParallel under torchrun
    (a frozen backbone gets no gradients, which it must not wait for), compiled on the first
    step with ``--compile`` (evaluation and checkpoints use the plain model)."""
    config, runtime, model = run.config, run.runtime, run.model
    run.backbone = (backbone_parameters(model, config.model, config.model_args)
                    if config.freeze_backbone_epochs else [])
    device = runtime.device
    if config.sync_bn:  # in place: the optimiser's and the EMA's tensors stay the model's
        sync_batchnorm(model, runtime)
    train_model = (DistributedDataParallel(model, device_ids=[device.index]
                                           if device.type == "cuda" else None,
                                           find_unused_parameters=config.freeze_backbone_epochs > 0)
                   if runtime.distributed else model)
    if config.compile:
        train_model = torch.compile(train_model)
    return TrainStep(train_model, run.optimizer, run.scheduler, run.scaler, runtime.amp_dtype,
                     config.label_smoothing, float(getattr(model, "aux_loss_weight", 0.0)),
                     config.grad_clip, teacher, config.distill_alpha,
                     config.distill_temperature, run.task, config.loss)


def write_run_files(run: Run, resume_from: Checkpoint | None, overwrite: bool,
                    console: Console) -> None:
    """The resolved configuration (what really runs) in the run folder, and the start-up
    line (rank 0)."""
    config, runtime, data = run.config, run.runtime, run.data
    if not runtime.is_main:
        return
    if overwrite and resume_from is None:
        report.remove_run_files(run.run_dir)
    report.write_config(run.run_dir, config.to_dict(), {
        "num_classes": run.model_args["num_classes"], "class_names": data.classes,
        "world_size": runtime.world_size, "device": str(runtime.device),
        "amp": str(runtime.amp_dtype).replace("torch.", "") if runtime.amp_dtype else "off",
        "channels_last": runtime.channels_last, "preprocess": run.preprocess,
        "task": run.task.name, "train_images": len(data.train), "val_images": len(data.val)})
    start = f" from {config.pretrained}" if config.pretrained else ""
    trunk = given_backbone(config)
    on = f" with backbone {trunk}" if trunk else ""
    console.print(f"training {config.model}{on}{start} "
                  f"({sum(p.numel() for p in run.model.parameters()):,} params) on "
                  f"{config.data}: {len(data.train)} train / {len(data.val)} val images, "
                  f"{data.num_classes} classes, {config.input_size}x{config.input_size}x"
                  f"{config.in_chans}; {config.epochs} epochs of {run.steps_per_epoch} steps on "
                  f"{runtime.device} x{runtime.world_size} -> {run.run_dir}"
                  + (f" (resuming after epoch {run.start_epoch})" if resume_from else ""),
                  highlight=False, soft_wrap=True)
    if config.calibration and resume_from is None:
        measured = config.calibration
        timings = ", ".join(f"{label} {ms:.0f}" for label, ms in measured["ms_per_step"].items())
        console.print(f"  calibrated on this CPU{' (cached)' if measured['cached'] else ''}: "
                      f"{measured['chosen']} (ms per step: {timings})",
                      highlight=False, soft_wrap=True)
    if resume_from is not None and run.start_epoch >= config.epochs:
        console.print(f"{run.run_dir} has trained all its {config.epochs} epochs; nothing left "
                      f"to do (pass --epochs above {config.epochs} to train longer)",
                      highlight=False, soft_wrap=True)


def train_one_epoch(run: Run, epoch: int, console: Console) -> tuple[torch.Tensor, float]:
    """The training steps of one epoch. Returns the tally summed over processes (loss times
    images, right predictions, predictions, images) and the seconds it took."""
    config, runtime, task, device = run.config, run.runtime, run.task, run.runtime.device
    show = config.progress and runtime.is_main
    epoch_start = time.perf_counter()
    if run.sampler is not None:
        run.sampler.set_epoch(epoch)
    run.train_step.model.train()
    # only the new classifier learns while the backbone is frozen
    freeze_backbone(run.model, run.backbone, epoch < config.freeze_backbone_epochs)
    normalize = run.normalize
    # kept on the device and read by the host only for the progress bar, a few times a second
    tally = torch.zeros(4, dtype=torch.float64, device=device)
    zero = torch.zeros((), dtype=torch.float64, device=device)
    shown_at = epoch_start
    with report.epoch_progress(console, show, task.train_accuracy) as progress:
        bar = progress.add_task(f"epoch {epoch + 1}/{config.epochs}",
                                total=run.steps_per_epoch, loss=0.0, acc=0.0, speed=0.0)
        for step, (images, labels) in enumerate(run.train_loader):
            if step >= run.steps_per_epoch:
                break
            images, labels = task.to_device(images, labels, device, normalize,
                                            run.memory_format)
            if run.mix is not None:  # MixUp / CutMix: soft labels from here on
                images, labels = run.mix(images, labels)
            group, last = accumulation_group(step, run.steps_per_epoch, config.accumulate)
            with run.train_step.syncing(last):
                outputs, loss = run.train_step.forward(images, labels)
                # a diverged loss stops every process at the same step, before any update
                step_loss = runtime.sum(loss.detach().float().clone()) / runtime.world_size
                if not torch.isfinite(step_loss):
                    raise diverged(run, epoch, step, float(step_loss))
                run.train_step.update(loss, group, last)
            if last and run.ema is not None:
                run.ema.update()
            hits = task.hits_and_counts(outputs, labels) if task.train_accuracy else (zero, zero)
            tally += torch.stack([loss.detach().double() * len(labels), *hits,
                                  torch.tensor(len(labels), dtype=torch.float64,
                                               device=device)])
            progress.advance(bar)
            now = time.perf_counter()
            if show and (now - shown_at > 0.25 or step + 1 == run.steps_per_epoch):
                shown_at, (loss_sum, correct, counted, seen) = now, tally.tolist()
                progress.update(bar, loss=loss_sum / seen, acc=correct / max(counted, 1),
                                speed=seen * runtime.world_size / (now - epoch_start))
    return runtime.sum(tally), time.perf_counter() - epoch_start


def diverged(run: Run, epoch: int, step: int, loss: float) -> NonFiniteLossError:
    """The error that stops a run whose loss became NaN or infinite."""
    where = (f"the last good checkpoint is {run.last_path} (epoch {epoch})"
             if epoch > 0 and run.last_path.exists() else "no checkpoint was written")
    return NonFiniteLossError(
        f"loss became {loss} at epoch {epoch + 1} step {step + 1} "
        f"(lr {run.scheduler.get_last_lr()[0]:.3g}); stopped, {where}; try a lower --lr, "
        "--grad-clip or --amp off")


def validate(run: Run, epoch: int, model: nn.Module | None = None, examples: int = 0) -> Any:
    """The task's figures of ``model`` (default: the one training; else its moving average)
    on the validation split, each process on its shard of it, in full precision like
    `lightnets eval`, so the logged figure is the checkpoint's own. Lagging BatchNorm averages
    are first recomputed from the current weights (precise_bn.py), in the training step's
    precision, whose statistics they stand for. ``examples`` images are kept for a picture."""
    config, runtime, task = run.config, run.runtime, run.task
    model = run.model if model is None else model
    normalize = run.normalize
    if config.precise_bn_batches and epoch >= config.freeze_backbone_epochs:
        batches = itertools.islice(run.train_loader, min(config.precise_bn_batches,
                                                         run.steps_per_epoch))
        with run.train_step.autocast:
            inputs, forward = task.batchnorm_inputs(model, batches, runtime.device,
                                                    normalize, run.memory_format)
            recompute_batchnorm_stats(model, inputs, forward)
    runtime.average_buffers(model)
    return task.evaluate(model, run.val_loader, run.data.classes, runtime.device,
                         runtime.channels_last, config.limit_val_batches, runtime.sum,
                         runtime.distributed, normalize, examples)


def save_epoch(run: Run, epoch: int, row: dict[str, float], score: float, plots: bool,
               console: Console) -> float:
    """The epoch's checkpoint (``best.pt`` too when it improved), metrics table, curves (when
    ``plots``) and summary line: rank 0 only; the others wait so no one runs ahead. Returns
    the seconds spent drawing the curves."""
    config = run.config
    run.history.append(row)
    # files written before a figure was kept hold -1 (nothing yet)
    improved = run.task.improves(score, run.best_score if run.history[:-1] else None)
    if improved:
        run.best_score = score
    plot_seconds = 0.0
    if run.runtime.is_main:
        checkpoint = Checkpoint(
            model_name=config.model, model_args=run.model_args, model=run.model.state_dict(),
            preprocess=run.preprocess, class_names=run.data.classes, config=config.to_dict(),
            epoch=epoch + 1, best_score=run.best_score, best_metric=run.task.metric,
            history=run.history, optimizer=run.optimizer.state_dict(),
            scheduler=run.scheduler.state_dict(), scaler=run.scaler.state_dict(),
            rng=capture_rng(), pruning=run.pruning,
            ema=run.ema.state_dict() if run.ema is not None else None)
        save_checkpoint(checkpoint, run.last_path)
        if improved:  # the same bytes: serialised once
            write_atomic(run.best_path, run.last_path.read_bytes())
        report.write_metrics(run.run_dir, run.history, run.task)
        if plots:
            plot_start = time.perf_counter()
            report.plot_curves(run.run_dir, run.history, run.task,
                               f"{config.model} on {Path(config.data).name}")
            plot_seconds = time.perf_counter() - plot_start
        if config.progress:
            console.print(report.epoch_line(row, config.epochs, run.task), highlight=False,
                          soft_wrap=True)
    run.runtime.barrier()
    return plot_seconds
