"""The training configuration: one typed dataclass. Fields left as ``None`` take the defaults of
the data kind (:data:`DATA_DEFAULTS`) when the run starts; the resolved configuration is what
the run folder and the checkpoints record."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightnets.checkpoint import Checkpoint
from lightnets.data.transforms import check_recipe
from lightnets.train.ema import EMA_DECAY

# Per data kind. Digits: tuned so MobileNetV2 at 32x32 passes 98% validation accuracy in a few
# minutes on two CPU cores. CIFAR: the usual SGD recipe. Folders: AdamW, robust to the unknown.
# Segmentation (no label smoothing: a pixel's label is not a guess among look-alike classes):
# digits-seg tuned so LR-ASPP MobileNetV3-Large passes 80% mIoU within five minutes on two CPU
# cores; segmentation folders AdamW at the model's input size (520 for the segmenters).
DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": dict(epochs=15, batch_size=32, input_size=32, in_chans=1, optimizer="sgd",
                   lr=0.02, weight_decay=5e-5, warmup_epochs=1.0, label_smoothing=0.1),
    "cifar": dict(epochs=30, batch_size=128, input_size=32, in_chans=3, optimizer="sgd",
                  lr=0.1, weight_decay=5e-4, warmup_epochs=1.0, label_smoothing=0.1),
    "folder": dict(epochs=30, batch_size=64, input_size=None, in_chans=3, optimizer="adamw",
                   lr=1e-3, weight_decay=0.05, warmup_epochs=2.0, label_smoothing=0.1),
    "digits-seg": dict(epochs=9, batch_size=32, input_size=64, in_chans=3, optimizer="adamw",
                       lr=4e-3, weight_decay=1e-4, warmup_epochs=1.0, label_smoothing=0.0),
    "seg-folder": dict(epochs=30, batch_size=8, input_size=None, in_chans=3, optimizer="adamw",
                       lr=1e-3, weight_decay=1e-4, warmup_epochs=1.0, label_smoothing=0.0),
    "digits-det": dict(epochs=20, batch_size=16, input_size=128, in_chans=3, optimizer="adamw",
                       lr=1e-3, weight_decay=1e-4, warmup_epochs=1.0, label_smoothing=0.0,
                       mosaic=0.0, colour_jitter=True),
    # mosaic: +1.1 and +1.9 points of mAP on a real set (nuclei) over two seeds; not measured
    # on digits-det, which keeps it off; the photometric distortion: -2.4 and -1.5 points on
    # the same set at equal time (docs/guides/detection.md)
    "coco": dict(epochs=30, batch_size=8, input_size=None, in_chans=3, optimizer="adamw",
                 lr=5e-4, weight_decay=1e-4, warmup_epochs=1.0, label_smoothing=0.0,
                 mosaic=0.5, colour_jitter=False),
}
DATA_DEFAULTS["voc"] = DATA_DEFAULTS["yolo"] = DATA_DEFAULTS["coco"]
OPTIMIZERS = ("sgd", "adamw")
AMP_MODES = ("auto", "off", "bf16", "fp16")
# What a resumed run may change: where it runs and what it shows, and its length (only longer).
# Everything else shapes the optimisation the stored state belongs to, so it stays the run's.
RESUME_MAY_CHANGE = ("epochs", "device", "amp", "channels_last", "compile", "workers", "progress",
                     "log")
LOGGERS = ("tensorboard",)


@dataclass
class TrainConfig:
    """Everything a training run depends on."""

    # what to train on what
    model: str = "mobilenet_v2"
    data: str | None = None              # 'digits', an image folder, or a CIFAR folder; for
    #                                      segmenters 'digits-seg', a VOC or a pair folder;
    #                                      None: the embedded data of the model's task
    model_args: dict[str, Any] = field(default_factory=dict)  # e.g. {"width_mult": 0.5}
    input_size: int | None = None        # square side; None: per data (model default for folders)
    in_chans: int | None = None          # 1 or 3; None: per data (1 for digits)
    val_fraction: float = 0.2            # held out of a single class-folder tree
    augment: bool = True                 # light, data-appropriate augmentation
    mosaic: float | None = None          # detectors: fraction of training images that are
    #                                      mosaics of four (YOLOv4); None: per data (0.5 on
    #                                      COCO, VOC and YOLO folders, else 0; 0 unaugmented)
    zoom_crop: bool = False              # detectors: SSD's zoom-out and IoU crop
    colour_jitter: bool | None = None    # detectors: the data's photometric jitter; None: per
    #                                      data (on for digits-det, off for the folders)
    # optimisation
    epochs: int | None = None
    batch_size: int | None = None        # total over all processes
    optimizer: str | None = None         # 'sgd' (Nesterov momentum) or 'adamw'
    lr: float | None = None              # peak learning rate, after warm-up
    momentum: float = 0.9
    weight_decay: float | None = None    # not applied to norm weights or biases
    warmup_epochs: float | None = None   # linear warm-up, then cosine decay to zero
    label_smoothing: float | None = None  # None: 0.1 for classification data, 0 for masks
    grad_clip: float | None = None       # max global gradient norm
    binary: bool = False                 # segmenters of two classes: one output channel
    loss: str | None = None              # segmenters: 'ce', 'dice', 'focal', 'lovasz',
    #                                      'tversky' or a weighted sum ('ce+0.5*dice'); None: ce
    precise_bn_batches: int | None = None  # BatchNorm statistics recomputed over this many
    #                                        training batches before each validation; None:
    #                                        20 for models with slow BatchNorm (precise_bn.py)
    # regularisation recipe (classifiers), off by default: docs/guides/training.md measures it
    auto_augment: str | None = None      # 'autoaugment', 'randaugment', 'trivialaugment', 'augmix'
    random_erase: float = 0.0            # probability of erasing a rectangle of an image
    mixup: float = 0.0                   # MixUp's Beta(alpha, alpha); 0: off
    cutmix: float = 0.0                  # CutMix's Beta(alpha, alpha); with mixup: one per batch
    drop_path_rate: float = 0.0          # stochastic depth of the last residual block
    accumulate: int = 1                  # batches whose gradients make one optimiser step
    model_ema: bool = False              # keep an exponential moving average of the weights
    model_ema_decay: float = EMA_DECAY   # its decay per optimiser step (ema.py)
    # knowledge distillation (Hinton et al. 2015)
    # fine-tuning from pretrained weights (lightnets.weights)
    pretrained: str | None = None        # lightnets checkpoint, torchvision/timm file or folder
    pretrained_source: str | None = None  # lightnets, torchvision, timm or smp; None: detected
    freeze_backbone_epochs: int = 0      # train only the new classifier for this many epochs
    teacher: str | None = None           # checkpoint of the teacher
    distill_alpha: float = 0.7           # weight of the KL term; 1 - alpha on the labels
    distill_temperature: float = 4.0
    # runtime
    device: str = "auto"                 # 'cpu', 'cuda', 'cuda:N' or 'auto'
    amp: str = "auto"                    # 'auto', 'off', 'bf16' or 'fp16'
    channels_last: bool | None = None    # None: by device, model and size (runtime.py); the
    #                                      run records the choice
    compile: bool = False                # torch.compile the training forward and backward
    calibrate: bool = True               # on a long CPU run, time the candidate precisions and
    #                                      memory formats here and take the fastest
    #                                      (calibrate.py); the run records the choice
    fused_optimizer: bool | None = None  # None: fused where the device has the kernels
    calibration: dict[str, Any] | None = None  # what calibration measured (filled in by the run)
    workers: int | None = None           # DataLoader processes; None: 0 for digits, else <= 4
    seed: int = 0
    sync_bn: bool = False                # SyncBatchNorm across processes (DDP on GPUs only)
    # bookkeeping
    name: str | None = None              # run folder name; None: '<model>-<data>[-N]'
    runs_dir: str = "runs"
    resume: str | None = None            # checkpoint or run folder to continue
    init_from: str | None = None         # start from this checkpoint's model and weights (how
    #                                      `lightnets prune` fine-tunes a pruned model)
    limit_train_batches: int | None = None  # for smoke tests: batches per epoch
    limit_val_batches: int | None = None
    progress: bool = True                # rich progress bar and per-epoch lines
    log: str | None = None               # 'tensorboard': also log there (run_dir/tensorboard)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (JSON- and checkpoint-safe)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown configuration field(s): {', '.join(unknown)}")
        return cls(**values)


def given_backbone(config: TrainConfig) -> str | None:
    """The backbone named for an architecture or head by name (``--backbone``), if any."""
    backbone = config.model_args.get("backbone")
    return backbone if isinstance(backbone, str) else None


def run_label(config: TrainConfig) -> str:
    """The model's part of a run folder's name: its name, and the backbone it was given
    (``fcos_ghostnet_x1_0`` for ``--model fcos --backbone ghostnet_x1_0``)."""
    backbone = given_backbone(config)
    return f"{config.model}_{backbone}" if backbone else config.model


def same_setting(name: str, value: Any, stored: Any) -> bool:
    """Whether a requested setting is the stored one (paths compared once resolved)."""
    if value == stored:
        return True
    if name in ("data", "teacher") and isinstance(value, str) and isinstance(stored, str):
        return Path(value).expanduser().resolve() == Path(stored).expanduser().resolve()
    return False


def resumed_config(requested: TrainConfig, checkpoint: Checkpoint) -> TrainConfig:
    """The checkpoint's configuration with the changes ``requested`` may make on resume
    (:data:`RESUME_MAY_CHANGE`; a field counts as requested when it differs from its default).
    Any other change is refused with one line naming it: the stored optimiser, schedule and
    data order belong to the stored settings, and ``config.json`` must say what ran. More
    ``epochs`` than stored recompute the schedule for the longer total (the learning rate
    continues from where the longer schedule is at this step); fewer than done are refused."""
    # a run from before --mosaic existed trained without it, and one from before
    # --colour-jitter with the jitter whenever it augmented
    stored = TrainConfig.from_dict({"mosaic": 0.0,
                                    "colour_jitter": checkpoint.config.get("augment", True),
                                    **checkpoint.config})
    defaults = TrainConfig()
    asked = {f.name: getattr(requested, f.name) for f in dataclasses.fields(TrainConfig)
             if f.name != "resume" and getattr(requested, f.name) != getattr(defaults, f.name)}
    if "model" in asked:
        checkpoint.check_matches(model_name=asked.pop("model"), what="--resume checkpoint")
    if {"name", "runs_dir"} & set(asked):
        raise ValueError("--resume continues the run in its own folder; drop --name and "
                         "--runs-dir (or start a new run)")
    refused = [f"{name} {getattr(stored, name)!r} -> {value!r}" for name, value in asked.items()
               if name not in RESUME_MAY_CHANGE and not same_setting(name, value,
                                                                     getattr(stored, name))]
    if refused:
        raise ValueError(f"--resume continues {checkpoint.path} with the settings it was "
                         f"started with; it cannot change {', '.join(refused)} (it may change "
                         f"only {', '.join(RESUME_MAY_CHANGE)}); start a new run to train "
                         "differently")
    epochs = asked.get("epochs", stored.epochs)
    if epochs < checkpoint.epoch:
        raise ValueError(f"--epochs {epochs} is fewer than the {checkpoint.epoch} epochs "
                         f"{checkpoint.path} has done; pass more to train longer, or leave "
                         "it out to finish the run")
    changes = {name: getattr(requested, name) for name in RESUME_MAY_CHANGE
               if name in asked or name in ("device", "workers", "compile", "progress")}
    return dataclasses.replace(stored, **changes)


def resolve_config(config: TrainConfig, kind: str, model_input_size: int) -> TrainConfig:
    """A copy with every ``None`` default filled in for the data ``kind``, checked. A default
    warm-up as long as the run or longer is cut to half the run (a warm-up asked for is
    checked instead: it must end before the run does)."""
    defaults = {"mosaic": 0.0, "colour_jitter": False, **DATA_DEFAULTS[kind]}
    if not config.augment:  # both are augmentations
        defaults.update(mosaic=0.0, colour_jitter=False)
    if defaults["input_size"] is None:
        defaults["input_size"] = model_input_size
    filled = {name: getattr(config, name) if getattr(config, name) is not None else value
              for name, value in defaults.items()}
    if config.warmup_epochs is None and filled["warmup_epochs"] >= filled["epochs"] >= 1:
        filled["warmup_epochs"] = filled["epochs"] / 2
    resolved = dataclasses.replace(config, **filled)
    check_config(resolved)
    return resolved


def check_config(config: TrainConfig) -> None:
    """One-line ``ValueError`` for the first out-of-range field, or fields that contradict
    each other."""
    def require(ok: bool, message: str) -> None:
        if not ok:
            raise ValueError(message)

    require(config.epochs >= 1, f"epochs must be at least 1, got {config.epochs}")
    require(config.batch_size >= 1, f"batch_size must be at least 1, got {config.batch_size}")
    require(config.lr > 0, f"lr must be positive, got {config.lr}")
    require(config.optimizer in OPTIMIZERS,
            f"optimizer must be one of {', '.join(OPTIMIZERS)}, got {config.optimizer!r}")
    require(config.weight_decay >= 0, f"weight_decay must be >= 0, got {config.weight_decay}")
    require(config.warmup_epochs >= 0, f"warmup_epochs must be >= 0, got {config.warmup_epochs}")
    require(config.warmup_epochs < config.epochs or config.warmup_epochs == 0,
            f"warmup_epochs ({config.warmup_epochs:g}) must be fewer than epochs "
            f"({config.epochs}): the learning rate would never reach {config.lr:g}")
    require(0 <= config.momentum < 1, f"momentum must be in [0, 1), got {config.momentum}")
    require(0 <= config.label_smoothing < 1,
            f"label_smoothing must be in [0, 1), got {config.label_smoothing}")
    require(config.in_chans in (1, 3), f"in_chans must be 1 or 3, got {config.in_chans}")
    require(config.input_size >= 8, f"input_size must be at least 8, got {config.input_size}")
    require(0 < config.val_fraction < 1,
            f"val_fraction must be in (0, 1), got {config.val_fraction}")
    require(0 <= config.distill_alpha <= 1,
            f"distill_alpha must be in [0, 1], got {config.distill_alpha}")
    require(config.distill_temperature > 0,
            f"distill_temperature must be positive, got {config.distill_temperature}")
    require(config.amp in AMP_MODES,
            f"amp must be one of {', '.join(AMP_MODES)}, got {config.amp!r}")
    require(config.device == "auto" or config.device == "cpu" or config.device.startswith("cuda"),
            f"device must be cpu, cuda, cuda:N or auto, got {config.device!r}")
    require(config.grad_clip is None or config.grad_clip > 0,
            f"grad_clip must be positive, got {config.grad_clip}")
    require(config.precise_bn_batches is None or config.precise_bn_batches >= 0,
            f"precise_bn_batches must be >= 0, got {config.precise_bn_batches}")
    require(config.freeze_backbone_epochs >= 0,
            f"freeze_backbone_epochs must be >= 0, got {config.freeze_backbone_epochs}")
    require(not config.freeze_backbone_epochs or config.pretrained,
            "freeze_backbone_epochs needs pretrained weights (--pretrained)")
    require(not (config.init_from and config.pretrained),
            "init_from and --pretrained both give the starting weights; pass one")
    check_recipe(config.auto_augment, config.random_erase)
    require(config.augment or not (config.auto_augment or config.random_erase),
            "auto_augment and random_erase augment the training images; they need "
            "augmentation on (drop --no-augment)")
    require(0 <= config.mosaic <= 1, f"mosaic is a fraction of the training images, in [0, 1]; "
            f"got {config.mosaic}")
    require(config.augment or not (config.mosaic or config.zoom_crop or config.colour_jitter),
            "mosaic, zoom_crop and colour_jitter augment the training images; they need "
            "augmentation on (drop --no-augment)")
    for name in ("mixup", "cutmix"):
        require(getattr(config, name) >= 0, f"{name} is a Beta distribution's alpha, >= 0 "
                f"(0: off); got {getattr(config, name)}")
    require(0 <= config.drop_path_rate < 1,
            f"drop_path_rate must be in [0, 1), got {config.drop_path_rate}")
    require(config.accumulate >= 1, f"accumulate must be at least 1, got {config.accumulate}")
    require(0 < config.model_ema_decay < 1,
            f"model_ema_decay must be in (0, 1), got {config.model_ema_decay}")
    require(config.log is None or config.log in LOGGERS,
            f"log must be one of {', '.join(LOGGERS)}, got {config.log!r}")
    for name in ("limit_train_batches", "limit_val_batches", "workers"):
        value = getattr(config, name)
        require(value is None or value >= (0 if name == "workers" else 1),
                f"{name} must be {'>= 0' if name == 'workers' else 'at least 1'}, got {value}")
