"""Original against pruned, layer by layer: the table of ``lightnets summary --checkpoint``."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from lightnets.profile.model_summary import ModelSummary, format_count


def layer_rows(original: ModelSummary, pruned: ModelSummary) -> list[dict[str, Any]]:
    """One row per layer of the pruned model's summary with its original counterpart."""
    before = {layer.name: layer for layer in original.layers}
    rows = []
    for layer in pruned.layers:
        old = before.get(layer.name)
        rows.append({"name": layer.name, "type": layer.type_name,
                     "original_output": list(old.output_shapes[0]) if old and old.output_shapes
                     else None,
                     "output": list(layer.output_shapes[0]) if layer.output_shapes else None,
                     "original_params": old.params if old else 0, "params": layer.params,
                     "original_macs": old.macs if old else 0, "macs": layer.macs})
    return rows


def comparison_table(original: ModelSummary, pruned: ModelSummary, title: str) -> Table:
    """Params and MACs of every layer before and after pruning, totals in the caption."""
    table = Table(title=title, caption=(
        f"params {original.params:,} -> {pruned.params:,} ({pruned.params / original.params:.1%})"
        f"  MACs {format_count(original.macs)} -> {format_count(pruned.macs)} "
        f"({pruned.macs / original.macs:.1%})"), caption_justify="left")
    for column in ("layer", "output", "params", "pruned params", "MACs", "pruned MACs",
                   "MACs kept"):
        table.add_column(column, justify="left" if column == "layer" else "right",
                         no_wrap=column != "layer")
    for row in layer_rows(original, pruned):
        label = f"{'  ' * (row['name'].count('.') if row['name'] else 0)}{row['name'] or '(top)'}"
        shapes = "x".join(map(str, row["output"][1:])) if row["output"] else ""
        if row["original_output"] and row["original_output"] != row["output"]:
            shapes = f"{'x'.join(map(str, row['original_output'][1:]))} -> {shapes}"
        kept = f"{row['macs'] / row['original_macs']:.0%}" if row["original_macs"] else ""
        table.add_row(f"{label} [dim]{row['type']}[/]", shapes,
                      f"{row['original_params']:,}" if row["original_params"] else "",
                      f"{row['params']:,}" if row["params"] else "",
                      format_count(row["original_macs"]) if row["original_macs"] else "",
                      format_count(row["macs"]) if row["macs"] else "", kept)
    return table
