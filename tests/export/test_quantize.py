"""int8 and bf16 quantization of a tiny digits model behind the accuracy gate."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lightnets.cli import main
from lightnets.export import read_sidecar
from lightnets.export.onnx import onnx_session, run_session

pytestmark = pytest.mark.xdist_group("quantize")


@pytest.mark.slow
def test_int8_report_model_and_sidecar(digits_checkpoint, tmp_path, capsys):
    output = tmp_path / "tiny.int8.onnx"
    assert main(["quantize", "--checkpoint", str(digits_checkpoint), "--calib-data", "digits",
                 "--calib-size", "200", "--max-drop", "5", "--latency-batch", "1",
                 "--backend", "onnxruntime", "--output", str(output), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["precision"] == "int8" and report["val_images"] == 355
    assert report["calib_images"] == 200 and report["passed"]
    assert abs(report["drop_points"]) < 5 and report["fp32_top1"] > 0.3
    assert set(report["latency_ms"]["1"]) == {"fp32", "int8"}
    sidecar = read_sidecar(output)
    assert sidecar.precision == "int8" and sidecar.artefact == output.name
    assert sidecar.backend == "onnxruntime" and report["backend"] == "onnxruntime"
    assert sidecar.accuracy["calibration"]["per_channel"] is True
    assert sidecar.accuracy["reduced_top1"] == report["reduced_top1"]
    assert sidecar.class_names == [str(d) for d in range(10)]

    # the file is a real int8 graph: quantized weights with one scale per output channel
    import onnx

    graph = onnx.load(output).graph
    kinds = {node.op_type for node in graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= kinds
    scales = {init.name: init for init in graph.initializer}
    weight_scales = [scales[node.input[1]] for node in graph.node
                     if node.op_type == "DequantizeLinear" and node.input[1] in scales
                     and len(scales[node.input[1]].dims) == 1 and scales[node.input[1]].dims[0] > 1]
    assert weight_scales, "expected per-channel weight scales"

    # and it runs at any batch size
    session = onnx_session(output)
    x = torch.randn(4, 1, 32, 32)
    assert run_session(session, x).shape == (4, 10)


@pytest.mark.slow
def test_accuracy_gate_refuses_a_broken_calibration(digits_checkpoint, tmp_path, capsys,
                                                    monkeypatch):
    from lightnets.export import quantize

    real = quantize.quantize_onnx

    def tiny_ranges(fp32, int8, calibration, *args, **kwargs):  # ranges 1000x too narrow
        return real(fp32, int8, calibration * 1e-3, *args, **kwargs)

    monkeypatch.setattr(quantize, "quantize_onnx", tiny_ranges)
    output = tmp_path / "broken.onnx"
    argv = ["quantize", "--checkpoint", str(digits_checkpoint), "--calib-data", "digits",
            "--calib-size", "64", "--latency-batch", "1", "--output", str(output)]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "int8 model not written: top-1 dropped" in captured.err
    assert "top-1 on 355 validation images: fp32" in captured.out
    assert not output.exists()
    assert main([*argv, "--force"]) == 0
    assert output.exists() and "FAILED the accuracy gate" in capsys.readouterr().out
    assert read_sidecar(output).accuracy["passed"] is False


@pytest.mark.slow
def test_bf16_is_refused_without_native_support(digits_checkpoint, tmp_path, capsys,
                                                monkeypatch):
    from lightnets.export import backends

    monkeypatch.setattr(backends, "native_bf16", lambda: (False, "no native bf16 (test)"))
    argv = ["quantize", "--checkpoint", str(digits_checkpoint), "--precision", "bf16",
            "--backend", "eager", "--latency-batch", "1", "--output", str(tmp_path / "m.pt2")]
    assert main(argv) == 2
    assert "bf16 refused: no native bf16 (test)" in capsys.readouterr().err
    with pytest.warns(RuntimeWarning, match="bf16 is emulated"):
        assert main([*argv, "--allow-emulated-bf16", "--max-drop", "100"]) == 0
    sidecar = read_sidecar(tmp_path / "m.pt2")
    assert sidecar.precision == "bf16" and sidecar.artefact_format == "pt2"
    assert "bf16" in capsys.readouterr().out


@pytest.mark.slow
def test_openvino_runs_the_gated_int8_and_bf16_models(digits_checkpoint, tmp_path, capsys):
    pytest.importorskip("openvino")
    from lightnets.export.backends import backend_from_file
    from lightnets.hardware import native_bf16

    int8 = tmp_path / "m.int8.onnx"
    assert main(["quantize", "--checkpoint", str(digits_checkpoint), "--calib-data", "digits",
                 "--calib-size", "100", "--max-drop", "5", "--latency-batch", "1",
                 "--backend", "openvino", "--output", str(int8), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["backend"] == "openvino" and report["passed"]
    backend, sidecar = backend_from_file(int8)  # the sidecar's runtime by default
    assert (backend.name, backend.precision, sidecar.backend) == ("openvino", "int8", "openvino")
    x = torch.randn(3, 1, 32, 32)
    in_onnxruntime, _ = backend_from_file(int8, "onnxruntime")
    assert backend(x).shape == in_onnxruntime(x).shape == (3, 10)
    # both runtimes compute the same int8 graph: same classes on real digits
    from lightnets.export.verify import real_images

    digits = real_images((1, 32, 32), read_sidecar(int8).preprocess, count=16)
    agree = (backend(digits).argmax(1) == in_onnxruntime(digits).argmax(1)).float().mean()
    assert agree >= 0.9

    if not native_bf16()[0]:
        pytest.skip("no native bf16 on this CPU: the bf16 half needs it")
    bf16 = tmp_path / "m.bf16.onnx"
    assert main(["quantize", "--checkpoint", str(digits_checkpoint), "--precision", "bf16",
                 "--backend", "openvino", "--latency-batch", "1", "--output", str(bf16)]) == 0
    assert "bf16 in openvino" in capsys.readouterr().out
    backend, sidecar = backend_from_file(bf16)
    assert (backend.precision, sidecar.precision, sidecar.artefact_format) == \
        ("bf16", "bf16", "onnx")
    with pytest.raises(ValueError, match="bf16 model runs in openvino"):
        backend_from_file(bf16, "onnxruntime")


@pytest.mark.slow
@pytest.mark.parametrize("argv, expected", [
    (["--calib-data", "digits", "--max-drop", "-1"], "max_drop >= 0"),
    (["--calib-data", "digits", "--backend", "eager"], "int8 runs in onnxruntime or openvino"),
    (["--calib-data", "digits", "--precision", "fp8"], "invalid choice"),
    (["--precision", "fp16", "--backend", "onnxruntime"], "fp16 runs in tflite or ncnn or mnn"),
    ([], "needs calibration data"),
    (["--calib-data", "/no/such/folder"], "no such folder"),
])
def test_quantize_errors(digits_checkpoint, argv, expected, capsys):
    argv = ["quantize", "--checkpoint", str(digits_checkpoint), *argv]
    if "invalid choice" in expected:  # argparse's own usage error
        with pytest.raises(SystemExit):
            main(argv)
    else:
        assert main(argv) == 2
    assert expected in capsys.readouterr().err


def test_evenly_spaced_covers_the_dataset():
    from lightnets.export.quantize import evenly_spaced

    dataset = [(torch.full((1,), float(i)), i) for i in range(100)]
    picked = evenly_spaced(dataset, 5).flatten().numpy()
    assert np.array_equal(picked, np.linspace(0, 99, 5).round())
    assert len(evenly_spaced(dataset, 500)) == 100


@pytest.mark.slow
def test_calibration_images_are_read_before_the_export(digits_checkpoint, tmp_path,
                                                       monkeypatch):
    from lightnets.export import quantize
    from tests.conftest import make_image_tree

    def no_export(*args, **kwargs):
        raise RuntimeError("the export started")

    monkeypatch.setattr(quantize, "export_model", no_export)
    (tmp_path / "empty" / "digit").mkdir(parents=True)
    with pytest.raises(ValueError, match="holds no readable image"):
        quantize.quantize_checkpoint(digits_checkpoint, str(tmp_path / "empty"))
    # two images, one class: nothing to hold out, and calibration needs nothing held out
    tree = make_image_tree(tmp_path / "two", per_class=1, size=8)
    with pytest.raises(RuntimeError, match="the export started"):
        quantize.quantize_checkpoint(digits_checkpoint, str(tree))


def test_a_tie_reads_as_no_drop():
    """A reduced model scoring the same up to float rounding shows +0.00, never -0.00."""
    from lightnets.export.quantize import QuantizeReport

    report = QuantizeReport("m", "fp16", 0.8297, 0.8297 + 1e-12, 500, 0, 1.0, metric="miou")
    assert "(drop +0.00 points, allowed 1.00)" in report.lines()[0] and report.passed
