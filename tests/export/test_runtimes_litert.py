"""LiteRT (.tflite by litert-torch): the export is checked in LiteRT's interpreter at its fixed
batch (recorded in the sidecar), runs under ``predict`` on any number of images, and a broken
file is caught."""

from __future__ import annotations

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from lightnets.cli import main
from lightnets.export.runtimes import litert
from tests.export.runtimes_common import (assert_broken_file_is_caught,
                                          assert_predicts_like_the_checkpoint, export_checkpoint)

# looked up, not imported: importing litert_torch loads JAX, whose threads must not be in a
# process that forks later (see the Makefile); the tests that convert import it when they run
pytestmark = pytest.mark.skipif(
    not all(importlib.util.find_spec(name) for name in ("litert_torch", "ai_edge_litert")),
    reason="litert-torch or ai-edge-litert is not installed (lightnets[litert])")


@pytest.mark.slow
def test_litert_export_is_checked_and_predicts(tmp_path, monkeypatch):
    checkpoint, result, images = export_checkpoint(tmp_path, "tflite")
    assert result.path.suffix == ".tflite" and result.sidecar.artefact_format == "tflite"
    # litert-torch cannot lower a symbolic batch: the file takes batch 1, in NCHW
    assert not result.sidecar.dynamic_batch and result.sidecar.input_size == [1, 1, 40, 40]
    assert result.verification.passed and result.verification.max_relative < 1e-4
    assert_predicts_like_the_checkpoint(checkpoint, result.path, images)  # 3 images, batch 1
    assert_broken_file_is_caught(checkpoint, result.path, tmp_path, monkeypatch)


def test_missing_litert_is_named_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert", None)
    assert main(["export", "--model", "squeezenet1_1", "--input-size", "32", "--format",
                 "tflite", "--output", str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert "needs ai-edge-litert, which is not installed" in err
    assert "pip install 'lightnets[litert]'" in err and not (tmp_path / "m.tflite").exists()


class FakeInterpreter:
    """LiteRT's ``Interpreter`` surface, for a file of batch 2 whose output is each image's sum."""

    def __init__(self, model_path: str, num_threads: int | None = None):
        self.calls: list[int] = []

    def allocate_tensors(self) -> None:
        pass

    def get_input_details(self):
        return [{"index": 0, "shape": np.array([2, 1, 4, 4])}]

    def get_output_details(self):
        return [{"index": 1}]

    def set_tensor(self, index: int, array: np.ndarray) -> None:
        assert array.shape == (2, 1, 4, 4)  # the file's own batch, always
        self.array = array

    def invoke(self) -> None:
        self.output = self.array.reshape(2, -1).sum(1, keepdims=True)

    def get_tensor(self, index: int) -> np.ndarray:
        return self.output


@pytest.mark.parametrize("count", [1, 2, 3, 5])
def test_a_fixed_batch_file_runs_any_batch_in_slices(count, monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter",
                        types.SimpleNamespace(Interpreter=FakeInterpreter))
    x = torch.randn(count, 1, 4, 4)
    out = litert.load_tflite(Path("model.tflite"))(x)
    assert torch.allclose(out, x.flatten(1).sum(1, keepdim=True), atol=1e-5)
