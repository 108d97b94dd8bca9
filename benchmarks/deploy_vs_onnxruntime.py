"""lightnets' inference backends against ONNX Runtime running torchvision's own export.

For each architecture torchvision also has (default: mobilenet_v2, shufflenet_v2_x1_0,
squeezenet1_1, resnet18, mobilenet_v3_large) and each batch size, one process times, interleaved
repeat by repeat:

* ``tv-eager``: torchvision's model in eager PyTorch (where everyone starts);
* ``tv-onnxruntime``: torchvision's model exported to ONNX and run by ONNX Runtime: the reference
  every ratio is taken against;
* lightnets' backends: ``eager`` (fused, channels-last), ``onnxruntime``, and with flags
  ``compile`` (inductor, frozen weights), ``openvino`` (when installed), ``bf16`` (eager in
  bf16: refused unless the CPU has native bf16 or ``--allow-emulated-bf16``) and ``int8``
  (ONNX Runtime, static int8 calibrated on real digit images; latency only here: with random
  weights there is no accuracy to gate, see ``lightnets quantize`` for the gated path).

It prints one table per model and a summary: the fastest fp32 lightnets backend over
tv-onnxruntime (goal: >= 1.0), and the fastest reduced-precision one (goal of the bf16 work:
>= 1.8)::

    python benchmarks/deploy_vs_onnxruntime.py                       # fp32, batch 1 and 32
    python benchmarks/deploy_vs_onnxruntime.py --int8 --compile --openvino --json out.json

Measured on the 2-core AMD EPYC development machine (AVX2 only: no AVX512, VNNI, bf16 or AMX),
1 thread, while other jobs ran (rough; ratios come from interleaved runs, 12 repeats), against
tv-onnxruntime at batch 1 / 32:

=================== ============== ================ ============ ==============
model               onnxruntime    int8 (not gated)  eager        openvino 2026.4
=================== ============== ================ ============ ==============
mobilenet_v2        0.99 / 1.00    1.45 / 1.53      0.50 / 0.41  1.08 / 0.96
shufflenet_v2_x1_0  0.99 / 0.99    1.27 / 1.49      0.43 / 0.83  0.86 / 0.93
squeezenet1_1       1.00 / 1.00    1.58 / 1.71      0.68 / 0.46  0.93 / 0.81
resnet18            1.00 / 1.00    1.88 / 1.93      0.81 / 0.88  1.01 / 1.03
mobilenet_v3_large  1.00 / 0.99    0.94 / 1.05      0.43 / 0.64  0.97 / 1.03
=================== ============== ================ ============ ==============

lightnets' onnxruntime backend runs a graph that ONNX Runtime's optimiser turns into the same
one as torchvision's (same operator counts after optimisation): parity, not a gain. compile:
0.45-0.98. Channels-last alone made eager up to 3x faster than contiguous eager at batch 32.
bf16 is emulated on this CPU: 0.02-0.10 (10-45x slower than fp32).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import warnings
from pathlib import Path

import torch
from rich.console import Console
from rich.table import Table

from lightnets.export.backends import BackendUnavailableError, create_backend, openvino_runner
from lightnets.export.fuse import fuse
from lightnets.export.onnx import export_onnx, onnx_session, run_session
from lightnets.export.timing import peer_runner, time_callables
from lightnets.registry import create_model, resolve_name

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
            rows["openvino-int8"] = ("int8", openvino_runner(path)[0])
    return rows


def run_model(name: str, args: argparse.Namespace, say) -> list[dict]:
    records = []
    with tempfile.TemporaryDirectory() as folder:
        rows = candidates(name, args, folder, say)
        size = tuple(create_model(name, num_classes=0).default_input_size)
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
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch and ORT threads")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument("--openvino", action="store_true", help="also time OpenVINO (installed)")
    parser.add_argument("--bf16", action="store_true",
                        help="also time each torch / OpenVINO backend in bf16")
    parser.add_argument("--allow-emulated-bf16", action="store_true",
                        help="time bf16 even where the CPU emulates it")
    parser.add_argument("--int8", action="store_true",
                        help="also time the int8 model in ONNX Runtime (and OpenVINO)")
    parser.add_argument("--skip-eager", action="store_true",
                        help="leave out both eager rows (the slowest: quicker runs)")
    parser.add_argument("--json", metavar="PATH", help="also write the records as JSON")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    console = Console(width=None if Console().is_terminal else 160)
    say = lambda message: console.print(message, style="dim", highlight=False,  # noqa: E731
                                        markup=False)
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
    if args.json:
        Path(args.json).write_text(json.dumps(records, indent=1))


if __name__ == "__main__":
    main()
