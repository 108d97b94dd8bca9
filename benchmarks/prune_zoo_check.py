"""Structured pruning over the whole zoo: which channel groups each model can prune, and the
check that pruning removes exactly the chosen channels (lightnets.prune.verify): every fourth
channel of every prunable group is silenced, then removed, and the outputs must not change.

    python benchmarks/prune_zoo_check.py [PATTERN ...]

Real weights, randomised BatchNorm statistics and affine terms (``lightnets.testing.randomise``),
the model's smallest input, batch 2, eval mode; GoogLeNet and Inception v3 with their auxiliary
heads. Prints per model the prunable and kept groups (with the reason), the
MACs left at the default input size, and the relative output difference (tests/prune checks a
representative subset of the same).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

import torch

import lightnets
from lightnets.profile import count_complexity
from lightnets.prune.graph import PruningGraph
from lightnets.prune.verify import removal_error
from lightnets.testing import randomise

from _common import begin  # benchmarks/_common.py


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("patterns", nargs="*", default=["*"], help="model name patterns")
    args = parser.parse_args()
    console = begin(args)
    failures = 0
    for name in lightnets.list_models(args.patterns):
        started = time.perf_counter()
        extra = {"aux_logits": True} if name in ("googlenet", "inception_v3") else {}
        torch.manual_seed(0)
        model = lightnets.create_model(name, num_classes=10, **extra).eval()
        randomise(model, weights="keep")
        macs = count_complexity(model).macs
        graph = PruningGraph(model)
        kept = ", ".join(f"{count} {why}" for why, count in Counter(graph.skipped.values()).items())
        if not graph.groups:
            console.print(f"{name:24s} prunable groups   0  kept: {kept}  (nothing to prune)",
                          highlight=False, markup=False, soft_wrap=True)
            continue
        x = torch.randn(2, model.in_chans, *model.min_input_size)
        error = removal_error(model, x)
        left = count_complexity(model).macs / macs
        verdict = "ok" if error < 1e-4 else "MISMATCH"
        failures += verdict != "ok"
        console.print(f"{name:24s} prunable groups {len(graph.groups):3d}  kept: "
                      f"{kept or 'none':52s} MACs left {left:6.1%}  output difference "
                      f"{error:.1e} {verdict} ({time.perf_counter() - started:.1f} s)",
                      highlight=False, markup=False, soft_wrap=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
