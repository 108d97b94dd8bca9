"""Which zoo models export to the phone runtimes and pass the export check there: one line per
model x format, ``pass`` (with the check's worst relative difference and the seconds it took)
or ``FAIL`` with the first line of the runtime's own error.

    python benchmarks/runtime_coverage.py [--formats executorch tflite] [--size 64]
        [--task classification|segmentation|detection] [PATTERN ...]

Random weights with randomised BatchNorm statistics (``lightnets.testing.randomise``), fp32,
each model at ``--size`` (or its smallest input where that is larger), the export exactly as
``lightnets export`` does it (fused, then checked in the file's own runtime on random and real
images against the eager model, tolerance 1e-4 of the output scale). Detectors export their
raw head outputs. Light models come first, so an interrupted run has covered them.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import lightnets
from lightnets.export import export_model
from lightnets.export.formats import FORMATS
from lightnets.export.source import from_name, imagenet_preprocess
from lightnets.files import first_line
from lightnets.registry import TASKS, list_models
from lightnets.tasks import task_for
from lightnets.testing import randomise

from _common import add_common_arguments, begin  # benchmarks/_common.py

# the heaviest classifiers last: an interrupted run has covered the light ones
HEAVY = ("alexnet", "vgg*", "resnet101", "resnet152", "resnext*", "se_resnet50", "resnet50",
         "inception_v3", "xception", "googlenet")


def ordered(names: list[str]) -> list[str]:
    heavy = set(list_models(HEAVY))
    return [n for n in names if n not in heavy] + [n for n in names if n in heavy]


def source_of(name: str, size: int):
    """``name`` at ``size`` (or its smallest input), random weights, randomised BatchNorms."""
    probe = lightnets.create_model(name)
    side = max(size, *getattr(probe, "min_input_size", (size, size)))
    source = from_name(name, side)
    model = randomise(source.model, weights="keep", seed=0)
    return dataclasses.replace(source, model=model,
                               preprocess=imagenet_preprocess(source.input_size))


def one(name: str, format: str, size: int, folder: Path) -> str:
    started = time.perf_counter()
    source = source_of(name, size)
    sized = task_for(source.model).dynamic_export_size and FORMATS[format].dynamic_size
    try:
        result = export_model(source, format, folder / f"{name}{FORMATS[format].suffix}")
    except Exception as error:  # the runtime's own error is the finding
        return f"{name:32s} {format:11s} FAIL  {first_line(error)[:300]}"
    seconds = time.perf_counter() - started
    result.path.unlink(missing_ok=True)
    sidecar = result.sidecar  # what the file takes, where less than asked for
    shape = ("" if sidecar.dynamic_batch else "  fixed batch") + (
        f"  sides from {sidecar.min_side}" if sidecar.min_side else "") + (
        "  fixed size" if sized and not sidecar.dynamic_size else "")
    return (f"{name:32s} {format:11s} pass  max relative {result.verification.max_relative:.1e}"
            f"  {seconds:.0f} s{shape}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"])
    parser.add_argument("--formats", nargs="+", default=["executorch", "tflite"])
    parser.add_argument("--size", type=int, default=64, help="input side (default 64)")
    parser.add_argument("--task", choices=TASKS, default=TASKS[0])
    add_common_arguments(parser)
    args = parser.parse_args()
    begin(args)
    names = ordered(list_models(args.patterns, task=args.task))
    passed = 0
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            for format in args.formats:
                line = one(name, format, args.size, Path(folder))
                passed += " pass " in line
                print(line, flush=True)
    print(f"{passed} of {len(names) * len(args.formats)} model x format pairs pass", flush=True)


if __name__ == "__main__":
    main()
