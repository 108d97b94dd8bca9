"""``lightnets eval`` of a trained run: JSON, table, per-class accuracy, confusion matrix."""

from __future__ import annotations

import json

from lightnets.cli import main
from tests.conftest import DIGITS_RUN


@DIGITS_RUN
def test_eval_json_and_table(digits_run, capsys, tmp_path):
    png = tmp_path / "confusion.png"
    assert main(["eval", "--checkpoint", str(digits_run), "--json", "--limit-batches", "2",
                 "--batch-size", "64", "--confusion", str(png)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert 0 <= result["top1"] <= result["top5"] <= 1 and result["loss"] > 0
    assert result["count"] == 128 and sorted(result["per_class"]) == [str(d) for d in range(10)]
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert main(["eval", "--checkpoint", str(digits_run / "last.pt"), "--limit-batches", "1"]) == 0
    out = capsys.readouterr().out
    assert "per-class accuracy" in out and "top-1" in out
    assert (digits_run / "confusion-val.png").exists()
    (digits_run / "confusion-val.png").unlink()  # keep the run folder as the other tests expect


@DIGITS_RUN
def test_eval_limit_batches_zero_says_what_is_wrong(digits_run, capsys):
    assert main(["eval", "--checkpoint", str(digits_run), "--limit-batches", "0"]) == 2
    assert capsys.readouterr().err == "error: limit_batches must be at least 1, got 0\n"
