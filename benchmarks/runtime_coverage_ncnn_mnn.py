"""Every classifier of the zoo through the ncnn and MNN exports, each file checked in its own
runtime (the check ``lightnets export`` runs): one line per model and format.

    python benchmarks/runtime_coverage_ncnn_mnn.py [--formats ncnn,mnn] [PATTERN ...]

Real weights at initialisation with randomised BatchNorm statistics and affine terms
(``lightnets.testing.randomise``), ten classes, the model's smallest input, fp32, tolerance
1e-4 of the output scale. A failure prints the runtime's (or converter's) first error line.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import torch

import lightnets
from lightnets.export import ModelSource, export_model
from lightnets.export.formats import get_format
from lightnets.export.source import imagenet_preprocess
from lightnets.files import first_line
from lightnets.tasks import task_for
from lightnets.testing import randomise

from _common import begin  # benchmarks/_common.py


def classifiers(patterns: list[str]) -> list[str]:
    """The registered classifiers matching ``patterns``."""
    names = []
    for name in lightnets.list_models(patterns):
        model = lightnets.create_model(name, num_classes=10)
        if task_for(model).name == task_for(lightnets.create_model("squeezenet1_1")).name:
            names.append(name)
    return names


def check(name: str, format: str, folder: Path) -> str:
    """``ok (relative error)`` or ``FAIL: <first error line>``."""
    torch.manual_seed(0)
    model = randomise(lightnets.create_model(name, num_classes=10).eval(), weights="keep")
    size = (model.in_chans, *model.min_input_size)
    source = ModelSource(model, name, {"num_classes": 10}, size, imagenet_preprocess(size),
                         [str(i) for i in range(10)])
    try:
        result = export_model(source, format, folder / (name + get_format(format).suffix))
    except Exception as error:  # noqa: BLE001 - every converter fails its own way
        return f"FAIL: {type(error).__name__}: {first_line(error)}"
    return f"ok ({result.verification.worst.relative:.1e})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="model name patterns")
    parser.add_argument("--formats", default="ncnn,mnn", help="comma-separated formats")
    args = parser.parse_args()
    console = begin(args)
    formats = args.formats.split(",")
    counts: Counter = Counter()
    names = classifiers(args.patterns)
    for format in formats:
        for name in names:
            started = time.perf_counter()
            with tempfile.TemporaryDirectory() as folder:
                verdict = check(name, format, Path(folder))
            counts[(format, verdict.startswith("ok"))] += 1
            console.print(f"{format:8s} {name:26s} {verdict} "
                          f"({time.perf_counter() - started:.1f} s)",
                          highlight=False, markup=False, soft_wrap=True)
    for format in formats:
        console.print(f"{format}: {counts[(format, True)]} of {len(names)} pass",
                      highlight=False)
    return 1 if any(ok is False and n for (_, ok), n in counts.items()) else 0


if __name__ == "__main__":
    sys.exit(main())
