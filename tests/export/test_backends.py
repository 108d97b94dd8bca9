"""Inference backends: parity with eager, bf16 refused or loudly emulated, OpenVINO optional."""

from __future__ import annotations

import sys

import pytest
import torch

import lightnets
from lightnets.export import backends
from lightnets.export.backends import BackendUnavailableError, available_backends, create_backend
from lightnets.export.timing import expand_backends
from tests.export.conftest import SIZE, relative_error

pytestmark = pytest.mark.xdist_group("backends")


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
