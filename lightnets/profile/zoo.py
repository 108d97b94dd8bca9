"""The zoo table: every registered model's cost (params, MACs, activation memory, measured on the
meta device) beside its measured latency, throughput and published top-1, written as CSV,
Markdown and a chart (latency vs MACs, accuracy vs MACs)."""

from __future__ import annotations

import csv
import io
import platform
from collections.abc import Callable
from typing import Any

import torch

from lightnets.files import write_atomic
from lightnets.profile.bench import benchmark
from lightnets.profile.model_info import model_info, reference
from lightnets.profile.model_summary import format_bytes, format_count, summary

COLUMNS = ["name", "family", "input", "params", "macs", "default_macs", "activation_bytes",
           "peak_activation_bytes", "latency_ms", "latency_p90_ms", "gflops_b1", "batch_size",
           "images_per_s", "gflops", "efficiency", "top1"]


def zoo_row(name: str, input_size: tuple[int, ...] | None = None, batch_size: int = 32,
            warmup: int = 3, repeats: int = 10, peak_gflops: float | None = None,
            measure: bool = True, on_step: Callable[[], None] | None = None) -> dict[str, Any]:
    """One model's row: costs on the meta device; with ``measure``, CPU latency at batch 1 and
    throughput at ``batch_size``."""
    info = model_info(name)
    cost = summary(name, input_size, depth=0)
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(name=info.name, family=info.family, input="x".join(map(str, cost.input_size[1:])),
               params=cost.params, macs=cost.macs, default_macs=info.macs,
               activation_bytes=cost.activation_bytes,
               peak_activation_bytes=cost.peak_activation_bytes, batch_size=batch_size,
               top1=reference(name).get("top1"))
    if measure:
        single = benchmark(name, 1, cost.input_size, warmup=warmup, repeats=repeats,
                           peak_gflops=peak_gflops, on_step=on_step)[0]
        batched = benchmark(name, batch_size, cost.input_size, warmup=warmup, repeats=repeats,
                            peak_gflops=peak_gflops, on_step=on_step)[0]
        row.update(latency_ms=round(single.median_ms, 3), latency_p90_ms=round(single.p90_ms, 3),
                   gflops_b1=round(single.gflops, 2), images_per_s=round(batched.images_per_s, 1),
                   gflops=round(batched.gflops, 2),
                   efficiency=None if batched.efficiency is None else round(batched.efficiency, 4))
    return row


def machine_line(peak_gflops: float | None) -> str:
    """Where the numbers were measured."""
    cpu = platform.processor() or platform.machine()
    peak = f", fp32 matmul peak {peak_gflops:.1f} GFLOP/s" if peak_gflops else ""
    return (f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}{peak}")


def write_csv(rows: list[dict[str, Any]], path: str) -> None:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS)
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buffer.getvalue())


def _cell(value: Any, kind: str = "") -> str:
    if value is None:
        return "—"
    if kind == "count":
        return format_count(value)
    if kind == "bytes":
        return format_bytes(value)
    if kind == "percent":
        return f"{100 * value:.1f}%"
    return str(value)


def write_markdown(rows: list[dict[str, Any]], path: str, peak_gflops: float | None) -> None:
    batch = rows[0]["batch_size"] if rows else 32
    header = ["model", "family", "input", "params", "MACs", "activations", "peak act.",
              "latency b1 (ms)", "p90 (ms)", f"img/s b{batch}", "GFLOP/s", "% of peak", "top-1"]
    lines = [f"# lightnets zoo\n\nMeasured on {machine_line(peak_gflops)}. MACs: conv + linear "
             "multiply-accumulates; activations: sum of op outputs and peak of live activations "
             "in one inference pass at batch 1; top-1: published ImageNet accuracy.\n",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row["name"], row["family"], row["input"], _cell(row["params"], "count"),
                 _cell(row["macs"], "count"), _cell(row["activation_bytes"], "bytes"),
                 _cell(row["peak_activation_bytes"], "bytes"), _cell(row["latency_ms"]),
                 _cell(row["latency_p90_ms"]), _cell(row["images_per_s"]), _cell(row["gflops"]),
                 _cell(row["efficiency"], "percent"), _cell(row["top1"])]
        lines.append("| " + " | ".join(cells) + " |")
    write_atomic(path, "\n".join(lines) + "\n")


def plot_zoo(rows: list[dict[str, Any]], path: str, title: str = "") -> None:
    """Two panels against MACs (log scale): batch-1 latency (MACs at the measured input size),
    and published top-1 (MACs at the default input size, where the accuracy was measured)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from matplotlib.ticker import FuncFormatter

    families = sorted({row["family"] for row in rows})
    # distinct colours first (tab20's dark shades), then markers, so ~40 families stay apart
    styles = {family: (plt.cm.tab20((2 * i) % 20 + (i // 10) % 2), "osD^v"[(i // 20) % 5])
              for i, family in enumerate(families)}
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    figure, axes = plt.subplots(1, 2, figsize=(15, 6.5))
    panels = ((axes[0], "latency_ms", "macs", "latency at batch 1 (ms, median)", True),
              (axes[1], "top1", "default_macs", "published ImageNet top-1 (%)", False))
    for axis, key, x_key, label, log_y in panels:
        shown = [row for row in rows if row[key] is not None and row[x_key]]
        for family in families:
            points = [row for row in shown if row["family"] == family]
            if points:
                color, marker = styles[family]
                axis.scatter([r[x_key] / 1e6 for r in points], [r[key] for r in points],
                             color=color, marker=marker, label=family, s=40,
                             edgecolor="black", linewidth=0.4, zorder=3)
        for row in shown:
            axis.annotate(row["name"], (row[x_key] / 1e6, row[key]), fontsize=7,
                          xytext=(4, 3), textcoords="offset points")
        axis.set_xscale("log")
        if log_y:
            axis.set_yscale("log")
            axis.yaxis.set_major_formatter(plain)
            axis.yaxis.set_minor_formatter(plain)
        axis.xaxis.set_major_formatter(plain)
        sizes = sorted({row["input"] for row in shown})
        axis.set_xlabel(f"MACs (millions, log scale) at input {', '.join(sizes)}"
                        if x_key == "macs" else "MACs (millions, log scale) at the default input")
        axis.set_ylabel(label)
        axis.grid(True, which="both", alpha=0.3)
        if not shown:
            axis.text(0.5, 0.5, "not measured", ha="center", transform=axis.transAxes)
    legend: dict[str, Any] = {}  # one entry per family, from whichever panel shows it
    for axis in axes:
        for handle, label in zip(*axis.get_legend_handles_labels()):
            legend.setdefault(label, handle)
    if legend:
        figure.legend(list(legend.values()), list(legend), loc="lower center",
                      ncol=min(len(legend), 8), fontsize=8)
    figure.suptitle(title or "lightnets zoo: cost vs latency and accuracy")
    figure.tight_layout(rect=(0, 0.07, 1, 0.96))
    try:
        write_atomic(path, lambda temporary: figure.savefig(temporary, format="png", dpi=130))
    finally:
        plt.close(figure)
