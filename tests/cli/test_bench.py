"""``lightnets bench``: JSON and CSV reports, the torchvision comparison, the backend hook."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys

import pytest

from lightnets.cli.bench import add_backend_arguments, run_backend_bench
from lightnets.export.timing import expand_backends
from lightnets.profile.bench import build_peer
from tests.cli.conftest import TINY_BENCH


def test_bench_json(run_cli):
    status, out, _ = run_cli("bench", "mobilenet_v2_x0_25", *TINY_BENCH, "--json",
                             "--threads", "1", "--batch-size", "1", "2")
    assert status == 0
    report = json.loads(out)
    assert report["peak_gflops"] > 0 and report["threads"] == 1
    assert [r["batch_size"] for r in report["results"]] == [1, 2]
    first = report["results"][0]
    assert first["impl"] == "lightnets" and first["input_size"] == [3, 32, 32]
    assert 0 < first["median_ms"] <= first["p90_ms"] and first["repeats"] == 2
    assert first["images_per_s"] > 0 and first["gflops"] > 0 and first["efficiency"] > 0


def test_bench_vs_torchvision_prints_both_and_ratio(run_cli):
    status, out, _ = run_cli("bench", "mobilenet_v2", *TINY_BENCH, "--vs", "torchvision")
    assert status == 0
    assert "lightnets" in out and "torchvision" in out
    assert "ratio lightnets/torchvision" in out
    status, out, _ = run_cli("bench", "mobilenet_v2", *TINY_BENCH, "--vs", "torchvision",
                             "--json", "--channels-last")
    ours, peer = json.loads(out)["results"]
    assert (ours["impl"], peer["impl"]) == ("lightnets", "torchvision")
    assert ours["params"] == peer["params"] and ours["channels_last"]
    assert ours["ratio_vs_peer"] == pytest.approx(ours["median_ms"] / peer["median_ms"], rel=1e-2)


def test_bench_train_mode_csv(run_cli):
    status, out, _ = run_cli("bench", "mobilenet_v2", *TINY_BENCH, "--mode", "train",
                             "--batch-size", "2", "--csv", "--vs", "torchvision")
    assert status == 0
    ours, peer = list(csv.DictReader(io.StringIO(out)))
    assert ours["mode"] == "train" and ours["input_size"] == "3x32x32"
    assert float(ours["median_ms"]) > 0 and float(peer["median_ms"]) > 0
    # lightnets with the trainer's defaults, the peer with the plain step
    assert ours["settings"].endswith("fused SGD") and peer["settings"] == "fp32, NCHW, SGD"
    assert (ours["channels_last"] == "True") == ("channels-last" in ours["settings"])


def test_bench_vs_missing_timm_is_one_line(run_cli, monkeypatch):
    monkeypatch.setitem(sys.modules, "timm", None)  # as if not installed (the dev extra has it)
    status, out, err = run_cli("bench", "mobilenet_v2", *TINY_BENCH, "--vs", "timm")
    assert status == 2 and not out
    assert "--vs timm needs timm" in err and len(err.strip().splitlines()) == 1


def test_bench_errors(run_cli):
    with pytest.raises(ValueError, match="unknown peer"):
        build_peer("keras", "mobilenet_v2")
    status, _, err = run_cli("bench", "nosuchmodel", *TINY_BENCH)
    assert status == 2 and "unknown model" in err
    status, _, err = run_cli("bench", "mobilenet_v2", *TINY_BENCH, "--repeats", "0")
    assert status == 2 and "--repeats" in err


@pytest.mark.xdist_group("backends")
def test_bench_hook_json(capsys):
    parser = argparse.ArgumentParser()
    add_backend_arguments(parser)
    args = parser.parse_args(["--backend", "eager"])
    args.__dict__.update(names=["mobilenet_v1_x0_25"], batch_size=[1], input_size=(32,),
                         warmup=0, repeats=1, json=True, mode="infer", vs=None)
    assert run_backend_bench(args) == 0
    results = json.loads(capsys.readouterr().out)["results"]
    assert [r["backend"] for r in results] == ["eager"]  # no torchvision MobileNetV1: no baseline
    with pytest.raises(ValueError, match="unknown backend"):
        expand_backends(["eager", "tflite"])


def test_backend_bench_of_a_segmenter_at_a_given_size(run_cli):
    # --input-size used to build the model as a headless classifier to read its default size,
    # which a segmenter refuses ("num_classes must be a positive integer, got 0")
    status, out, err = run_cli("bench", "lraspp_mobilenet_v3_small", "--backend", "eager",
                               "--input-size", "48", "--repeats", "3", "--warmup", "1",
                               "--json")
    assert status == 0, err
    row = json.loads(out)["results"][0]
    assert (row["model"], row["backend"], row["batch_size"]) == (
        "lraspp_mobilenet_v3_small", "eager", 1)
    assert 0 < row["median_ms"] <= row["p90_ms"]  # p90 once took the fastest of few repeats
