"""``lightnets benchmark`` on one tiny checkpoint with two formats: the table, CSV, Markdown
and PNG hold sane figures, and formats whose packages are missing are listed with their
extra."""

from __future__ import annotations

import csv
import json
import sys

import pytest
import torch

from lightnets.cli import main
from lightnets.export.benchmark import runnable_formats
from tests.export.test_export import fake_checkpoint

DIGITS = [str(digit) for digit in range(10)]


@pytest.mark.slow  # about 25 s of CPU: two exports, an int8 file, four scorings, the timing
def test_benchmark_two_formats_writes_sane_reports(tmp_path, capsys):
    checkpoint = fake_checkpoint(tmp_path / "best.pt", classes=DIGITS)
    assert main(["benchmark", checkpoint, "--formats", "onnx,torchscript", "--repeats", "3",
                 "--limit-batches", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    every = {(row["format"], row["precision"]): row for row in out["rows"]}
    assert list(every) == [("pytorch", "fp32"), ("onnx", "fp32"), ("torchscript", "fp32"),
                           ("onnx", "int8")]  # ONNX Runtime's int8, the one int8 runtime here
    int8 = every.pop(("onnx", "int8"))
    rows = {format: row for (format, _), row in every.items()}
    assert rows["onnx"]["ratio_to_onnxruntime"] == 1.0
    for row in rows.values():
        assert 0 <= row["metric"] <= 1 and row["metric_delta"] == pytest.approx(0, abs=1 / 256)
        assert row["latency_ms"] > 0 and row["ratio_to_onnxruntime"] > 0
    # untrained weights: the int8 figure may drop anywhere, but it is measured and timed
    assert int8["runtime"] == "onnxruntime" and 0 <= int8["metric"] <= 1
    assert int8["latency_ms"] > 0 and int8["size_mb"] < 0.5 * rows["onnx"]["size_mb"]
    assert int8["note"] == ("" if int8["metric_delta"] >= -0.01 else
                            f"drops {-100 * int8['metric_delta']:.2f} points, beyond 1")
    state = torch.load(checkpoint, weights_only=True)["model"]
    weights = sum(t.numel() for t in state.values()) * 4 / 2**20
    for name in ("onnx", "torchscript"):  # fp32 weights and a little graph
        assert weights < rows[name]["size_mb"] < 1.1 * weights
    folder = tmp_path / "benchmark"
    with open(folder / "benchmark.csv") as handle:
        assert [(row["format"], row["precision"]) for row in csv.DictReader(handle)] == [
            *every, ("onnx", "int8")]
    table = (folder / "benchmark.md").read_text()
    assert "| top-1 |" in table and table.count("| fp32 |") == 3 and "| int8 |" in table
    assert (folder / "benchmark.png").read_bytes()[:4] == b"\x89PNG"
    assert out["png"] == str(folder / "benchmark.png")


def test_missing_packages_are_listed_with_their_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ncnn", None)  # import fails as if not installed
    chosen, absent = runnable_formats(["onnx", "ncnn"])
    assert chosen == ["onnx"] and "lightnets[ncnn]" in absent["ncnn"]
    with pytest.raises(ValueError, match="unknown format"):
        runnable_formats(["onnx", "nope"])


def test_benchmark_refuses_an_unknown_target(tmp_path, capsys):
    assert main(["benchmark", str(tmp_path / "missing.pt")]) == 2
    assert "neither a checkpoint" in capsys.readouterr().err
