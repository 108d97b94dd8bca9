"""Missing optional packages, simulated by hiding the module: a package a command needs is named
with the extra that installs it before any work starts; a plot that cannot be drawn is left out
with one warning and the numbers are kept. Install hints print as written (rich markup)."""

from __future__ import annotations

import json
import sys

import pytest

from lightnets.cli import main
from lightnets.cli._common import print_error
from lightnets.optional import MissingDependencyError, available, require_all
from tests.conftest import DIGITS_RUN, TINY_TRAIN
from tests.cli.conftest import TINY_BENCH


def hide(monkeypatch, *packages: str) -> None:
    """Make ``packages`` (and every submodule already imported) unimportable."""
    for package in packages:
        for name in [name for name in sys.modules if name.startswith(f"{package}.")]:
            monkeypatch.setitem(sys.modules, name, None)
        monkeypatch.setitem(sys.modules, package, None)
    assert not any(available(package) for package in packages)


def test_install_hints_print_as_written(capsys):
    print_error(MissingDependencyError("x needs y (pip install 'lightnets[train]') [bold]z[/]"))
    assert capsys.readouterr().err == ("error: x needs y (pip install 'lightnets[train]') "
                                       "[bold]z[/]\n")


def test_require_all_names_every_missing_package_and_its_extras(monkeypatch):
    hide(monkeypatch, "onnxruntime", "openvino")
    with pytest.raises(MissingDependencyError) as error:
        require_all([("onnxruntime", "backend onnxruntime"), ("torch", "anything"),
                     ("openvino", "backend openvino")])
    assert str(error.value) == (
        "backend onnxruntime and backend openvino needs onnxruntime, openvino, which are not "
        "installed (pip install 'lightnets[export,openvino]')")


@pytest.mark.slow
def test_train_without_matplotlib_keeps_the_numbers(monkeypatch, tmp_path, capsys):
    hide(monkeypatch, "matplotlib")
    assert 0 == main(["train", *TINY_TRAIN, "--epochs", "2", "--limit-train-batches", "1",
                    "--runs-dir", str(tmp_path), "--name", "plain"])
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"warning: {tmp_path / 'plain' / 'curves.png'} left out: matplotlib is not "
                   "installed (pip install 'lightnets[train]')"]  # once, before epoch 1
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == [
        "best.pt", "config.json", "last.pt", "metrics.csv"]


@DIGITS_RUN
def test_eval_without_matplotlib_prints_the_numbers(monkeypatch, digits_run, tmp_path, capsys):
    hide(monkeypatch, "matplotlib")
    assert 0 == main(["eval", "--checkpoint", str(digits_run), "--limit-batches", "1", "--json",
                    "--confusion", str(tmp_path / "confusion.png")])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert result["count"] == 256 and result["confusion_png"] is None
    assert "confusion.png left out: matplotlib is not installed" in captured.err
    assert not (tmp_path / "confusion.png").exists()


def test_zoo_without_matplotlib_writes_the_tables(monkeypatch, tmp_path, capsys):
    hide(monkeypatch, "matplotlib")
    assert 0 == main(["zoo", "--pattern", "mobilenet_v2_x0_25", "--no-bench", "--out",
                    str(tmp_path)])
    assert "zoo.png left out: matplotlib is not installed" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["zoo.csv", "zoo.md"]


@pytest.mark.parametrize("hidden, argv, expected", [
    ("onnxruntime", ["bench", "mobilenet_v2_x0_25", *TINY_BENCH, "--backend", "onnxruntime"],
     "backend onnxruntime needs onnxruntime, which is not installed (pip install "
     "'lightnets[export]')"),
    ("openvino", ["bench", "mobilenet_v2_x0_25", *TINY_BENCH, "--backend", "eager", "openvino"],
     "backend openvino needs openvino, which is not installed (pip install "
     "'lightnets[openvino]')"),
    ("sklearn", ["train", "--model", "mobilenet_v2_x0_25"],
     "--data digits needs scikit-learn, which is not installed (pip install 'lightnets[train]')"),
    ("onnxruntime", ["export", "--model", "mobilenet_v2_x0_25", "--input-size", "32"],
     "checking an ONNX export needs onnxruntime"),
    ("openvino", ["quantize", "--checkpoint", "none.pt", "--calib-data", "digits", "--backend",
                  "openvino"], "backend openvino needs openvino"),
])
def test_a_needed_package_is_named_before_any_work(monkeypatch, tmp_path, capsys, hidden, argv,
                                                   expected):
    hide(monkeypatch, hidden)
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith(f"error: {expected}") and captured.err.count("\n") == 1
    assert not captured.out and not list(tmp_path.iterdir())  # nothing measured or written
