"""Timing: alternating blocks of calls and backend comparison rows against a baseline."""

from __future__ import annotations

import pytest
import torch

from lightnets.export.timing import bench_backends, time_callables

pytestmark = pytest.mark.xdist_group("backends")


def test_time_callables_alternates_blocks():
    calls = []
    times = time_callables({"a": lambda x: calls.append("a"), "b": lambda x: calls.append("b")},
                           torch.zeros(1), warmup=1, repeats=5, rounds=2, settle_s=0)
    # round 1: a then b, 1 warm-up + 3 timed calls each; round 2 reversed, 1 + 2
    assert "".join(calls) == "aaaa" "bbbb" "bbb" "aaa"
    assert [len(v) for v in times.values()] == [5, 5]
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_callables({"a": lambda x: None}, torch.zeros(1), repeats=0)


def test_bench_backends_rows():
    rows = bench_backends("squeezenet1_1", ["eager", "onnxruntime"], [1, 2], (3, 17, 17),
                          warmup=0, repeats=1)
    assert [(r.backend, r.batch_size) for r in rows] == [
        (name, batch) for batch in (1, 2)
        for name in ("eager", "onnxruntime", "torchvision-eager")]
    baseline = [r for r in rows if r.backend == "torchvision-eager"]
    assert all(r.speedup_vs_baseline == pytest.approx(1.0) for r in baseline)
    assert all(r.precision == "fp32" and r.median_ms > 0 for r in rows)
