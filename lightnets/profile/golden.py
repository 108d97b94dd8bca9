"""The golden table: lightnets' measured params/MACs of every registered model at its default
input size, kept in ``reference/golden.json`` so ``lightnets list`` is instant and a test catches
any architecture change. Regenerate after an intended change::

    python -m lightnets.profile.golden [PATTERN ...]
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from importlib import resources

from lightnets.profile.counter import count_complexity
from lightnets.registry import list_models


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
    return table


if __name__ == "__main__":
    update_golden(sys.argv[1:] or ["*"])
