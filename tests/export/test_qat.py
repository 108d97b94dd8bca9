"""Quantization-aware training (``lightnets quantize --qat``): a tiny digits classifier fine-tuned
fake-quantized ends in int8 files that pass the accuracy gate and predict; options QAT does not
take are refused in one line before any work."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from lightnets.cli import main
from lightnets.export import qat, read_sidecar
from lightnets.export.onnx import onnx_session, run_session
from lightnets.tasks import CLASSIFICATION_TASK, DETECTION_TASK
from tests.test_readme import digit_png

pytest.importorskip("torchao", reason="torchao is not installed (lightnets[executorch])")
pytest.importorskip("executorch", reason="executorch is not installed (lightnets[executorch])")
pytestmark = pytest.mark.xdist_group("quantize")


@pytest.mark.slow
def test_qat_int8_onnx_passes_the_gate_and_predicts(digits_checkpoint, tmp_path, capsys,
                                                     monkeypatch):
    converted = []  # the int8 graph QAT ended in, kept to lower it to ExecuTorch below
    real = qat.qat_model
    monkeypatch.setattr(qat, "qat_model", lambda *a, **k: converted.append(real(*a, **k))
                        or converted[-1])
    output = tmp_path / "tiny.qat.int8.onnx"
    assert main(["quantize", "--checkpoint", str(digits_checkpoint), "--qat", "--qat-epochs",
                 "1", "--calib-size", "64", "--max-drop", "5", "--latency-batch", "1",
                 "--output", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] and report["qat_epochs"] == 1 and report["backend"] == "onnxruntime"
    assert report["fp32_top1"] > 0.3 and abs(report["drop_points"]) < 5
    # post-training int8 measured on the same images, for comparison
    assert 0.1 < report["ptq_top1"] <= 1 and report["val_images"] == 355
    sidecar = read_sidecar(output)
    assert sidecar.precision == "int8" and sidecar.accuracy["calibration"]["qat"]["epochs"] == 1

    # a QDQ graph whose convolution weights are stored in int8, one scale per output channel
    import onnx

    graph = onnx.load(output).graph
    assert {"QuantizeLinear", "DequantizeLinear", "Conv"} <= {n.op_type for n in graph.node}
    int8 = [i for i in graph.initializer if i.data_type == onnx.TensorProto.INT8 and
            len(i.dims) == 4]
    assert len(int8) == sum(n.op_type == "Conv" for n in graph.node)
    digit_png(3)(tmp_path / "three.png")
    assert main(["predict", "--checkpoint", str(output), str(tmp_path / "three.png"),
                 "--top-k", "1"]) == 0
    assert "three.png" in capsys.readouterr().out

    # the same int8 graph lowered to XNNPACK: ExecuTorch computes what ONNX Runtime does
    from lightnets.export.runtimes.executorch_pte import load_pte

    pte = qat.write_qat(converted[0], tmp_path / "tiny.qat.int8.pte", "executorch",
                        (1, 32, 32), "tiny")
    x = torch.randn(16, 1, 32, 32)
    # the graph's own arithmetic: ONNX Runtime unoptimised runs each QuantizeLinear and
    # DequantizeLinear as written. (Optimised, it fuses them into integer kernels; on x86 CPUs
    # without VNNI those sum uint8 x int8 pairs in saturating 16 bits, ONNX Runtime's documented
    # limit: on a Zen 1 they moved these random inputs' logits 0.33 on average, and the gate
    # above measures what that costs on real images.)
    onnx_logits = run_session(onnx_session(output, optimize=False), x)
    # integer kernels round differently from the graph's float emulation: a few quanta apart
    for logits in (load_pte(pte)(x), converted[0](x)):
        assert (logits.argmax(1) == onnx_logits.argmax(1)).float().mean() >= 0.75
        assert (logits - onnx_logits).abs().mean() < 0.1 * onnx_logits.abs().max()


class ConvBnNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv, self.bn = nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.relu(self.bn(self.conv(x))).mean((2, 3)))


@pytest.mark.slow  # torchao's prepare traces its conv-BatchNorm patterns: seconds
def test_freezing_stops_observers_and_batchnorm_statistics():
    prepared = qat.prepare(ConvBnNet(), (1, 8, 8))
    statistics = [b for name, b in prepared.named_buffers() if "running_mean" in name]
    observers = [m for m in prepared.modules() if hasattr(m, "observer_enabled")]
    assert statistics and observers
    prepared(torch.randn(4, 1, 8, 8) + 3)  # training mode: the statistics move
    before = [b.clone() for b in statistics]
    assert any(b.abs().sum() > 0 for b in before)
    qat.freeze_ranges_and_statistics(prepared)
    prepared(torch.randn(4, 1, 8, 8) * 5 - 7)
    assert all(torch.equal(a, b) for a, b in zip(before, statistics))
    assert all(int(m.observer_enabled[0]) == 0 for m in observers)


@pytest.mark.parametrize("precision, backend, options, expected", [
    ("bf16", "onnxruntime", qat.QatOptions(), "--qat fine-tunes for int8, not bf16"),
    ("int8", "openvino", qat.QatOptions(), "--qat writes for onnxruntime or executorch"),
    ("int8", "onnxruntime", qat.QatOptions(epochs=0), "epochs >= 1"),
    ("int8", "onnxruntime", qat.QatOptions(lr=-1.0), "positive learning rate"),
])
def test_options_qat_does_not_take(precision, backend, options, expected):
    with pytest.raises(ValueError, match=expected):
        qat.check_qat(precision, backend, options)


def test_qat_is_refused_for_a_detector():
    with pytest.raises(ValueError, match="--qat fine-tunes classifiers, not a detector"):
        qat.check_qat_task(DETECTION_TASK)
    qat.check_qat_task(CLASSIFICATION_TASK)  # a classifier: no error


@pytest.mark.parametrize("argv, expected", [
    (["--qat", "--precision", "bf16"], "--qat fine-tunes for int8, not bf16"),
    (["--qat", "--backend", "openvino"], "--qat writes for onnxruntime or executorch"),
    (["--qat-epochs", "2"], "--qat-epochs and --qat-lr need --qat"),
])
def test_cli_refuses_bad_qat_options_before_reading_the_checkpoint(argv, expected, tmp_path,
                                                                   capsys):
    # the checkpoint does not exist: the options are refused before anything is read
    assert main(["quantize", "--checkpoint", str(tmp_path / "none.pt"), *argv]) == 2
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1
