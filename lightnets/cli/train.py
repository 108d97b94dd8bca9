"""``lightnets train``: train a registered classifier on digits, an image folder or CIFAR, a
segmenter on digits-seg, a Pascal VOC folder or an images/masks pair folder, or a detector on
digits-det, a COCO, Pascal VOC or YOLO txt folder.

Every option left out takes the per-data default (see ``lightnets.train.config``). Also works
as ``python -m lightnets train`` and under ``torchrun --nproc_per_node N -m lightnets train``.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
from typing import Any

from lightnets.cli._common import WEIGHT_SOURCES, CommandError, console, warnings_as_lines

SUPPRESS = argparse.SUPPRESS


def model_arg(text: str) -> tuple[str, Any]:
    """``KEY=VALUE`` with VALUE a Python literal (``0.5``, ``True``) or else a string."""
    key, sep, value = text.partition("=")
    if not sep or not key.isidentifier():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    try:
        return key, ast.literal_eval(value)
    except (ValueError, SyntaxError):
        return key, value


def register(subparsers: argparse._SubParsersAction) -> None:
    from lightnets.train.config import DATA_DEFAULTS

    digits = DATA_DEFAULTS["digits"]
    parser = subparsers.add_parser(
        "train", help="train a classifier, a segmenter or a detector",
        description="Train a registered model. Options left out take the defaults of the data "
        f"(digits: {digits['epochs']} epochs, batch {digits['batch_size']}, "
        f"{digits['input_size']}x{digits['input_size']} grey, SGD lr {digits['lr']}). Writes "
        "runs/<name>/ with config.json, metrics.csv, curves.png, last.pt and best.pt.",
        argument_default=SUPPRESS)
    parser.add_argument("--config", metavar="FILE", help="read the settings from a YAML or "
                        "JSON file with the keys of a run's config.json (a run's own repeats "
                        "it in a new folder); options given here override it")
    what = parser.add_argument_group("model and data")
    what.add_argument("--model", help="registered model name (default: mobilenet_v2)")
    what.add_argument("--data", help="classifiers: 'digits' (default), an image folder (train/ "
                      "and val/ of class folders, or one class-folder tree) or a CIFAR-10/100 "
                      "folder; segmenters: 'digits-seg' (default), a Pascal VOC folder "
                      "(JPEGImages/, SegmentationClass/) or a pair folder of images/ and masks/ "
                      "(or train/ and val/ of them); detectors: 'digits-det' (default), a COCO "
                      "folder (annotations.json + images/, or train/ and val/ of them), a "
                      "Pascal VOC folder (Annotations/ + JPEGImages/) or a YOLO txt folder "
                      "(data.yaml, images/, labels/)")
    what.add_argument("--backbone", metavar="NAME",
                      help="with a detection architecture by name (fcos, retinanet, ssdlite, "
                      "fasterrcnn, gfl) or a segmentation head by name (unet, pspnet, fpn, "
                      "deeplabv3plus, lraspp, deeplabv3, fcn): the classifier of the zoo under "
                      "it (default: the architecture's own)")
    what.add_argument("--model-arg", dest="model_args", type=model_arg, action="append",
                      metavar="KEY=VALUE", help="extra model argument, e.g. width_mult=0.5 or "
                      "drop_rate=0.1 (repeatable)")
    what.add_argument("--input-size", type=int, metavar="N",
                      help="square input side (digits/CIFAR: 32; folders: the model's default)")
    what.add_argument("--in-chans", type=int, choices=(1, 3), help="1 (grey) or 3 (RGB) input "
                      "channels (digits: 1; others: 3)")
    what.add_argument("--val-fraction", type=float, metavar="X",
                      help="share of a single class-folder tree held out for validation "
                      "(default 0.2)")
    what.add_argument("--binary", action="store_true",
                      help="segmenters of two classes (background and one foreground): one "
                      "output channel, its sigmoid thresholded at 0.5 (--model-arg threshold=X)")
    what.add_argument("--no-augment", dest="augment", action="store_false",
                      help="train without augmentation")
    what.add_argument("--mosaic", type=float, metavar="P",
                      help="detectors: make a fraction P of the training images mosaics of "
                      "four (YOLOv4); default 0.5 on COCO, VOC and YOLO folders, 0 on "
                      "digits-det and without augmentation; 0: off")
    what.add_argument("--zoom-crop", action="store_true",
                      help="detectors: SSD's zoom-out (up to 4x, half the time) and random IoU "
                      "crop before the data's own augmentation (default off)")
    what.add_argument("--colour-jitter", action=argparse.BooleanOptionalAction,
                      help="detectors: the data's photometric jitter (SSD's photometric "
                      "distortion on COCO, VOC and YOLO folders, brightness and contrast on "
                      "digits-det); default on for digits-det, off for the folders")
    optimisation = parser.add_argument_group("optimisation")
    optimisation.add_argument("--epochs", type=int, metavar="N")
    optimisation.add_argument("--batch-size", type=int, metavar="N",
                              help="total over all processes")
    optimisation.add_argument("--optimizer", choices=("sgd", "adamw"))
    optimisation.add_argument("--lr", type=float, metavar="X", help="peak learning rate")
    optimisation.add_argument("--momentum", type=float, metavar="X",
                              help="SGD momentum (default 0.9)")
    optimisation.add_argument("--weight-decay", type=float, metavar="X")
    optimisation.add_argument("--warmup-epochs", type=float, metavar="X")
    optimisation.add_argument("--label-smoothing", type=float, metavar="X",
                              help="default 0.1 (segmentation: 0)")
    optimisation.add_argument("--loss", metavar="SPEC",
                              help="segmenters: ce (default), dice, focal, lovasz, tversky or a "
                              "weighted sum such as ce+dice or ce+0.5*dice")
    optimisation.add_argument("--grad-clip", type=float, metavar="X",
                              help="max gradient norm (default off)")
    optimisation.add_argument("--precise-bn-batches", type=int, metavar="N",
                              help="recompute BatchNorm statistics over N training batches "
                              "before each validation (default: 20 for models whose BatchNorm "
                              "averages slowly, e.g. MobileNetV3; else 0)")
    recipe = parser.add_argument_group(
        "regularisation recipe (classifiers; off by default: see the training guide's "
        "measurements)")
    recipe.add_argument("--auto-augment", choices=("autoaugment", "randaugment",
                                                   "trivialaugment", "augmix"),
                        help="an augmentation policy of torchvision's after the data's own "
                        "augmentation")
    recipe.add_argument("--random-erase", type=float, metavar="P",
                        help="erase a random rectangle of each training image with "
                        "probability P (to the mean colour)")
    recipe.add_argument("--mixup", type=float, metavar="ALPHA",
                        help="MixUp each batch, ratios from Beta(ALPHA, ALPHA), e.g. 0.2")
    recipe.add_argument("--cutmix", type=float, metavar="ALPHA",
                        help="CutMix each batch, e.g. 1.0 (with --mixup: one or the other per "
                        "batch); the train accuracy then counts the dominant image's class")
    recipe.add_argument("--drop-path", dest="drop_path_rate", type=float, metavar="RATE",
                        help="stochastic depth: residual branches dropped with probability "
                        "rising linearly to RATE at the last block, e.g. 0.1")
    optimisation.add_argument("--accumulate", type=int, metavar="N",
                              help="gradient accumulation: one optimiser step per N batches "
                              "(an effective batch of N x --batch-size; default 1)")
    optimisation.add_argument("--model-ema", action=argparse.BooleanOptionalAction,
                              help="keep an exponential moving average of the weights, "
                              "validated each epoch beside them and used by eval, export and "
                              "predict (default off)")
    optimisation.add_argument("--model-ema-decay", type=float, metavar="D",
                              help="its decay per optimiser step (default 0.9998, warmed up "
                              "as min(D, (1 + n) / (10 + n)))")
    finetune = parser.add_argument_group("fine-tuning from pretrained weights")
    finetune.add_argument("--pretrained", metavar="PATH", help="start from these weights: a "
                          "lightnets checkpoint, a torchvision or timm file (.pth, .bin, "
                          ".safetensors) or a Hugging Face-style folder; the classifier is "
                          "replaced for the data's classes, the preprocessing follows the weights")
    finetune.add_argument("--pretrained-source", choices=WEIGHT_SOURCES,
                          help="where the weights come from (default: detected from the keys)")
    finetune.add_argument("--freeze-backbone-epochs", type=int, metavar="N",
                          help="train only the new classifier for the first N epochs (default 0)")
    distill = parser.add_argument_group("knowledge distillation (Hinton et al. 2015)")
    distill.add_argument("--teacher", metavar="CKPT", help="teacher checkpoint or run folder")
    distill.add_argument("--distill-alpha", type=float, metavar="X",
                         help="weight of the teacher term (default 0.7)")
    distill.add_argument("--distill-temperature", type=float, metavar="X",
                         help="softening T (default 4)")
    runtime = parser.add_argument_group("runtime")
    runtime.add_argument("--device", help="cpu, cuda, cuda:N or auto (default)")
    runtime.add_argument("--amp", choices=("auto", "off", "bf16", "fp16"),
                         help="mixed precision (auto: bf16/fp16 on CUDA; bf16 on CPUs with it "
                         "for models of 146M MACs per image or more)")
    runtime.add_argument("--channels-last", action=argparse.BooleanOptionalAction,
                         help="channels-last memory format (default: on CUDA; on CPUs for "
                         "models with grouped convolutions or under bf16)")
    runtime.add_argument("--calibrate", action=argparse.BooleanOptionalAction,
                         help="on a CPU run of 500 steps or more whose --amp and "
                         "--channels-last are not given, time the candidate settings here "
                         "first (a few steps each, cached per CPU and model) and train with "
                         "the fastest (default on)")
    runtime.add_argument("--fused-optimizer", action=argparse.BooleanOptionalAction,
                         help="the optimiser's fused kernel (default: where the device has it)")
    runtime.add_argument("--compile", action=argparse.BooleanOptionalAction,
                         help="torch.compile the training step (default off: on 2 CPU cores "
                         "its compile time outweighed its gain)")
    runtime.add_argument("--workers", type=int, metavar="N", help="data-loading processes")
    runtime.add_argument("--sync-bn", action=argparse.BooleanOptionalAction,
                         help="SyncBatchNorm across the processes of a torchrun run on GPUs")
    runtime.add_argument("--seed", type=int, metavar="N", help="default 0")
    run = parser.add_argument_group("run folder")
    run.add_argument("--name", help="run folder name under --runs-dir (default: "
                     "<model>-<data>[-N])")
    run.add_argument("--runs-dir", help="default: runs")
    run.add_argument("--resume", metavar="RUN", help="continue the run in this folder (or from "
                     "this checkpoint) with its stored configuration")
    run.add_argument("--overwrite", action="store_true", default=False,
                     help="replace the run files of an existing --name")
    run.add_argument("--limit-train-batches", type=int, metavar="N",
                     help="batches per epoch (smoke tests)")
    run.add_argument("--limit-val-batches", type=int, metavar="N")
    run.add_argument("--no-progress", dest="progress", action="store_false",
                     help="no progress bar or per-epoch lines")
    run.add_argument("--log", choices=("tensorboard",), help="also log each epoch's figures "
                     "and validation picture to TensorBoard (<run folder>/tensorboard; needs "
                     "pip install 'lightnets[tensorboard]')")
    run.add_argument("--json", action="store_true", default=False,
                     help="print the final result as JSON")
    parser.set_defaults(func=run_command, requires=requirements)


def requirements(args: argparse.Namespace) -> list[tuple[str, str]]:
    """The digits need scikit-learn (a resumed run reads its data from the checkpoint),
    ``--log tensorboard`` TensorBoard and a YAML ``--config`` PyYAML."""
    from lightnets.data import EMBEDDED_KINDS, data_requirements
    from lightnets.tasks import task_for

    needs = [("tensorboard", "--log tensorboard")] if getattr(args, "log", None) else []
    if str(getattr(args, "config", "")).lower().endswith((".yaml", ".yml")):
        needs.append(("yaml", "--config with a YAML file"))
    if getattr(args, "resume", None):
        return needs
    data = getattr(args, "data", None)
    if data is None:
        try:
            data = task_for(getattr(args, "model", "mobilenet_v2")).embedded_data
        except ValueError:  # an unknown model: the run names it
            data = EMBEDDED_KINDS[0]
    return needs + data_requirements(data)


def config_from_args(args: argparse.Namespace):
    """A :class:`TrainConfig` holding the options given on the command line, over those of
    the ``--config`` file when there is one."""
    import dataclasses

    from lightnets.train import TrainConfig
    from lightnets.train.config_file import read_config_file

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if hasattr(args, f.name)}
    stored = read_config_file(args.config) if getattr(args, "config", None) else {}
    if "model_args" in given:  # merged into the file's, key by key
        given["model_args"] = {**stored.get("model_args", {}), **dict(given["model_args"])}
    given = {**stored, **given}
    if hasattr(args, "backbone"):
        given["model_args"] = {**given.get("model_args", {}), "backbone": args.backbone}
        check_backbone_option(given.get("model", TrainConfig.model))
    return TrainConfig(**given)


def check_backbone_option(model: str) -> None:
    """``--backbone`` needs a model that takes one (the detection architectures and the
    segmentation heads by name)."""
    from lightnets.detect.zoo import ANY_BACKBONE as DETECTORS
    from lightnets.registry import builder_takes
    from lightnets.segment.zoo import ANY_BACKBONE as SEGMENTERS

    if not builder_takes(model, "backbone"):
        raise CommandError(f"--backbone goes with a detection architecture by name "
                           f"({', '.join(DETECTORS)}) or a segmentation head by name "
                           f"({', '.join(SEGMENTERS)}); {model} fixes its own network")


def run_command(args: argparse.Namespace) -> int:
    from lightnets.tasks import get_task
    from lightnets.train import NonFiniteLossError, train

    is_main = int(os.environ.get("RANK", "0")) == 0
    with warnings_as_lines():  # e.g. the skipped unreadable images
        try:
            result = train(config_from_args(args), overwrite=args.overwrite, console=console)
        except NonFiniteLossError as error:
            raise CommandError(str(error)) from None
    if not is_main:
        return 0
    if not result.history:
        return 0
    task = get_task(result.task)
    final = result.history[-1]
    # a run with --model-ema is judged, like its best.pt, by the moving average
    prefix = "ema_" if f"ema_val_{task.metric}" in final else ""
    key, name, label = f"{prefix}val_{task.metric}", task.metric, task.metric_label
    second, second_name, second_label = task.second_metric
    second = prefix + second
    best = max(result.history, key=lambda row: row[key])
    summary = {"run_dir": str(result.run_dir), "last_checkpoint": str(result.last_checkpoint),
               "best_checkpoint": str(result.best_checkpoint), "epochs": final["epoch"],
               name: final[key], second_name: final[second], "loss": final.get(f"{prefix}val_loss"),
               "best_epoch": best["epoch"], f"best_{name}": best[key],
               "train_seconds": round(result.train_seconds, 1)}
    if args.json:
        print(json.dumps(summary))
    else:
        console.print(f"final validation {label} {final[key]:.2%} ({second_label} "
                      f"{final[second]:.2%}) after {final['epoch']} epochs, best "
                      f"{best[key]:.2%} at epoch {best['epoch']}; trained for "
                      f"{result.train_seconds:.0f} s; checkpoints in {result.run_dir}",
                      highlight=False, soft_wrap=True)
    return 0
