"""What a prune run reports: params, MACs, accuracy before pruning, after pruning and after
fine-tuning, and latency of the unpruned beside the pruned model; the accuracy-against-MACs
plot of a sweep."""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lightnets.profile.model_summary import format_count
from lightnets.prune.speed import Latency, fastest
from lightnets.train.report import write_atomic


@dataclass
class StepReport:
    """One pruning step (several with ``--iterative``) and the fine-tuning after it."""

    step: int
    target_macs: float | None        # fraction of the original MACs asked for at this step
    ratio: float                     # fraction of the prunable channels removed
    params: int
    macs: int
    top1_pruned: float               # before fine-tuning
    top1_finetuned: float | None     # None: no fine-tuning
    finetune_epochs: int
    run_dir: str | None


@dataclass
class PruneReport:
    """A prune run from start to end; accuracies are validation top-1 fractions."""

    model: str
    checkpoint: str
    output: str
    method: str
    allocation: str
    input_size: tuple[int, int, int]
    original_params: int
    original_macs: int
    params: int
    macs: int
    top1_before: float
    val_images: int
    steps: list[StepReport] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    latency_size: tuple[int, int, int] | None = None
    latency: list[Latency] = field(default_factory=list)

    @property
    def macs_fraction(self) -> float:
        return self.macs / self.original_macs

    @property
    def top1_pruned(self) -> float:
        return self.steps[0].top1_pruned

    @property
    def top1_final(self) -> float:
        last = self.steps[-1]
        return last.top1_pruned if last.top1_finetuned is None else last.top1_finetuned

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["latency"] = [row.as_dict() for row in self.latency]
        values.update(macs_fraction=round(self.macs_fraction, 4),
                      top1_pruned=self.top1_pruned, top1_final=self.top1_final)
        return values

    def lines(self) -> list[str]:
        """The report as printed by ``lightnets prune``."""
        size = "x".join(map(str, self.input_size))
        lines = [f"{self.model} pruned by {self.method} ({self.allocation}) -> {self.output}",
                 f"  params {self.original_params:,} -> {self.params:,} "
                 f"({self.params / self.original_params:.1%}); MACs at {size} "
                 f"{format_count(self.original_macs)} -> {format_count(self.macs)} "
                 f"({self.macs_fraction:.1%})"]
        for step in self.steps:
            target = f"target {step.target_macs:.1%} of MACs, " if step.target_macs else ""
            tuned = (f", after {step.finetune_epochs} epochs of fine-tuning "
                     f"{step.top1_finetuned:.2%}" if step.top1_finetuned is not None else
                     " (no fine-tuning)")
            lines.append(f"  step {step.step}: {target}{step.ratio:.1%} of the prunable channels "
                         f"removed -> MACs {format_count(step.macs)}; top-1 after pruning "
                         f"{step.top1_pruned:.2%}{tuned}")
        change = 100 * (self.top1_final - self.top1_before)
        lines.append(f"  top-1 on {self.val_images} validation images: before pruning "
                     f"{self.top1_before:.2%}, after pruning {self.top1_pruned:.2%}, final "
                     f"{self.top1_final:.2%} ({change:+.2f} points)")
        if self.skipped:
            kept = "; ".join(f"{count} {why}" for why, count in self.skipped.items())
            lines.append(f"  channel groups kept whole: {kept}")
        if self.latency:
            shape = "x".join(map(str, self.latency_size))
            for batch in sorted({row.batch_size for row in self.latency}):
                rows = [row for row in self.latency if row.batch_size == batch]
                cells = ", ".join(f"{row.backend} {row.original_ms:.2f} -> {row.pruned_ms:.2f} ms "
                                  f"({row.speedup:.2f}x)" for row in rows)
                best_before, best_after = fastest(rows, batch, "original"), fastest(rows, batch,
                                                                                    "pruned")
                lines.append(f"  latency at batch {batch}, {shape}: {cells}; fastest fp32: "
                             f"{best_before.backend} {best_before.original_ms:.2f} ms -> "
                             f"{best_after.backend} {best_after.pruned_ms:.2f} ms "
                             f"({best_before.original_ms / best_after.pruned_ms:.2f}x)")
        return lines


def plot_sweep(reports: list[PruneReport], path: str | Path) -> Path:
    """Validation top-1 against the fraction of MACs kept: the unpruned model, each target
    after pruning and after fine-tuning."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    reports = sorted(reports, key=lambda report: report.macs_fraction)
    figure = Figure(figsize=(7, 4.5), layout="constrained")
    axes = figure.add_subplot()
    fractions = [100 * report.macs_fraction for report in reports]
    before = reports[0].top1_before
    axes.axhline(100 * before, color="grey", linestyle="--", linewidth=1)
    axes.plot([100], [100 * before], "k*", markersize=10, label=f"unpruned {before:.2%}")
    axes.plot(fractions, [100 * report.top1_pruned for report in reports], "o--",
              label="after pruning")
    axes.plot(fractions, [100 * report.top1_final for report in reports], "o-",
              label="after fine-tuning")
    for x, report in zip(fractions, reports):
        axes.annotate(f"{report.top1_final:.1%}", (x, 100 * report.top1_final),
                      textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    axes.set(xlabel="MACs kept (% of the unpruned model)", ylabel="validation top-1 (%)",
             title=f"{reports[0].model}: {reports[0].method} pruning, {reports[0].allocation}",
             xlim=(0, 105))
    axes.grid(alpha=0.3)
    axes.legend(loc="center right")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    write_atomic(Path(path), buffer.getvalue())
    return Path(path)
