"""``lightnets benchmark``: one model exported to every format whose packages are installed,
each file checked in its own runtime, then tabulated: file size, the task's metric on the
validation data and its difference to eager PyTorch, latency at batch 1 (median; the runtimes
interleaved in one process, :func:`lightnets.export.timing.time_callables`) and its ratio to
ONNX Runtime's fp32 in the same run. Written as CSV, Markdown and a PNG chart.

A checkpoint that names its data also gets an int8 row per runtime that has int8 (ONNX Runtime
and OpenVINO running the QDQ ONNX file, ExecuTorch, LiteRT, MNN) and an fp16 row per runtime
whose file can hold fp16 weights (LiteRT, ncnn, MNN), made as ``lightnets quantize`` makes
them, int8 calibrated on that data: a row's metric comes from the quantize gate (the whole
validation set), its difference from the fp32 file's figure on the same images, and a row
beyond ``max_drop`` points says so in its note.

The idea of one table per format follows Ultralytics' benchmark mode; here every row's file has
passed the same check as ``lightnets export`` (a file that does not compute the model is no
row), and the latencies are measured on the machine that runs the command, never assumed.
"""

from __future__ import annotations

import csv
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from lightnets.export.artefact import artefact_runner, export_model
from lightnets.export.backends import artefact_backend
from lightnets.export.formats import FORMATS, Runner, artefact_bytes
from lightnets.export.predict import evaluable
from lightnets.export.quantize import (ARTEFACT_FORMATS, BACKENDS, SUFFIXES,
                                       quantize_checkpoint)
from lightnets.export.source import ModelSource
from lightnets.export.timing import time_callables
from lightnets.files import first_line
from lightnets.optional import by_product, install_hint, missing
from lightnets.tasks import task_for
from lightnets.train.evaluate import evaluate

EAGER = "pytorch"      # the row of the model itself, unexported
BASELINE = "onnx"      # the format every latency is divided by
# (precision, backend) of each reduced row -> the format whose choice brings it: the file's,
# but for OpenVINO running the int8 ONNX file, which comes with the openvino format
REDUCED = {(precision, backend): "openvino" if backend == "openvino" else ARTEFACT_FORMATS[backend]
           for precision in ("int8", "fp16") for backend in BACKENDS[precision]}


@dataclass
class BenchmarkRow:
    """One format at one precision."""

    format: str
    precision: str
    runtime: str
    size_mb: float | None
    metric: float | None = None
    metric_delta: float | None = None   # metric - eager's
    latency_ms: float | None = None
    ratio_to_onnxruntime: float | None = None
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.format} {self.precision} {self.runtime}"


@dataclass
class BenchmarkResult:
    """The rows, the formats left out (-> why, with the install command) and the metric's
    label (None without validation data)."""

    model: str
    rows: list[BenchmarkRow]
    not_installed: dict[str, str] = field(default_factory=dict)
    metric_label: str | None = None
    threads: int = 2


def runnable_formats(formats: list[str] | None = None) -> tuple[list[str], dict[str, str]]:
    """The formats (default: all registered) whose packages are installed, and for the others
    the pip command that installs them."""
    chosen = list(formats or FORMATS)
    unknown = [name for name in chosen if name not in FORMATS]
    if unknown:
        raise ValueError(f"unknown format(s) {', '.join(unknown)}; expected some of "
                         f"{', '.join(FORMATS)}")
    absent = {name: missing(module for module, _ in FORMATS[name].packages) for name in chosen}
    return ([name for name in chosen if not absent[name]],
            {name: install_hint(modules) for name, modules in absent.items() if modules})


def file_megabytes(path: Path, format: str) -> float:
    """The size of the file and its side files (an ncnn or OpenVINO ``.bin``)."""
    return artefact_bytes(path, FORMATS[format]) / 2**20


def export_rows(source: ModelSource, formats: list[str], folder: Path,
                step: Callable[[str], None]) -> tuple[list[BenchmarkRow], dict[str, Path]]:
    """Export and check ``source`` in each format; a format whose export or check fails is a
    row with its first error line. The files by row key."""
    rows, paths = [], {}
    for name in formats:
        step(f"export {name}")
        spec = FORMATS[name]
        try:
            result = export_model(source, name, folder / (source.name + spec.suffix))
        except ValueError as error:  # an unsupported operator, a failed check
            rows.append(BenchmarkRow(name, "fp32", spec.runtime, None,
                                     note=f"failed: {first_line(error)}"))
            continue
        note = "" if spec.load else f"not runnable here ({spec.runtime}): size only"
        rows.append(BenchmarkRow(name, "fp32", spec.runtime, file_megabytes(result.path, name),
                                 note=note))
        paths[rows[-1].key] = result.path
    return rows, paths


def reduced_rows(source: ModelSource, formats: list[str], folder: Path, max_drop: float,
                 step: Callable[[str], None]) -> tuple[list[BenchmarkRow], dict[str, Path]]:
    """An int8 or fp16 file per runtime among ``formats`` that has that precision
    (:data:`REDUCED`), made and scored as ``lightnets quantize`` does, int8 calibrated on the
    checkpoint's data; written whatever its drop (the row says when it is beyond ``max_drop``
    points). The files by row key."""
    rows, paths = [], {}
    for (precision, backend), format in REDUCED.items():
        if format not in formats:
            continue
        step(f"{precision} {backend}")
        artefact = ARTEFACT_FORMATS[backend]
        path = folder / f"{source.name}.{backend}{SUFFIXES[precision, artefact]}"
        # an ONNX file's row names the runtime that ran it, the others their format's runtime
        runtime = backend if artefact == "onnx" else FORMATS[artefact].runtime
        try:
            report = quantize_checkpoint(source.checkpoint, source.training["data"], path,
                                         max_drop=max_drop, force=True, latency_batches=(),
                                         backend=backend, precision=precision)
        except ValueError as error:  # an operator the quantizer or runtime lacks
            rows.append(BenchmarkRow(artefact, precision, runtime, None,
                                     note=f"failed: {first_line(error)}"))
            continue
        note = "" if report.passed else (f"drops {report.drop_points:.2f} points, beyond "
                                         f"{max_drop:g}")
        rows.append(BenchmarkRow(artefact, precision, runtime, file_megabytes(path, artefact),
                                 report.reduced_score, 0.0 - report.drop_points / 100,
                                 note=note))
        paths[rows[-1].key] = path
    return rows, paths


def score_rows(rows: list[BenchmarkRow], paths: dict[str, Path], eager: float | None,
               limit_batches: int | None, step: Callable[[str], None]) -> None:
    """The task's metric of each runnable file on the validation data its sidecar records."""
    for row in rows:
        if (row.key not in paths or row.precision != "fp32" or FORMATS[row.format].load is None
                or eager is None):
            continue
        step(f"score {row.format}")
        result = evaluate(evaluable(paths[row.key]), limit_batches=limit_batches)
        row.metric, row.metric_delta = result.primary, result.primary - eager


def time_rows(rows: list[BenchmarkRow], paths: dict[str, Path], source: ModelSource,
              threads: int, repeats: int, step: Callable[[str], None]) -> None:
    """Median latency at batch 1 of eager PyTorch and every runnable file, interleaved in one
    process on ``threads`` threads, and each one's ratio to ONNX Runtime's."""
    step("time")
    runners: dict[str, Runner] = {rows[0].key: source.model.eval()}
    for row in rows:
        if row.key not in paths or FORMATS[row.format].load is None:
            continue
        runners[row.key] = (artefact_runner(paths[row.key], row.format, threads)
                            if row.precision == "fp32" else
                            artefact_backend(paths[row.key], row.format, row.precision,
                                             row.runtime, threads).run)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)  # eager PyTorch on the same threads as the runtimes
    try:
        times = time_callables(runners, torch.randn(1, *source.input_size),
                               repeats=repeats, rounds=min(3, repeats))
    finally:
        torch.set_num_threads(before)
    medians = {name: statistics.median(values) for name, values in times.items()}
    baseline = medians.get(f"{BASELINE} fp32 {FORMATS[BASELINE].runtime}")
    for row in rows:
        row.latency_ms = medians.get(row.key)
        if row.latency_ms is not None and baseline is not None:
            row.ratio_to_onnxruntime = row.latency_ms / baseline


def benchmark(source: ModelSource, folder: str | Path, formats: list[str] | None = None,
              threads: int = 2, repeats: int = 30, limit_batches: int | None = None,
              on_step: Callable[[str], None] | None = None, reduced: bool = True,
              max_drop: float = 1.0) -> BenchmarkResult:
    """Export ``source`` to each installed format (default: every registered one) in
    ``folder``, score each runnable file on the validation data of ``source``'s checkpoint (no
    metric for a model without one), add the int8 and fp16 rows when ``reduced`` and the
    checkpoint names its data (:func:`reduced_rows`), and time them all at batch 1.
    ``on_step`` is called with the name of each step as it starts (see :func:`count_steps`)."""
    if threads < 1 or repeats < 1:
        raise ValueError(f"threads and repeats must be at least 1, got {threads}, {repeats}")
    chosen, not_installed = runnable_formats(formats)
    if not chosen:
        raise ValueError("none of the formats can be written here: " + "; ".join(
            f"{name}: {hint}" for name, hint in not_installed.items()))
    step = on_step or (lambda _: None)
    folder = Path(folder)
    task = task_for(source.model)
    scored = bool(source.checkpoint and source.training.get("data"))
    eager = None
    if scored:
        step("score pytorch")
        eager = evaluate(source.checkpoint, device="cpu", limit_batches=limit_batches).primary
    rows, paths = export_rows(source, chosen, folder, step)
    rows.insert(0, BenchmarkRow(EAGER, "fp32", "pytorch (eager)", None, eager,
                                0.0 if scored else None))
    score_rows(rows, paths, eager, limit_batches, step)
    if reduced and scored:
        smaller, smaller_paths = reduced_rows(source, chosen, folder, max_drop, step)
        rows += smaller
        paths.update(smaller_paths)
    time_rows(rows, paths, source, threads, repeats, step)
    return BenchmarkResult(source.name, rows, not_installed,
                           task.metric_label if scored else None, threads)


def count_steps(source: ModelSource, formats: list[str] | None = None, reduced: bool = True
                ) -> int:
    """How many times :func:`benchmark` calls ``on_step`` (for a progress bar's total)."""
    chosen, _ = runnable_formats(formats)
    scored = bool(source.checkpoint and source.training.get("data"))
    runnable = sum(FORMATS[name].load is not None for name in chosen)
    smaller = sum(format in chosen for format in REDUCED.values()) if reduced else 0
    return len(chosen) + (1 + runnable + smaller if scored else 0) + 1


# -- the table, as text, CSV, Markdown and a chart -------------------------------------------
COLUMNS = ("format", "precision", "runtime", "size MB", "metric", "Δ eager", "latency ms",
           "x ONNX Runtime", "note")


def cells(row: BenchmarkRow) -> list[str]:
    """One row as the table's strings ("-" where there is no figure)."""
    def fmt(value: float | None, spec: str) -> str:
        return "-" if value is None else format(value, spec)
    return [row.format, row.precision, row.runtime, fmt(row.size_mb, ".2f"),
            fmt(None if row.metric is None else 100 * row.metric, ".2f"),
            fmt(None if row.metric_delta is None else 100 * row.metric_delta, "+.2f"),
            fmt(row.latency_ms, ".2f"), fmt(row.ratio_to_onnxruntime, ".2f"), row.note]


def column_names(result: BenchmarkResult) -> list[str]:
    label = result.metric_label or "metric"
    return [label if name == "metric" else name for name in COLUMNS]


def markdown(result: BenchmarkResult) -> str:
    """The table in Markdown, with a line on what was measured and what was not installed."""
    names = column_names(result)
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(cells(row)) + " |" for row in result.rows]
    lines.append("")
    lines.append(f"{result.model}: latency at batch 1, median, {result.threads} threads; "
                 f"{result.metric_label or 'metric'} in % on the validation data.")
    for name, hint in result.not_installed.items():
        lines.append(f"- {name}: not installed (`{hint}`)")
    return "\n".join(lines) + "\n"


def write_csv(result: BenchmarkResult, path: Path) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(asdict(result.rows[0])))
        writer.writeheader()
        writer.writerows(asdict(row) for row in result.rows)
    return path


def write_chart(result: BenchmarkResult, path: Path) -> Path | None:
    """Latency per format as horizontal bars, each labelled with its ratio to ONNX Runtime
    (None, with one warning, without matplotlib)."""
    if not by_product("matplotlib", str(path)):
        return None
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    timed = [row for row in result.rows if row.latency_ms is not None]
    figure, axes = plt.subplots(figsize=(7, 0.5 * len(timed) + 1.2))
    bars = axes.barh([f"{row.format} {row.precision}" for row in timed],
                     [row.latency_ms for row in timed], color="tab:blue")
    for bar, row in zip(bars, timed):
        ratio = "" if row.ratio_to_onnxruntime is None else f" {row.ratio_to_onnxruntime:.2f}x"
        axes.text(bar.get_width(), bar.get_y() + bar.get_height() / 2, ratio, va="center")
    axes.invert_yaxis()
    latencies = [row.latency_ms for row in timed]
    if max(latencies) > 20 * min(latencies):  # eager and the runtimes can be 100x apart
        axes.set_xscale("log")
    axes.set_xlabel(f"latency at batch 1, ms (median, {result.threads} threads)")
    axes.set_title(f"{result.model}: ratio to ONNX Runtime fp32")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path


def write_reports(result: BenchmarkResult, folder: str | Path) -> dict[str, Any]:
    """``benchmark.csv``, ``benchmark.md`` and ``benchmark.png`` in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "benchmark.md").write_text(markdown(result))
    return {"csv": write_csv(result, folder / "benchmark.csv"), "markdown":
            folder / "benchmark.md", "png": write_chart(result, folder / "benchmark.png")}
