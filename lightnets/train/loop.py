"""The training loop: one flat function, read top to bottom. Data, model, optimiser, schedule,
then per epoch: train steps, evaluation, checkpoint, metrics, plot.

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
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler, Subset

from lightnets.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from lightnets.data import (EMBEDDED, IGNORE_INDEX, build_data, data_kind, default_preprocess,
                            default_workers, make_loader, normalize_transform)
from lightnets.optional import by_product
from lightnets.registry import create_model, meta_model, task_of
from lightnets.train import report
from lightnets.train.config import (TrainConfig, given_backbone, resolve_config, resumed_config,
                                    run_label)
from lightnets.train.det_evaluate import evaluate_detector
from lightnets.train.det_evaluate import to_device as detection_batch
from lightnets.train.distill import load_teacher
from lightnets.train.evaluate import evaluate_model
from lightnets.train.finetune import backbone_parameters, freeze_backbone
from lightnets.train.optim import build_optimizer, build_scheduler
from lightnets.train.precise_bn import lagging_batchnorm, recompute_batchnorm_stats
from lightnets.train.rng import capture_rng, restore_rng
from lightnets.train.runtime import Runtime, pick_precision_and_layout, setup_runtime
from lightnets.train.seg_evaluate import evaluate_segmenter
from lightnets.train.step import TrainStep
from lightnets.weights import SourceWeights, build_pretrained, read_pretrained

# batches precise BN averages over, where the model's BatchNorm averages lag (slow momentum or
# short epochs: see precise_bn.py)
PRECISE_BN_BATCHES = 20


def hits_and_counts(logits: torch.Tensor | None, labels: torch.Tensor | list,
                    device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right predictions and predictions made, as float64 on the device: one per image for
    classifiers, one per labelled pixel for segmenters (masks ``(N, H, W)``), none for
    detectors (their figure is the validation mAP)."""
    if logits is None:
        zero = torch.zeros((), dtype=torch.float64, device=device)
        return zero, zero
    predicted = logits.detach().argmax(1)
    if labels.dim() == 1:
        return ((predicted == labels).sum().double(),
                torch.tensor(len(labels), dtype=torch.float64, device=device))
    labelled = labels != IGNORE_INDEX
    return ((predicted == labels) & labelled).sum().double(), labelled.sum().double()


def detection_evaluation(distributed: bool):
    """:func:`evaluate_detector` called as the loop calls the other tasks' evaluations."""
    def run(model, loader, num_classes, device, amp_dtype, channels_last, limit_batches,
            reduce, classes, normalize):
        return evaluate_detector(model, loader, classes, device, limit_batches, distributed)
    return run


class NonFiniteLossError(RuntimeError):
    """The loss became NaN or infinite; the run stopped, its last good checkpoint kept."""


@dataclass
class TrainResult:
    """Where a finished run left its files, and how it did."""

    run_dir: Path
    last_checkpoint: Path
    best_checkpoint: Path
    best_top1: float
    history: list[dict[str, float]]
    train_seconds: float


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
    # -- resume: the stored configuration, with the caller's changes ------------------------
    resume_from = None
    if config.resume:
        resume_from = load_checkpoint(config.resume, prefer="last")
        resume_from.require("to resume training", "optimizer", "scheduler", "scaler", "rng")
        config = resumed_config(config, resume_from)

    if config.data is None:  # the embedded data of the model's task: digits or digits-seg
        config = dataclasses.replace(config, data=EMBEDDED[task_of(config.model)])

    # -- runtime: device, precision, processes ----------------------------------------------
    runtime = setup_runtime(config.device, config.amp, config.channels_last)
    with contextlib.ExitStack() as cleanup:  # the process group, then the run folder's lock
        cleanup.callback(runtime.close)
        return (yield from _train(config, runtime, resume_from, overwrite, console or Console(),
                                  cleanup))


def _train(config: TrainConfig, runtime: Runtime, resume_from: Checkpoint | None,
           overwrite: bool, console: Console, cleanup: contextlib.ExitStack
           ) -> Generator[dict[str, float], None, TrainResult]:
    """The loop proper, once the runtime (and process group) is set up."""
    device, is_main = runtime.device, runtime.is_main
    show = config.progress and is_main
    seed = config.seed + runtime.rank  # each process its own augmentation and dropout
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)

    # -- run folder: chosen and locked by rank 0 before any long work, shared with the others
    choice: list[str | None] = [None, None]  # the folder, or why there is none
    failure: Exception | None = None
    if is_main:
        try:
            resume_dir = Path(resume_from.path).parent if resume_from is not None else None
            choice[0] = str(cleanup.enter_context(report.claimed_run_dir(
                config.runs_dir, config.name, run_label(config), config.data, overwrite,
                resume_dir)))
        except (ValueError, OSError) as error:
            failure, choice[1] = error, str(error)
    if runtime.distributed:  # every process stops on rank 0's error, none waits forever
        dist.broadcast_object_list(choice, src=0)
    if choice[1]:
        raise failure or ValueError(choice[1])
    run_dir = Path(choice[0])
    plots = is_main and by_product("matplotlib", f"{run_dir / 'curves.png'}")

    # -- data: per-data defaults, datasets, loaders -----------------------------------------
    fixed = sorted({"num_classes", "in_chans"} & set(config.model_args))
    if fixed:
        raise ValueError(f"model_args cannot set {', '.join(fixed)}: the data decides them "
                         "(use --in-chans for the channels)")
    # Pretrained weights are read before the data: their preprocessing sets the data's, and the
    # constructor options that reproduce them join the model arguments (so a resume, which
    # does not read them again, rebuilds the same network).
    pretrained: SourceWeights | None = None
    # (a detector's --pretrained holds its backbone's weights: read where the detector is built)
    if config.pretrained and resume_from is None and task_of(config.model) != "detection":
        pretrained = read_pretrained(config.pretrained, config.model, config.pretrained_source,
                                     **config.model_args)
        config = dataclasses.replace(config, model_args={**pretrained.options,
                                                         **config.model_args})
    shape_only = meta_model(config.model, **config.model_args)
    task = getattr(shape_only, "task", "classification")  # the model's task picks the data's
    if task == "detection" and config.freeze_backbone_epochs:
        raise ValueError("--freeze-backbone-epochs is for classifiers; freeze a detector's "
                         "earliest stages with --model-arg trainable_layers=N")
    if task != "classification" and config.teacher:
        raise ValueError(f"--teacher distils classifiers; a {task} model trains on its labels "
                         "alone")
    kind = data_kind(config.data, task)
    # Auxiliary classifiers (GoogLeNet, Inception v3) are built off by default, like
    # torchvision's; training switches them on, as their papers train, unless told otherwise.
    if ("aux_logits" in inspect.signature(type(shape_only)).parameters
            and "aux_logits" not in config.model_args):
        config = dataclasses.replace(config, model_args={**config.model_args, "aux_logits": True})
    config = resolve_config(config, kind, pretrained.preprocess["input_size"] if pretrained
                            else shape_only.default_input_size[-1])
    # precision and memory format for this model at this size (the memory format recorded, so
    # that `lightnets eval` and a resumed run use it too)
    if task == "detection":  # fp32 NCHW unless asked: torchvision's losses and box coding were
        #                      written for it, and its transform batches the images itself
        runtime.amp_dtype, runtime.channels_last = pick_precision_and_layout(
            "off" if config.amp == "auto" else config.amp, bool(config.channels_last), device,
            shape_only, (3, config.input_size, config.input_size))
    else:
        runtime.amp_dtype, runtime.channels_last = pick_precision_and_layout(
            config.amp, config.channels_last, device, shape_only,
            (shape_only.in_chans, config.input_size, config.input_size))
    config = dataclasses.replace(config, channels_last=runtime.channels_last)
    min_size = max(shape_only.min_input_size)
    if config.input_size < min_size:
        raise ValueError(f"{config.model} needs inputs of at least {min_size}x{min_size}; "
                         f"got --input-size {config.input_size}")
    preprocess = default_preprocess(kind, config.input_size, config.in_chans,
                                    pretrained.preprocess if pretrained else None)
    if resume_from is not None and config.pretrained:  # what the first run derived from them
        preprocess = resume_from.preprocess
    # the loaders hand over images before their last step (uint8 for decoded files), which
    # runs on the device, on whole batches: see transforms.train_transform
    data = build_data(config.data, preprocess, config.augment, config.val_fraction,
                      config.seed, warn=is_main, normalize=False, task=task)
    normalize = normalize_transform(preprocess)
    batch_size = config.batch_size // runtime.world_size  # per process
    if batch_size < 1:
        raise ValueError(f"batch_size {config.batch_size} is smaller than the "
                         f"{runtime.world_size} processes")
    if len(data.train) < batch_size * runtime.world_size:
        raise ValueError(f"the training split has {len(data.train)} images, fewer than one batch "
                         f"of {config.batch_size}; lower --batch-size")
    workers = default_workers(kind) if config.workers is None else config.workers
    sampler = (DistributedSampler(data.train, runtime.world_size, runtime.rank, shuffle=True,
                                  seed=config.seed, drop_last=True)
               if runtime.distributed else None)
    train_loader = make_loader(data.train, batch_size, device, workers, shuffle=True,
                               sampler=sampler, drop_last=True, task=task)
    # Validation: every world_size-th image per process, so the summed tallies count each once.
    val_shard = Subset(data.val, range(runtime.rank, len(data.val), runtime.world_size))
    val_loader = make_loader(val_shard, 2 * batch_size, device, workers, task=task)
    steps_per_epoch = len(train_loader)
    evaluate = {"segmentation": evaluate_segmenter,
                "detection": detection_evaluation(runtime.distributed)}.get(task, evaluate_model)
    if config.limit_train_batches:
        steps_per_epoch = min(steps_per_epoch, config.limit_train_batches)

    # -- model, teacher, optimiser, schedule, gradient scaler -------------------------------
    # a detector counts the background among its classes, and sees the images at their
    # letterboxed size (torchvision's transform would otherwise upscale them to 800)
    num_classes = data.num_classes + (task == "detection")
    model_args = {**config.model_args, "num_classes": num_classes, "in_chans": config.in_chans}
    if task == "detection":
        model_args = {"min_size": config.input_size, "max_size": config.input_size,
                      **model_args}
    init = load_checkpoint(config.init_from, prefer="last") if config.init_from else None
    if init is not None:  # e.g. a pruned model, rebuilt from its channel plan
        init.check_matches(config.model, num_classes, config.in_chans, what="init_from")
        model_args = dict(init.model_args)
        model = init.build_model()
    elif pretrained:
        model = build_pretrained(pretrained, **model_args)
    elif task == "detection" and config.pretrained and resume_from is None:
        # classifier weights (lightnets, torchvision, timm) for the trunk; the checkpoint keeps
        # the arguments without them, since its state dict holds every weight
        model = create_model(config.model, **model_args, backbone_args={
            "checkpoint_path": config.pretrained, "source": config.pretrained_source})
    else:
        model = create_model(config.model, **model_args)
    model = model.to(device)
    memory_format = torch.channels_last if runtime.channels_last else torch.contiguous_format
    model = model.to(memory_format=memory_format)
    if config.precise_bn_batches is None:
        config = dataclasses.replace(config, precise_bn_batches=PRECISE_BN_BATCHES
                                     if lagging_batchnorm(model, steps_per_epoch) else 0)
    teacher = (load_teacher(config.teacher, data.num_classes, config.in_chans, device)
               .to(memory_format=memory_format) if config.teacher else None)
    # the fused kernels take every parameter's momentum buffer at once, and a backbone frozen
    # for the first epochs has none when it thaws: PyTorch's own update there
    optimizer = build_optimizer(model, config.optimizer, config.lr, config.weight_decay,
                                config.momentum,
                                fused=False if config.freeze_backbone_epochs else None)
    scheduler = build_scheduler(optimizer, round(config.warmup_epochs * steps_per_epoch),
                                config.epochs * steps_per_epoch)
    scaler = torch.amp.GradScaler(device.type, enabled=runtime.amp_dtype == torch.float16)

    # -- resume: weights, optimiser, schedule, RNG -------------------------------------------
    start_epoch, best_top1, history = 0, -1.0, []
    if resume_from is not None:
        resume_from.check_matches(config.model, num_classes, config.in_chans,
                                  what="--resume checkpoint")
        resume_from.restore("model", model.load_state_dict)
        resume_from.restore("optimizer", optimizer.load_state_dict)
        resume_from.restore("scheduler", scheduler.load_state_dict)
        if resume_from.scaler or not scaler.is_enabled():  # else fp16 starts with a fresh scaler
            resume_from.restore("scaler", scaler.load_state_dict)
        start_epoch, best_top1 = resume_from.epoch, resume_from.best_top1
        history = list(resume_from.history)
        if runtime.distributed:  # one stored state cannot serve every process: re-seed
            torch.manual_seed(seed + 1_000_003 * start_epoch)
        else:
            resume_from.restore("rng", restore_rng)
    backbone = (backbone_parameters(model, config.model, config.model_args)
                if config.freeze_backbone_epochs else [])
    # a frozen backbone gets no gradients: DistributedDataParallel must not wait for them
    train_model = (DistributedDataParallel(model, device_ids=[device.index]
                                           if device.type == "cuda" else None,
                                           find_unused_parameters=config.freeze_backbone_epochs > 0)
                   if runtime.distributed else model)
    if config.compile:  # compiled on the first step; evaluation and checkpoints use `model`
        train_model = torch.compile(train_model)
    train_step = TrainStep(train_model, optimizer, scheduler, scaler, runtime.amp_dtype,
                           config.label_smoothing,
                           float(getattr(model, "aux_loss_weight", 0.0)), config.grad_clip,
                           teacher, config.distill_alpha, config.distill_temperature, task)

    # -- run folder: the resolved configuration, what really runs ----------------------------
    config = dataclasses.replace(config, name=run_dir.name, runs_dir=str(run_dir.parent),
                                 resume=None)
    if is_main:
        if overwrite and resume_from is None:
            report.remove_run_files(run_dir)
        report.write_config(run_dir, config.to_dict(), {
            "num_classes": num_classes, "class_names": data.classes,
            "world_size": runtime.world_size, "device": str(device),
            "amp": str(runtime.amp_dtype).replace("torch.", "") if runtime.amp_dtype else "off",
            "channels_last": runtime.channels_last, "preprocess": preprocess, "task": task,
            "train_images": len(data.train), "val_images": len(data.val)})
        start = f" from {config.pretrained}" if config.pretrained else ""
        trunk = given_backbone(config)
        on = f" with backbone {trunk}" if trunk else ""
        console.print(f"training {config.model}{on}{start} "
                      f"({sum(p.numel() for p in model.parameters()):,} params) on {config.data}: "
                      f"{len(data.train)} train / {len(data.val)} val "
                      f"images, {data.num_classes} classes, {config.input_size}x"
                      f"{config.input_size}x{config.in_chans}; {config.epochs} epochs of "
                      f"{steps_per_epoch} steps on {device} x{runtime.world_size} -> {run_dir}"
                      + (f" (resuming after epoch {start_epoch})" if resume_from else ""),
                      highlight=False, soft_wrap=True)
        if resume_from is not None and start_epoch >= config.epochs:
            console.print(f"{run_dir} has trained all its {config.epochs} epochs; nothing left "
                          f"to do (pass --epochs above {config.epochs} to train longer)",
                          highlight=False, soft_wrap=True)
    last_path, best_path = run_dir / "last.pt", run_dir / "best.pt"

    # -- epochs ------------------------------------------------------------------------------
    seconds = 0.0  # of training, validation and checkpoints (not of a paused consumer)
    for epoch in range(start_epoch, config.epochs):
        epoch_start = time.perf_counter()
        if sampler is not None:
            sampler.set_epoch(epoch)
        train_model.train()
        frozen = epoch < config.freeze_backbone_epochs  # only the new classifier learns
        freeze_backbone(model, backbone, frozen)
        # running sums on this process: loss * images, correct predictions (pixels for
        # segmenters, labelled ones only), predictions, images; kept on the device and read by
        # the host only for the progress bar, a few times a second
        tally = torch.zeros(4, dtype=torch.float64, device=device)
        shown_at = epoch_start
        with report.epoch_progress(console, show) as progress:
            bar = progress.add_task(f"epoch {epoch + 1}/{config.epochs}",
                                     total=steps_per_epoch, loss=0.0, acc=0.0, speed=0.0)
            for step, (images, labels) in enumerate(train_loader):
                if step >= steps_per_epoch:
                    break
                if task == "detection":  # lists: torchvision normalises and batches them
                    images, labels = detection_batch(images, labels, device)
                else:
                    images = normalize(images.to(device, non_blocking=True,
                                                 memory_format=memory_format))
                    labels = labels.to(device, non_blocking=True).long()  # masks: uint8
                logits, loss = train_step.forward(images, labels)

                # a diverged loss stops every process at the same step, before any update
                step_loss = runtime.sum(loss.detach().float().clone()) / runtime.world_size
                if not torch.isfinite(step_loss):
                    where = (f"the last good checkpoint is {last_path} (epoch {epoch})"
                             if epoch > 0 and last_path.exists() else "no checkpoint was written")
                    raise NonFiniteLossError(
                        f"loss became {float(step_loss)} at epoch {epoch + 1} step {step + 1} "
                        f"(lr {scheduler.get_last_lr()[0]:.3g}); stopped, {where}; try a lower "
                        "--lr, --grad-clip or --amp off")
                train_step.update(loss)

                tally += torch.stack([loss.detach().double() * len(labels),
                                      *hits_and_counts(logits, labels, device),
                                      torch.tensor(len(labels), dtype=torch.float64,
                                                   device=device)])
                progress.advance(bar)
                now = time.perf_counter()
                if show and (now - shown_at > 0.25 or step + 1 == steps_per_epoch):
                    shown_at, (loss_sum, correct, counted, seen) = now, tally.tolist()
                    progress.update(bar, loss=loss_sum / seen, acc=correct / max(counted, 1),
                                    speed=seen * runtime.world_size / (now - epoch_start))
        tally = runtime.sum(tally)
        train_seconds = time.perf_counter() - epoch_start

        # evaluation on the validation split, each process on its shard of it, in full
        # precision like `lightnets eval`, so the logged top-1 is the checkpoint's own; lagging
        # BatchNorm averages are first recomputed from the current weights (precise_bn.py), in
        # the training step's precision, whose statistics they stand for
        if config.precise_bn_batches and not frozen:
            batches = itertools.islice(train_loader, min(config.precise_bn_batches,
                                                         steps_per_epoch))
            with train_step.autocast:
                if task == "detection":  # its network alone: the losses would need targets
                    recompute_batchnorm_stats(model, (
                        model.transform(detection_batch(images, [], device)[0])[0].tensors
                        for images, _ in batches), model.batchnorm_forward)
                else:
                    recompute_batchnorm_stats(model, (normalize(images.to(
                        device, memory_format=memory_format)) for images, _ in batches))
        runtime.average_buffers(model)
        result = evaluate(model, val_loader, data.num_classes, device, None,
                          runtime.channels_last, config.limit_val_batches, runtime.sum,
                          data.classes, normalize)
        row = {"epoch": epoch + 1, "lr": optimizer.param_groups[0]["lr"],
               "train_loss": float(tally[0] / tally[3]),
               "train_acc": float(tally[1] / tally[2].clamp(min=1)), **result.row(),
               "epoch_seconds": time.perf_counter() - epoch_start,
               "images_per_second": float(tally[3]) / train_seconds}
        history.append(row)
        improved = result.primary > best_top1
        best_top1 = max(best_top1, result.primary)

        # checkpoint, metrics, plot: rank 0 only; the others wait so no one runs ahead
        if is_main:
            checkpoint = Checkpoint(
                model_name=config.model, model_args=model_args, model=model.state_dict(),
                preprocess=preprocess, class_names=data.classes, config=config.to_dict(),
                epoch=epoch + 1, best_top1=best_top1, history=history,
                optimizer=optimizer.state_dict(), scheduler=scheduler.state_dict(),
                scaler=scaler.state_dict(), rng=capture_rng(),
                pruning=init.pruning if init else None)
            save_checkpoint(checkpoint, last_path)
            if improved:
                save_checkpoint(checkpoint, best_path)
            report.write_metrics(run_dir, history)
            if plots:
                report.plot_curves(run_dir, history, f"{config.model} on {Path(config.data).name}")
            if config.progress:
                console.print(report.epoch_line(row, config.epochs), highlight=False,
                              soft_wrap=True)
        runtime.barrier()
        seconds += time.perf_counter() - epoch_start
        yield row

    return TrainResult(run_dir, last_path, best_path, best_top1, history, seconds)
