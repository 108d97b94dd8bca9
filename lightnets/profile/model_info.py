"""What a model is and what it costs, beside the numbers its paper (or torchvision) publishes.

Two tables ship with the package: ``reference/published.json`` (the papers' params, MACs and
top-1, with their source) and ``reference/golden.json`` (lightnets' own params/MACs of every
registered model at its default input size, measured by :mod:`lightnets.profile.counter`), so
``lightnets list`` is instant and a test catches any architecture change. Both the reader and the
writer of the golden table live here. Regenerate it after an intended change::

    python -m lightnets.profile.model_info [PATTERN ...]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any

from lightnets.profile.counter import count_complexity
from lightnets.registry import (CLASSIFICATION, aliases_of, list_models, meta_model, resolve_name,
                                task_of)


@cache
def _load_json(filename: str) -> dict[str, Any]:
    text = resources.files("lightnets.reference").joinpath(filename).read_text()
    return {k: v for k, v in json.loads(text).items() if not k.startswith("_")}


def reference(name: str) -> dict[str, Any]:
    """Published numbers for a model (params, MACs, top-1 and their source), or ``{}``."""
    return dict(_load_json("published.json").get(resolve_name(name), {}))


def golden(name: str) -> dict[str, int]:
    """lightnets' own measured params/MACs at the default input size, kept as a regression table."""
    return dict(_load_json("golden.json").get(resolve_name(name), {}))


@dataclass
class ModelInfo:
    """What a model is and what it costs, beside its published numbers."""

    name: str
    family: str
    paper: str
    default_input_size: tuple[int, int, int]
    params: int
    macs: int | None
    aliases: list[str] = field(default_factory=list)
    reference: dict[str, Any] = field(default_factory=dict)
    task: str = CLASSIFICATION

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_info(name: str, measure: bool = False) -> ModelInfo:
    """Describe a model: the golden table's params/MACs, or a measurement on the meta device
    when ``measure`` is set or the model is not in the table (e.g. a user-registered model)."""
    name = resolve_name(name)
    model = meta_model(name)
    stored = {} if measure else golden(name)
    if stored:
        params, macs = stored["params"], stored["macs"]
    else:
        counts = count_complexity(model)
        params, macs = counts.params, counts.macs
    return ModelInfo(name=name, family=getattr(model, "family", type(model).__name__),
                     paper=getattr(model, "paper", ""),
                     default_input_size=tuple(getattr(model, "default_input_size", (3, 224, 224))),
                     params=params, macs=macs, aliases=aliases_of(name), reference=reference(name),
                     task=task_of(name))


def golden_path() -> str:
    return str(resources.files("lightnets.reference").joinpath("golden.json"))


def update_golden(patterns: list[str]) -> dict[str, dict[str, int]]:
    """Measure the models matching ``patterns`` and merge them into the golden file."""
    path = golden_path()
    with open(path) as f:
        table = json.load(f)
    for name in list_models(patterns):
        counts = count_complexity(name)
        table[name] = {"params": counts.params, "macs": counts.macs}
        print(f"{name:28s} params {counts.params:>12,d}  MACs {counts.macs:>16,d}")
    if patterns == ["*"]:  # a full run also drops models that no longer exist
        table = {name: counts for name, counts in table.items() if name in list_models()}
    table = dict(sorted(table.items()))
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(table, f, indent=1)
        f.write("\n")
    os.replace(tmp, path)
    _load_json.cache_clear()
    return table


if __name__ == "__main__":  # running a submodule imports lightnets first: the zoo is registered
    update_golden(sys.argv[1:] or ["*"])
