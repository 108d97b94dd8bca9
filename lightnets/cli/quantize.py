"""``lightnets quantize --checkpoint CKPT --calib-data DATA``: an int8 model (or an fp16 or
bf16 one) written only when its validation accuracy stays within a threshold of fp32; ``--qat``
fine-tunes a classifier fake-quantized first (quantization-aware training)."""

from __future__ import annotations

import argparse
import json

from lightnets.cli._common import CommandError, console, err_console


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "quantize", help="int8 / fp16 / bf16 models behind an accuracy gate",
        description="Static int8 quantization with ONNX Runtime's tools (weights per channel, "
        "activations calibrated on a few hundred training images; or each phone runtime's own "
        "quantizer), fp16 weights in a phone runtime's file, or bf16 on CPUs with native bf16, "
        "measured in the runtime that will run it (--backend). Reports the task's figure "
        "(top-1, mIoU or mAP) before and after on the validation set and the latency gain, and "
        "refuses to write the model when it drops more than --max-drop points. --qat: "
        "quantization-aware training (PT2E) of a classifier before the same gate.")
    parser.add_argument("--checkpoint", required=True, metavar="CKPT",
                        help="training checkpoint, or a run folder (its best.pt)")
    parser.add_argument("--calib-data", metavar="DATA",
                        help="calibration images: 'digits', an image folder or a CIFAR folder "
                        "(its training split is used); required for int8 but in mnn")
    parser.add_argument("--val-data", metavar="DATA",
                        help="validation data (default: the data the checkpoint was trained on)")
    parser.add_argument("--calib-size", type=int, default=300,
                        help="calibration images, spread over the data (default 300)")
    parser.add_argument("--method", choices=("minmax", "entropy", "percentile"),
                        default="minmax", help="activation range calibration (default minmax)")
    parser.add_argument("--per-tensor", dest="per_channel", action="store_false",
                        help="one weight scale per tensor instead of per output channel")
    weight_range = parser.add_mutually_exclusive_group()
    weight_range.add_argument("--full-range", dest="reduce_range", action="store_false",
                              default=None, help="8-bit weights (default on CPUs with int8 dot "
                              "products: VNNI, AMX, Arm dotprod)")
    weight_range.add_argument("--reduce-range", dest="reduce_range", action="store_true",
                              help="7-bit weights (default on other CPUs: x86 without VNNI "
                              "saturates 16-bit sums at full range)")
    parser.add_argument("--precision", choices=("int8", "fp16", "bf16"), default="int8",
                        help="int8 (default), fp16 (weights in half precision: tflite, ncnn, "
                        "mnn) or bf16 (CPUs with native bf16 only)")
    parser.add_argument("--backend", choices=("onnxruntime", "openvino", "executorch", "tflite",
                                              "ncnn", "mnn", "eager"),
                        default=None,
                        help="runtime the reduced model is measured (and meant to run) in: "
                        "int8 in onnxruntime, openvino, executorch (an int8 .pte: PT2E with "
                        "the XNNPACK quantizer), tflite (an int8 .tflite run by LiteRT: "
                        "PT2E with litert-torch's quantizer) or mnn (int8 weights, no "
                        "calibration); fp16 weights in tflite, ncnn or mnn; bf16 in openvino "
                        "or eager (default: openvino when installed, else onnxruntime / eager; "
                        "tflite for fp16)")
    parser.add_argument("--allow-emulated-bf16", action="store_true",
                        help="with --precision bf16: run even where bf16 is emulated (slow)")
    parser.add_argument("--max-drop", type=float, default=1.0, metavar="POINTS",
                        help="largest accepted drop of top-1 (mIoU, mAP) in percentage points "
                        "(default 1)")
    parser.add_argument("--force", action="store_true",
                        help="write the model even when it fails the accuracy gate")
    parser.add_argument("--output", metavar="PATH",
                        help="file to write (default: beside the checkpoint, best.int8.onnx)")
    parser.add_argument("--latency-batch", type=int, nargs="+", default=[1, 32], metavar="N",
                        help="batch sizes to time fp32 against the reduced model (default 1 32)")
    parser.add_argument("--qat", action="store_true",
                        help="quantization-aware training: fine-tune the classifier fake-"
                        "quantized (PT2E, XNNPACK quantizer) on its own training split, then "
                        "write its int8 model for --backend onnxruntime (default) or executorch "
                        "through the same gate; the report gives post-training int8 too")
    parser.add_argument("--qat-epochs", type=int, default=None, metavar="N",
                        help="with --qat: epochs of fine-tuning (default 1)")
    parser.add_argument("--qat-lr", type=float, default=None, metavar="LR",
                        help="with --qat: peak learning rate, cosine-decayed (default: 1%% of the "
                        "checkpoint's)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.set_defaults(func=run, requires=requirements)


def requirements(args: argparse.Namespace) -> list[tuple[str, str]]:
    from lightnets.export.quantize import quantize_requirements

    return quantize_requirements(args.precision, args.backend, args.calib_data, args.qat)


def qat_options(args: argparse.Namespace):
    """``--qat``'s options, or None without it (its own options then refused)."""
    from lightnets.export.qat import QatOptions

    if not args.qat:
        if args.qat_epochs is not None or args.qat_lr is not None:
            raise CommandError("--qat-epochs and --qat-lr need --qat")
        return None
    return QatOptions(epochs=1 if args.qat_epochs is None else args.qat_epochs, lr=args.qat_lr)


def run(args: argparse.Namespace) -> int:
    from lightnets.export.quantize import AccuracyGateError, quantize_checkpoint

    if min(args.latency_batch) < 1:
        raise CommandError(f"--latency-batch sizes must be >= 1, got {args.latency_batch}")
    qat = qat_options(args)

    def show(report) -> None:
        if args.json:
            print(json.dumps(report.as_dict()))
        else:
            for line in report.lines():
                console.print(line, highlight=False, soft_wrap=True)

    try:
        report = quantize_checkpoint(
            args.checkpoint, args.calib_data, args.output, args.val_data, args.calib_size,
            args.max_drop, args.force, args.precision, args.method, args.per_channel,
            args.reduce_range, tuple(args.latency_batch), args.allow_emulated_bf16,
            args.backend,
            log=None if args.json else (lambda m: err_console.print(m, highlight=False)),
            qat=qat, progress=not args.json)
    except AccuracyGateError as refused:
        show(refused.report)
        raise CommandError(str(refused)) from None
    show(report)
    if not args.json:
        verdict = "" if report.passed else " (FAILED the accuracy gate; written because of --force)"
        console.print(f"wrote {report.written}{verdict}", highlight=False, soft_wrap=True)
    return 0
