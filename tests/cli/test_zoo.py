"""``lightnets zoo``: the CSV, Markdown and PNG it writes, without benchmarks, and a bad pattern."""

from __future__ import annotations

import csv

import pytest

from tests.cli.conftest import TINY_BENCH


@pytest.mark.slow
def test_zoo_writes_csv_markdown_and_png(run_cli, tmp_path):
    status, out, _ = run_cli("zoo", "--pattern", "mobilenet_v2_x0_25", "mobilenet_v2_x0_5",
                             "--out", str(tmp_path), "--batch-size", "2", *TINY_BENCH)
    assert status == 0 and "2 models" in out
    rows = list(csv.DictReader(open(tmp_path / "zoo.csv")))
    assert [r["name"] for r in rows] == ["mobilenet_v2_x0_25", "mobilenet_v2_x0_5"]
    assert rows[1]["top1"] == "65.4" and float(rows[0]["latency_ms"]) > 0
    assert int(rows[0]["default_macs"]) > int(rows[0]["macs"])  # measured at 32x32
    markdown = (tmp_path / "zoo.md").read_text()
    assert "| mobilenet_v2_x0_5 |" in markdown and "img/s b2" in markdown
    assert (tmp_path / "zoo.png").read_bytes()[:4] == b"\x89PNG"


def test_zoo_without_bench_and_bad_pattern(run_cli, tmp_path):
    status, _, _ = run_cli("zoo", "--pattern", "mobilenet_v2_x0_25", "--no-bench",
                           "--out", str(tmp_path))
    assert status == 0
    row = next(csv.DictReader(open(tmp_path / "zoo.csv")))
    assert row["latency_ms"] == "" and int(row["params"]) == 1519112
    status, _, err = run_cli("zoo", "--pattern", "nothing*", "--out", str(tmp_path))
    assert status == 2 and "no classification model matches" in err
