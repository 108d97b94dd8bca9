"""Inference backends: same outputs as eager PyTorch, the precision each one reports, bf16
refused (or loudly emulated) without native support, OpenVINO optional, and the bench hook."""

from __future__ import annotations

import argparse
import json
import sys

import pytest
import torch

import lightnets
from lightnets.cli.bench import add_backend_arguments, run_backend_bench
from lightnets.export import backends
from lightnets.export.backends import (
    BackendUnavailableError,
    available_backends,
    create_backend,
    native_bf16,
)
from lightnets.export.predict import predict_runner
from lightnets.export.timing import bench_backends, expand_backends, time_callables
from lightnets.hardware import cpu_flags

pytestmark = pytest.mark.xdist_group("backends")
SIZE = (3, 32, 32)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return lightnets.create_model("shufflenet_v2_x0_5", num_classes=5).eval()


def relative_error(reference: torch.Tensor, other: torch.Tensor) -> float:
    return ((reference - other).abs().max() / reference.abs().max()).item()


@pytest.mark.parametrize("name", ["eager", "onnxruntime"])
def test_fp32_backends_match_eager(model, name):
    backend = create_backend(model, name, SIZE)
    assert backend.precision == "fp32" and "fused" in backend.notes
    for batch in (1, 3):  # the ONNX file has a symbolic batch
        x = torch.randn(batch, *SIZE)
        with torch.no_grad():
            assert relative_error(model(x), backend(x)) < 1e-4


def test_eager_uses_channels_last_by_default(model):
    assert "channels-last" in create_backend(model, "eager", SIZE).notes
    assert "channels-last" not in create_backend(model, "eager", SIZE, channels_last=False).notes


@pytest.mark.slow
def test_compile_backend_matches_eager():
    small = lightnets.create_model("squeezenet1_1", num_classes=5).eval()
    backend = create_backend(small, "compile", (3, 17, 17))
    x = torch.randn(2, 3, 17, 17)
    with torch.no_grad():
        assert relative_error(small(x), backend(x)) < 1e-4


def test_bf16_refused_without_native_support(model, monkeypatch):
    monkeypatch.setattr(backends, "native_bf16", lambda: (False, "no native bf16 (test)"))
    with pytest.raises(BackendUnavailableError, match="bf16 refused: no native bf16"):
        create_backend(model, "eager", SIZE, "bf16")
    with pytest.warns(RuntimeWarning, match="bf16 is emulated"):
        backend = create_backend(model, "eager", SIZE, "bf16", allow_emulated_bf16=True)
    assert backend.precision == "bf16" and "bf16 EMULATED" in backend.notes
    x = torch.randn(2, *SIZE)
    out = backend(x)
    assert out.dtype == torch.float32  # logits come back in fp32; the network ran in bf16
    with torch.no_grad():
        assert 0 < relative_error(model(x), out) < 0.1  # bf16 rounding, not a wrong model


def test_bf16_native_reports_the_evidence(model, monkeypatch):
    monkeypatch.setattr(backends, "native_bf16", lambda: (True, "native bf16 (amx_bf16)"))
    backend = create_backend(model, "eager", SIZE, "bf16")
    assert backend.precision == "bf16" and "native bf16 (amx_bf16)" in backend.notes


def test_native_bf16_matches_the_cpu_flags():
    native, why = native_bf16()
    flags = cpu_flags()
    if flags & {"avx512_bf16", "amx_bf16", "bf16"}:
        assert native
    assert isinstance(why, str) and why


def test_precision_errors(model):
    with pytest.raises(BackendUnavailableError, match="no bf16 convolution kernels"):
        create_backend(model, "onnxruntime", SIZE, "bf16")
    with pytest.raises(ValueError, match="unsupported precision 'int4'"):
        create_backend(model, "eager", SIZE, "int4")
    with pytest.raises(ValueError, match="unknown backend 'tensorrt'"):
        create_backend(model, "tensorrt", SIZE)


def test_openvino_optional(model, monkeypatch):
    if available_backends()["openvino"] is None:
        backend = create_backend(model, "openvino", SIZE)
        x = torch.randn(2, *SIZE)
        assert backend.precision == "fp32"  # asked explicitly: OpenVINO would pick bf16 itself
        with torch.no_grad():
            assert relative_error(model(x), backend(x)) < 1e-4
    monkeypatch.setitem(sys.modules, "openvino", None)
    with pytest.raises(BackendUnavailableError,
                       match=r"needs openvino \(pip install 'lightnets\[openvino\]'\)"):
        create_backend(model, "openvino", SIZE)
    assert "openvino" not in expand_backends(["all"])


def test_time_callables_alternates_blocks():
    calls = []
    times = time_callables({"a": lambda x: calls.append("a"), "b": lambda x: calls.append("b")},
                           torch.zeros(1), warmup=1, repeats=5, rounds=2, settle_s=0)
    # round 1: a then b, 1 warm-up + 3 timed calls each; round 2 reversed, 1 + 2
    assert "".join(calls) == "aaaa" "bbbb" "bbb" "aaa"
    assert [len(v) for v in times.values()] == [5, 5]
    with pytest.raises(ValueError, match="repeats >= 1"):
        time_callables({"a": lambda x: None}, torch.zeros(1), repeats=0)


def test_bench_backends_rows():
    rows = bench_backends("squeezenet1_1", ["eager", "onnxruntime"], [1, 2], (3, 17, 17),
                          warmup=0, repeats=1)
    assert [(r.backend, r.batch_size) for r in rows] == [
        (name, batch) for batch in (1, 2)
        for name in ("eager", "onnxruntime", "torchvision-eager")]
    baseline = [r for r in rows if r.backend == "torchvision-eager"]
    assert all(r.speedup_vs_baseline == pytest.approx(1.0) for r in baseline)
    assert all(r.precision == "fp32" and r.median_ms > 0 for r in rows)


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


def test_predict_runner(model):
    preprocess = {"input_size": 32, "in_chans": 3}
    runner = predict_runner(model, "onnxruntime", preprocess)
    x = torch.randn(2, *SIZE)
    with torch.no_grad():
        assert relative_error(model(x), runner(x)) < 1e-4
    with pytest.raises(ValueError, match="runs on the CPU"):
        predict_runner(model, "onnxruntime", preprocess, "meta")
