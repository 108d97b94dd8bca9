"""``lightnets.model_info``: the published reference beside the counted numbers."""

from __future__ import annotations

import pytest

import lightnets


def test_model_info_reports_reference():
    info = lightnets.model_info("mobilenet_v2")
    assert info.name == "mobilenet_v2_x1_0" and info.family == "MobileNetV2"
    assert "Sandler" in info.paper and info.default_input_size == (3, 224, 224)
    assert info.params == 3_504_872 and info.macs == pytest.approx(300.8e6, rel=1e-3)
    assert info.reference["params"] == 3_504_872 and info.reference["top1"] == 72.0
    assert lightnets.model_info("mobilenet_v2", measure=True).macs == info.macs
