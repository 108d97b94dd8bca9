"""int8 LiteRT files (``quantize --backend tflite``): litert-torch's PT2E quantizer writes a fully
integer ``.tflite`` that passes the accuracy gate in LiteRT's interpreter and predicts; the
runner (de)quantizes an integer file's input and output with the file's own scale and zero
point; a missing extra is named before any work."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch

from lightnets.cli import main
from lightnets.export import read_sidecar
from lightnets.export.runtimes import litert
from tests.export.conftest import train_tiny_digits
from tests.test_readme import digit_png


@pytest.mark.slow
def test_int8_tflite_behind_the_accuracy_gate(tmp_path, capsys):
    """A MobileNetV1 x0.25 after two epochs on the digits, quantized to an int8 ``.tflite``,
    measured in LiteRT against fp32, written through the gate, then predicting."""
    pytest.importorskip("litert_torch", reason="litert-torch is not installed (lightnets[litert])")
    interpreter = pytest.importorskip("ai_edge_litert.interpreter",
                                      reason="ai-edge-litert is not installed (lightnets[litert])")
    checkpoint = train_tiny_digits(tmp_path / "runs")
    output = tmp_path / "tiny.int8.tflite"
    assert main(["quantize", "--checkpoint", str(checkpoint), "--calib-data",
                 "digits", "--calib-size", "64", "--max-drop", "5", "--latency-batch", "1",
                 "--backend", "tflite", "--output", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["backend"] == "tflite" and report["passed"] and report["fp32_top1"] > 0.3
    assert report["calib_images"] == 64 and abs(report["drop_points"]) < 5
    sidecar = read_sidecar(output)
    assert sidecar.precision == "int8" and sidecar.artefact_format == "tflite"
    assert sidecar.input_size == [1, 1, 32, 32] and not sidecar.dynamic_batch
    # a fully integer file: int8 in and out, int8 weights
    model = interpreter.Interpreter(model_path=str(output))
    assert model.get_input_details()[0]["dtype"] == np.int8
    assert model.get_output_details()[0]["dtype"] == np.int8
    assert sum(t["dtype"] == np.int8 for t in model.get_tensor_details()) > 20
    digit_png(3)(tmp_path / "three.png")
    assert main(["predict", "--checkpoint", str(output), str(tmp_path / "three.png"),
                 "--top-k", "1"]) == 0
    assert "three.png" in capsys.readouterr().out


class Int8Interpreter:
    """LiteRT's ``Interpreter`` surface for an int8 file of batch 1 whose output is its input's
    first two pixels: input scale 0.5, zero point 3; output scale 0.25, zero point -10."""

    def __init__(self, model_path: str, num_threads: int | None = None):
        pass

    def allocate_tensors(self) -> None:
        pass

    def get_input_details(self):
        return [{"index": 0, "shape": np.array([1, 1, 2, 2]), "dtype": np.int8,
                 "quantization": (0.5, 3)}]

    def get_output_details(self):
        return [{"index": 1, "dtype": np.int8, "quantization": (0.25, -10)}]

    def set_tensor(self, index: int, array: np.ndarray) -> None:
        assert array.dtype == np.int8 and array.shape == (1, 1, 2, 2)
        self.array = array

    def invoke(self) -> None:
        self.output = self.array.reshape(1, -1)[:, :2]

    def get_tensor(self, index: int) -> np.ndarray:
        return self.output


def test_an_int8_file_takes_and_gives_floats(monkeypatch):
    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter",
                        types.SimpleNamespace(Interpreter=Int8Interpreter))
    x = torch.tensor([[1.0, -2.0], [500.0, 0.0]]).reshape(1, 1, 2, 2)
    out = litert.load_tflite(Path("model.int8.tflite"))(x)
    # 1.0 -> round(2) + 3 = 5 -> (5 + 10) * 0.25; -2.0 -> -4 + 3 = -1 -> (-1 + 10) * 0.25
    assert out.dtype == torch.float32 and torch.equal(out, torch.tensor([[3.75, 2.25]]))
    big = litert.load_tflite(Path("model.int8.tflite"))(torch.full((1, 1, 2, 2), 500.0))
    assert torch.equal(big, torch.tensor([[34.25, 34.25]]))  # saturates at 127, as int8 does


def test_missing_litert_for_int8_is_named_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "litert_torch", None)  # import fails as if not installed
    output = tmp_path / "m.int8.tflite"
    assert main(["quantize", "--checkpoint", str(tmp_path / "none.pt"), "--calib-data",
                 "digits", "--backend", "tflite", "--output", str(output)]) == 2
    err = capsys.readouterr().err
    assert "needs litert-torch, which is not installed" in err
    assert "pip install 'lightnets[litert]'" in err and not output.exists()



@pytest.mark.slow
def test_fp16_tflite_halves_the_weights_behind_the_gate(tmp_path, capsys):
    """``--precision fp16 --backend tflite``: litert-torch's fp16 recipe stores every weight
    in half precision; the file holds about two bytes per parameter and keeps the top-1."""
    pytest.importorskip("litert_torch", reason="litert-torch is not installed (lightnets[litert])")
    checkpoint = train_tiny_digits(tmp_path / "runs")
    output = tmp_path / "tiny.fp16.tflite"
    assert main(["quantize", "--checkpoint", str(checkpoint), "--precision", "fp16",
                 "--backend", "tflite", "--latency-batch", "1", "--output", str(output),
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["precision"] == "fp16" and report["passed"] and abs(report["drop_points"]) < 1
    state = torch.load(checkpoint, weights_only=True)["model"]
    weights = sum(t.numel() for name, t in state.items() if not name.endswith(
        ("running_mean", "running_var", "num_batches_tracked")))
    assert 1.9 * weights < output.stat().st_size < 2.6 * weights  # bytes: 2 per weight
    sidecar = read_sidecar(output)
    assert (sidecar.precision, sidecar.artefact_format) == ("fp16", "tflite")
    assert sidecar.input_size == [1, 1, 32, 32] and not sidecar.dynamic_batch
