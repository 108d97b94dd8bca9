"""lightnets' inference backends against ONNX Runtime running torchvision's own export.

For each architecture torchvision also has (default: mobilenet_v2, shufflenet_v2_x1_0,
squeezenet1_1, resnet18, mobilenet_v3_large) and each batch size, one process times, in
alternating blocks (see ``lightnets.export.timing.time_callables``):

* ``tv-eager``: torchvision's model in eager PyTorch (where everyone starts);
* ``tv-onnxruntime``: torchvision's model exported to ONNX and run by ONNX Runtime: the reference
  every ratio is taken against;
* lightnets' backends: ``eager`` (fused, channels-last), ``onnxruntime``, and with flags
  ``compile`` (inductor, frozen weights), ``openvino`` (installed with ``lightnets[openvino]``),
  ``--bf16``: each torch / OpenVINO backend in bf16 (refused unless the CPU has native bf16 or
  ``--allow-emulated-bf16``), ``--int8``: the int8 model (static, calibrated on real digit
  images) in ONNX Runtime and OpenVINO; ``--phone``: the files the phone runtimes run
  (ExecuTorch, LiteRT, ncnn, MNN; batch-1 files), with ``--int8`` also ExecuTorch's and
  LiteRT's int8 files (PT2E) and MNN's (int8 weights), with ``--fp16`` the LiteRT, ncnn and
  MNN files with fp16 weights. Weights are random, so these rows measure speed only;
  ``lightnets quantize`` gates accuracy on trained checkpoints.

It prints one table per model and a summary: the fastest fp32 lightnets backend over
tv-onnxruntime (goal: >= 1.0), and the fastest reduced-precision one (goal: >= 1.8)::

    python benchmarks/deploy_vs_onnxruntime.py                       # fp32, batch 1 and 32
    python benchmarks/deploy_vs_onnxruntime.py --bf16 --int8 --openvino --json out.json

Measured on a 2-core AMD EPYC (Zen 4: AVX512-BF16, VNNI), 2 threads, 224x224, median of 10,
``--bf16 --int8 --openvino``; speed-up over tv-onnxruntime at batch 1 / 32:

================== ============ ============ ============ ============ ============
backend            mobilenet_v2 shufflenet2  squeezenet1  resnet18     mobilenet_v3
================== ============ ============ ============ ============ ============
tv-eager           0.28 / 0.16  0.38 / 0.55  0.27 / 0.32  0.62 / 0.58  0.25 / 0.29
eager (fp32)       0.42 / 0.44  0.55 / 0.91  0.46 / 0.69  0.70 / 0.89  0.38 / 0.66
onnxruntime        1.00 / 1.00  0.99 / 1.01  0.99 / 1.02  1.05 / 1.01  1.01 / 0.97
openvino           0.99 / 0.92  0.80 / 1.02  0.94 / 0.95  1.11 / 1.01  1.03 / 0.91
eager-bf16         0.48 / 0.93  0.60 / 1.32  0.66 / 1.26  1.16 / 1.81  0.46 / 1.05
openvino-bf16      1.45 / 1.90  1.29 / 1.74  1.80 / 1.80  2.03 / 2.02  1.95 / 1.72
onnxruntime-int8   1.75 / 2.21  2.02 / 1.60  2.12 / 1.96  3.11 / 3.33  0.91 / 1.01
openvino-int8      2.08 / 2.91  1.67 / 2.13  2.94 / 3.17  4.06 / 3.73  0.97 / 0.96
================== ============ ============ ============ ============ ============

fp32: lightnets' onnxruntime graph becomes the same as torchvision's after ONNX Runtime's
optimiser: parity (within the run-to-run noise of a few percent), not a gain. An earlier run
with ``--compile`` put ``compile`` at 0.42-0.87 in fp32 and near eager-bf16 in bf16; timing
call by call (instead of in blocks) made torch rows up to 2.4x slower, because ONNX Runtime's
worker threads keep spinning after each call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import warnings
from pathlib import Path

import torch
from rich.table import Table

from lightnets.export.backends import BackendUnavailableError, create_backend, openvino_runner
from lightnets.export.fuse import fuse
from lightnets.export.onnx import DEFAULT_OPSET, export_onnx, onnx_session, run_session
from lightnets.export.timing import peer_runner, time_callables
from lightnets.registry import create_model, meta_model, resolve_name

from _common import add_common_arguments, begin, write_json  # benchmarks/_common.py

DEFAULT_MODELS = ["mobilenet_v2", "shufflenet_v2_x1_0", "squeezenet1_1", "resnet18",
                  "mobilenet_v3_large"]
REFERENCE = "tv-onnxruntime"


def int8_file(model: torch.nn.Module, size: tuple[int, int, int], folder: str) -> Path:
    """The fused model exported to ONNX and statically quantized to int8 (QDQ), calibrated on
    real digit images (random weights: speed only, nothing to gate)."""
    from lightnets.export.quantize import quantize_onnx
    from lightnets.export.verify import real_images

    fp32 = export_onnx(fuse(model), Path(folder) / "fp32.onnx", size)
    calibration = real_images(size, {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
                              count=64)
    return quantize_onnx(fp32, Path(folder) / "int8.onnx", calibration)


PHONE_FORMATS = ("executorch", "tflite", "ncnn", "mnn")


def phone_rows(model: torch.nn.Module, size: tuple[int, int, int], folder: str, int8: bool,
               fp16: bool, say) -> dict[str, tuple]:
    """row -> (precision, runner) for the phone runtimes' batch-1 files of ``model`` (each
    through its format's own writer and loader, as ``lightnets export`` writes and runs them;
    the int8 ones as ``lightnets quantize`` writes them: PT2E for ExecuTorch and LiteRT, int8
    weights for MNN; the fp16 ones with the weights in half precision)."""
    from lightnets.export.formats import Target, get_format
    from lightnets.export.runtimes import executorch_pte, litert
    from lightnets.export.verify import real_images

    threads = torch.get_num_threads()

    def written(name: str, weights: str = "fp32"):
        def write(path: Path) -> Path:
            get_format(name).write(fuse(model), Target(path, size, False, 1, False,
                                                       DEFAULT_OPSET, weights=weights))
            return path
        return write, get_format(name).suffix, get_format(name).load

    writers = {name: written(name) for name in PHONE_FORMATS}
    if int8:
        images = real_images(size, {"mean": [0.485, 0.456, 0.406],
                                    "std": [0.229, 0.224, 0.225]}, count=64)
        writers["executorch-int8"] = (lambda p: executorch_pte.quantize_pte(
            model, p, images, dynamic_batch=False), ".pte", executorch_pte.load_pte)
        writers["tflite-int8"] = (lambda p: litert.quantize_tflite(model, p, images), ".tflite",
                                  litert.load_tflite)
        writers["mnn-int8"] = written("mnn", "int8")
    if fp16:
        writers.update({f"{name}-fp16": written(name, "fp16")
                        for name in ("tflite", "ncnn", "mnn")})
    rows = {}
    for row, (write, suffix, load) in writers.items():
        try:
            precision = row.split("-")[1] if "-" in row else "fp32"
            rows[row] = (precision, load(write(Path(folder) / f"{row}{suffix}"), threads))
        except Exception as error:  # a missing package or a converter's refusal: said, skipped
            say(f"  skipping {row}: {str(error).splitlines()[0][:200]}")
    return rows


def candidates(name: str, args: argparse.Namespace, folder: str, say) -> dict[str, tuple]:
    """row -> (precision, runner)."""
    model = create_model(name).eval()
    size = tuple(model.default_input_size)
    rows = {"tv-eager": ("fp32", peer_runner("torchvision-eager", name, size)),
            REFERENCE: ("fp32", peer_runner("torchvision-onnxruntime", name, size))}
    wanted = ["eager", "onnxruntime"] + [b for b in ("compile", "openvino") if getattr(args, b)]
    if args.skip_eager:
        del rows["tv-eager"]
        wanted.remove("eager")
    for precision in ("fp32", "bf16") if args.bf16 else ("fp32",):
        for backend in wanted:
            if precision == "bf16" and backend == "onnxruntime":
                continue  # no bf16 convolutions in ONNX Runtime's CPU provider
            row = backend if precision == "fp32" else f"{backend}-bf16"
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # said in the label instead
                    runner = create_backend(model, backend, size, precision,
                                            allow_emulated_bf16=args.allow_emulated_bf16)
            except BackendUnavailableError as error:
                say(f"  {name}: skipping {row}: {error}")
                continue
            label = precision + (" (emulated)" if "bf16 EMULATED" in runner.notes else "")
            rows[row] = (label, runner)
    if args.int8:
        path = int8_file(model, size, folder)
        session = onnx_session(path)
        rows["onnxruntime-int8"] = ("int8", lambda x: run_session(session, x))
        if args.openvino:
            rows["openvino-int8"] = ("int8", openvino_runner(path))
    if args.phone:
        rows.update(phone_rows(model, size, folder, args.int8, args.fp16, say))
    return rows


def run_model(name: str, args: argparse.Namespace, say) -> list[dict]:
    records = []
    with tempfile.TemporaryDirectory() as folder:
        rows = candidates(name, args, folder, say)
        size = tuple(meta_model(name).default_input_size)  # 520x520 for the segmenters
        for batch in args.batch_size:
            say(f"  timing {name} at batch {batch}...")
            x = torch.randn(batch, *size)
            for runner in rows.values():  # first calls (compile, OpenVINO reshape) untimed
                runner[1](x)
            times = time_callables({row: runner for row, (_, runner) in rows.items()}, x,
                                   args.warmup, args.repeats)
            reference = statistics.median(times[REFERENCE])
            for row, (precision, _) in rows.items():
                median = statistics.median(times[row])
                records.append({"model": name, "batch_size": batch, "backend": row,
                                "precision": precision, "median_ms": round(median, 3),
                                "speedup_vs_tv_onnxruntime": round(reference / median, 3)})
    return records


def summary(records: list[dict]) -> list[str]:
    """Per model and batch: the fastest lightnets fp32 and reduced-precision rows."""
    lines = []
    keys = dict.fromkeys((r["model"], r["batch_size"]) for r in records)
    for model, batch in keys:
        ours = [r for r in records if (r["model"], r["batch_size"]) == (model, batch)
                and not r["backend"].startswith("tv-")]
        fp32 = max((r for r in ours if r["precision"] == "fp32"),
                   key=lambda r: r["speedup_vs_tv_onnxruntime"])
        line = (f"{model} batch {batch}: fastest fp32 = {fp32['backend']} "
                f"{fp32['speedup_vs_tv_onnxruntime']:.2f}x tv-onnxruntime")
        reduced = [r for r in ours if r["precision"] != "fp32"]
        if reduced:
            best = max(reduced, key=lambda r: r["speedup_vs_tv_onnxruntime"])
            line += (f"; fastest reduced precision = {best['backend']} [{best['precision']}] "
                     f"{best['speedup_vs_tv_onnxruntime']:.2f}x (bf16 goal 1.8x)")
        lines.append(line)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", default=DEFAULT_MODELS)
    parser.add_argument("--batch-size", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--openvino", action="store_true", help="also time OpenVINO (installed)")
    parser.add_argument("--bf16", action="store_true",
                        help="also time each torch / OpenVINO backend in bf16")
    parser.add_argument("--allow-emulated-bf16", action="store_true",
                        help="time bf16 even where the CPU emulates it")
    parser.add_argument("--int8", action="store_true",
                        help="also time the int8 model in ONNX Runtime (and OpenVINO)")
    parser.add_argument("--phone", action="store_true",
                        help="also time the phone runtimes' files (ExecuTorch, LiteRT, ncnn, MNN; "
                        "with --int8 also ExecuTorch's, LiteRT's and MNN's int8 files)")
    parser.add_argument("--fp16", action="store_true",
                        help="with --phone: the LiteRT, ncnn and MNN files with fp16 weights")
    parser.add_argument("--skip-eager", action="store_true",
                        help="leave out both eager rows (the slowest: quicker runs)")
    add_common_arguments(parser, warmup=3, repeats=10, json=True)
    args = parser.parse_args()
    console = begin(args)

    def say(message: str) -> None:
        console.print(message, style="dim", highlight=False, markup=False)

    records = []
    for name in args.models:
        records += run_model(resolve_name(name), args, say)
    table = Table(title=f"latency, {torch.get_num_threads()} threads; speed-up = "
                  "tv-onnxruntime ms / row ms")
    for column in ("model", "batch", "backend", "precision", "median ms", "speed-up"):
        table.add_column(column, justify="right" if column in ("batch", "median ms", "speed-up")
                         else "left")
    for r in records:
        table.add_row(r["model"], str(r["batch_size"]), r["backend"], r["precision"],
                      f"{r['median_ms']:.2f}", f"{r['speedup_vs_tv_onnxruntime']:.2f}x")
    console.print(table)
    for line in summary(records):
        console.print(line, highlight=False, markup=False)
    write_json(args.json, records)


if __name__ == "__main__":
    main()
