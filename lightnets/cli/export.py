"""``lightnets export``: a registered model or a checkpoint to a checked ONNX, TorchScript or
``torch.export`` file with a JSON sidecar; optionally its latency against eager PyTorch."""

from __future__ import annotations

import argparse
import json
from typing import Any

from lightnets.cli._common import CommandError, console, parse_input_size, warnings_as_lines


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export", help="export a model to ONNX, TorchScript or torch.export (.pt2)",
        description="Fuse BatchNorm into convolutions, export, run the written file (ONNX in "
        "ONNX Runtime) against the eager model on random and real images, fail when they "
        "differ beyond the tolerance, and write a JSON sidecar (model, input size, "
        "preprocessing, class names, check results) beside the file.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--model", metavar="NAME", help="registered model (initial weights)")
    source.add_argument("--checkpoint", metavar="CKPT",
                        help="training checkpoint, or a run folder (its best.pt)")
    parser.add_argument("--weights", metavar="PATH", help="with --model: its pretrained weights "
                        "(a torchvision or timm file, a Hugging Face-style folder), exported "
                        "with their preprocessing and class names")
    parser.add_argument("--format", default="onnx", metavar="FORMAT",
                        help="onnx (default), torchscript, pt2, or a phone runtime's: "
                        "executorch (.pte), tflite (LiteRT), coreml (.mlpackage)")
    parser.add_argument("--output", metavar="PATH", help="file to write (default: <model>.onnx "
                        "here, or beside the checkpoint); a folder gets <model>.<ext> inside")
    parser.add_argument("--input-size", type=parse_input_size, default=None, metavar="SIZE",
                        help="S, HxW or CxHxW (default: the checkpoint's, or the model's "
                        "default input size)")
    parser.add_argument("--dynamic-batch", action=argparse.BooleanOptionalAction, default=True,
                        help="symbolic batch dimension (default); --no-dynamic-batch fixes it "
                        "at --batch-size")
    parser.add_argument("--batch-size", type=int, default=1,
                        help="the fixed batch with --no-dynamic-batch (default 1)")
    parser.add_argument("--num-classes", type=int, default=None,
                        help="with --model: classifier size (default: the model's, 1000)")
    parser.add_argument("--opset", type=int, default=18, help="ONNX opset (default 18)")
    parser.add_argument("--tolerance", type=float, default=1e-4,
                        help="largest accepted |eager - exported| relative to the output scale "
                        "(default 1e-4)")
    parser.add_argument("--postprocess", action=argparse.BooleanOptionalAction, default=None,
                        help="a detector's ONNX file holds its post-processing: boxes, scores "
                        "and labels of one image at the fixed input size (default for ONNX); "
                        "--no-postprocess writes the raw head outputs (dynamic batch), as "
                        "TorchScript and .pt2 files of detectors always are")
    parser.add_argument("--no-fuse", dest="fuse", action="store_false",
                        help="export without folding BatchNorm first")
    parser.add_argument("--latency", nargs="*", type=int, default=None, metavar="BATCH",
                        help="then time eager PyTorch (the model as trained) against the "
                        "exported file at these batch sizes (default 1)")
    parser.add_argument("--json", action="store_true", help="print the sidecar as JSON")
    parser.set_defaults(func=run, requires=requirements)


def requirements(args: argparse.Namespace) -> list[tuple[str, str]]:
    from lightnets.export import FORMATS
    from lightnets.export.artefact import export_requirements

    return export_requirements(args.format) if args.format in FORMATS else []


def run(args: argparse.Namespace) -> int:
    from lightnets.export import FORMATS, export_model, load_source
    from lightnets.export.formats import FORMATS as SPECS, artefact_bytes

    if args.format not in FORMATS:
        raise CommandError(f"unsupported format {args.format!r}; expected one of "
                           f"{', '.join(FORMATS)}")
    if (args.checkpoint or args.weights) and args.num_classes is not None:
        raise CommandError("--num-classes applies to --model alone; weights fix their classes")
    if args.weights and args.checkpoint:
        raise CommandError("--weights goes with --model; a checkpoint holds its own weights")
    extra = {} if args.num_classes is None else {"num_classes": args.num_classes}
    with warnings_as_lines():  # the notes on the weights read
        source = load_source(args.model, args.checkpoint or args.weights, args.input_size,
                             **extra)
    result = export_model(source, args.format, args.output, args.dynamic_batch, args.batch_size,
                          args.fuse, args.opset, args.tolerance, postprocess=args.postprocess)
    if args.json:
        print(json.dumps({"path": str(result.path), "sidecar": str(result.sidecar_path),
                          **result.sidecar.as_dict()}))
    else:
        megabytes = artefact_bytes(result.path, SPECS[args.format]) / 2**20
        form = result.sidecar.detection.get("form")
        batch = "dynamic batch" if result.sidecar.dynamic_batch else \
            f"batch {result.sidecar.input_size[0]}"
        if form:
            batch += ", " + ("boxes, scores, labels" if form == "postprocessed"
                             else "raw head outputs")
        console.print(f"wrote {result.path} ({megabytes:.1f} MB, {args.format}, {batch}, "
                      f"input {'x'.join(map(str, source.input_size))}) in "
                      f"{result.export_seconds:.1f} s; sidecar {result.sidecar_path}",
                      highlight=False, soft_wrap=True)
        for line in result.verification.lines():
            console.print(f"  {line}", highlight=False, soft_wrap=True)
        console.print(result.verification.verdict(), highlight=False, soft_wrap=True)
    if args.latency is not None:
        print_latency(source, result, args.latency or [1], console, args.json)
    return 0


def print_latency(source: Any, result: Any, batch_sizes: list[int], console: Any,
                  as_json: bool) -> None:
    """Eager PyTorch (unfused, as trained) against the exported file; a fixed-batch file is
    timed at its own batch size."""
    import statistics

    import torch

    from lightnets.export import artefact_runner
    from lightnets.export.timing import time_callables

    if min(batch_sizes) < 1:
        raise ValueError(f"--latency batch sizes must be >= 1, got {batch_sizes}")
    runner = artefact_runner(result.path, result.sidecar.artefact_format)
    exported = f"{result.sidecar.artefact_format} file" + (
        " in onnxruntime" if result.sidecar.artefact_format == "onnx" else "")
    if not result.sidecar.dynamic_batch:
        batch_sizes = [int(result.sidecar.input_size[0])]
    for batch_size in batch_sizes:
        x = torch.randn(batch_size, *source.input_size)
        times = time_callables({"eager": source.model.eval(), "exported": runner}, x)
        eager, fast = (statistics.median(times[k]) for k in ("eager", "exported"))
        if as_json:
            print(json.dumps({"latency": {"batch_size": batch_size, "eager_ms": eager,
                                          "exported_ms": fast, "speedup": eager / fast}}))
        else:
            console.print(f"latency at batch {batch_size} ({torch.get_num_threads()} threads): "
                          f"eager PyTorch {eager:.2f} ms, {exported} {fast:.2f} ms "
                          f"({eager / fast:.2f}x)", highlight=False)
