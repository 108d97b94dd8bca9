"""The benchmark library: ``BenchResult`` statistics, the peak estimate and torchvision peers."""

from __future__ import annotations

import pytest

import lightnets
from lightnets.profile.bench import BenchResult, build_peer, measure_peak_gflops
from lightnets.registry import meta_model, peers_of


@pytest.mark.parametrize("name",
                         [n for n in lightnets.list_models() if "torchvision" in peers_of(n)])
def test_torchvision_peers_have_our_parameter_shapes(name):
    ours, peer = meta_model(name), build_peer("torchvision", name, "meta")
    assert [p.shape for p in ours.parameters()] == [p.shape for p in peer.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in peer.buffers()]


def test_models_without_counterpart_are_refused():
    missing = [n for n in lightnets.list_models() if "torchvision" not in peers_of(n)]
    if not missing:
        pytest.skip("every registered model has a torchvision counterpart")
    with pytest.raises(ValueError, match=f"no torchvision counterpart for {missing[0]}"):
        build_peer("torchvision", missing[0])


def test_bench_result_statistics():
    result = BenchResult("m", "lightnets", "infer", 4, (3, 32, 32), "cpu", 1, False, 10,
                         1_000_000, [1.0, 2.0, 3.0, 4.0, 100.0], peak_gflops=100.0)
    assert result.median_ms == 3.0 and result.p90_ms == pytest.approx(61.6)
    assert result.images_per_s == pytest.approx(4000 / 3)
    assert result.gflops == pytest.approx(2e6 * 4 / 3e-3 / 1e9)
    assert result.efficiency == pytest.approx(result.gflops / 100)
    train = BenchResult(**{**result.__dict__, "mode": "train"})
    assert train.gflops == pytest.approx(3 * result.gflops)
    assert measure_peak_gflops(64, repeats=1) > 0
