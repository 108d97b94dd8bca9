"""``lightnets summary``, ``bench`` and ``zoo`` end to end, with tiny inputs and repeat counts."""

from __future__ import annotations

import csv
import importlib.util
import io
import json

import pytest

import lightnets
from lightnets.cli import main
from lightnets.profile.bench import BenchResult, build_peer, measure_peak_gflops
from lightnets.registry import meta_model, peers_of

TINY = ["--repeats", "2", "--warmup", "1", "--input-size", "32", "--peak-size", "64"]
SUMMARY_KEYS = {"params", "trainable_params", "macs", "flops", "param_bytes",
                "activation_bytes", "peak_activation_bytes"}


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_summary_json_schema(capsys):
    status, out, _ = run_cli(capsys, "summary", "mobilenet_v2", "--json")
    assert status == 0
    totals = json.loads(out)  # nothing but JSON on stdout
    assert SUMMARY_KEYS <= totals.keys()
    assert all(isinstance(totals[key], int) for key in SUMMARY_KEYS)
    assert totals["params"] == 3504872
    assert totals["macs"] == pytest.approx(300.8e6, rel=0.005)
    assert totals["flops"] == 2 * totals["macs"]
    assert totals["peak_activation_bytes"] < totals["activation_bytes"]
    assert {"name", "input_shapes", "kernel", "params", "macs"} <= totals["layers"][0].keys()


def test_summary_table_and_options(capsys):
    status, out, _ = run_cli(capsys, "summary", "mobilenet_v2_x0_5", "--input-size", "64",
                             "--depth", "1")
    assert status == 0
    assert "features" in out and "classifier" in out and "64x64" in out
    assert "features.0" not in out  # depth 1 stops at the children of the model
    status, _, err = run_cli(capsys, "summary", "mobilenet_v2", "--input-size", "8")
    assert status == 2 and "at least 32x32" in err


def test_bench_json(capsys):
    status, out, _ = run_cli(capsys, "bench", "mobilenet_v2_x0_25", *TINY, "--json",
                             "--threads", "1", "--batch-size", "1", "2")
    assert status == 0
    report = json.loads(out)
    assert report["peak_gflops"] > 0 and report["threads"] == 1
    assert [r["batch_size"] for r in report["results"]] == [1, 2]
    first = report["results"][0]
    assert first["impl"] == "lightnets" and first["input_size"] == [3, 32, 32]
    assert 0 < first["median_ms"] <= first["p90_ms"] and first["repeats"] == 2
    assert first["images_per_s"] > 0 and first["gflops"] > 0 and first["efficiency"] > 0


def test_bench_vs_torchvision_prints_both_and_ratio(capsys):
    status, out, _ = run_cli(capsys, "bench", "mobilenet_v2", *TINY, "--vs", "torchvision")
    assert status == 0
    assert "lightnets" in out and "torchvision" in out
    assert "ratio lightnets/torchvision" in out
    status, out, _ = run_cli(capsys, "bench", "mobilenet_v2", *TINY, "--vs", "torchvision",
                             "--json", "--channels-last")
    ours, peer = json.loads(out)["results"]
    assert (ours["impl"], peer["impl"]) == ("lightnets", "torchvision")
    assert ours["params"] == peer["params"] and ours["channels_last"]
    assert ours["ratio_vs_peer"] == pytest.approx(ours["median_ms"] / peer["median_ms"], rel=1e-2)


def test_bench_train_mode_csv(capsys):
    status, out, _ = run_cli(capsys, "bench", "mobilenet_v2_x0_25", *TINY, "--mode", "train",
                             "--batch-size", "2", "--csv")
    assert status == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert len(rows) == 1 and rows[0]["mode"] == "train" and rows[0]["input_size"] == "3x32x32"
    assert float(rows[0]["median_ms"]) > 0


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_bench_vs_missing_timm_is_one_line(capsys):
    status, out, err = run_cli(capsys, "bench", "mobilenet_v2", *TINY, "--vs", "timm")
    assert status == 2 and not out
    assert "timm package" in err and len(err.strip().splitlines()) == 1


def test_bench_errors(capsys):
    with pytest.raises(ValueError, match="unknown peer"):
        build_peer("keras", "mobilenet_v2")
    status, _, err = run_cli(capsys, "bench", "nosuchmodel", *TINY)
    assert status == 2 and "unknown model" in err
    status, _, err = run_cli(capsys, "bench", "mobilenet_v2", *TINY, "--repeats", "0")
    assert status == 2 and "--repeats" in err


@pytest.mark.parametrize("name", [n for n in lightnets.list_models() if "torchvision" in peers_of(n)])
def test_torchvision_peers_have_our_parameter_shapes(name):
    ours, peer = meta_model(name), build_peer("torchvision", name, "meta")
    assert [p.shape for p in ours.parameters()] == [p.shape for p in peer.parameters()]


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


def test_zoo_writes_csv_markdown_and_png(capsys, tmp_path):
    status, out, _ = run_cli(capsys, "zoo", "--pattern", "mobilenet_v2_x0_25", "mobilenet_v2_x0_5",
                             "--out", str(tmp_path), "--batch-size", "2", *TINY)
    assert status == 0 and "2 models" in out
    rows = list(csv.DictReader(open(tmp_path / "zoo.csv")))
    assert [r["name"] for r in rows] == ["mobilenet_v2_x0_25", "mobilenet_v2_x0_5"]
    assert rows[1]["top1"] == "65.4" and float(rows[0]["latency_ms"]) > 0
    assert int(rows[0]["default_macs"]) > int(rows[0]["macs"])  # measured at 32x32
    markdown = (tmp_path / "zoo.md").read_text()
    assert "| mobilenet_v2_x0_5 |" in markdown and "img/s b2" in markdown
    assert (tmp_path / "zoo.png").read_bytes()[:4] == b"\x89PNG"


def test_zoo_without_bench_and_bad_pattern(capsys, tmp_path):
    status, _, _ = run_cli(capsys, "zoo", "--pattern", "mobilenet_v2_x0_25", "--no-bench",
                           "--out", str(tmp_path))
    assert status == 0
    row = next(csv.DictReader(open(tmp_path / "zoo.csv")))
    assert row["latency_ms"] == "" and int(row["params"]) == 1519112
    status, _, err = run_cli(capsys, "zoo", "--pattern", "nothing*", "--out", str(tmp_path))
    assert status == 2 and "no model matches" in err
