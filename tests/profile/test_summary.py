"""``lightnets.summary``: per-layer rows that add up, memory figures, rendering and input sizes."""

from __future__ import annotations

import pytest

import lightnets
from lightnets.profile import summary
from lightnets.profile.model_summary import format_bytes, format_count, normalize_input_size

FP32 = 4


def test_memory_of_parameters():
    result = summary("mobilenet_v2")
    assert result.param_bytes == result.params * FP32
    assert 0 < result.peak_activation_bytes < result.activation_bytes
    assert result.intensity > 0


@pytest.mark.parametrize("depth", [0, 1, 2, 3, 5])
def test_rows_add_up_to_the_totals(depth):
    result = summary("mobilenet_v2", depth=depth)
    assert sum(layer.params for layer in result.layers) == result.params
    assert sum(layer.macs for layer in result.layers) == result.macs
    assert all(layer.depth <= depth for layer in result.layers)
    for category, count in result.ops.items():
        assert sum(layer.ops[category] for layer in result.layers) == count
    names = [layer.name for layer in result.layers]
    assert len(names) == len(set(names))


def test_rows_follow_the_architecture():
    rows = {layer.name: layer for layer in summary("mobilenet_v2", depth=3).layers}
    stem = rows["features.0.conv"]
    assert stem.input_shapes == [(1, 3, 224, 224)] and stem.output_shapes == [(1, 32, 112, 112)]
    assert stem.kernel == "3x3/2" and stem.params == 3 * 32 * 9
    assert rows["features.2.depthwise"].kernel == "3x3/2 dw"
    # the residual add of block 3 belongs to the block itself, not to its sub-modules
    assert rows["features.3"].macs == 0 and rows["features.3"].ops["elementwise"] == 24 * 56 * 56
    assert "features.2" not in rows  # stride 2: no residual, nothing of its own


def test_rendering():
    text = str(summary("mobilenet_v2_x0_5", 64, depth=2))
    assert "features.1" in text and "MACs" in text and "peak live" in text
    assert lightnets.summary is summary


def test_input_size_forms_and_errors():
    default = (3, 224, 224)
    assert normalize_input_size(None, default) == default
    assert normalize_input_size(96, default) == (3, 96, 96)
    assert normalize_input_size((64, 80), default) == (3, 64, 80)
    assert normalize_input_size((1, 64, 80), default) == (1, 64, 80)
    for bad in (0, (1, 2, 3, 4), (3, -1), "224"):
        with pytest.raises(ValueError, match="input size"):
            normalize_input_size(bad, default)
    with pytest.raises(ValueError, match="depth"):
        summary("mobilenet_v2", depth=-1)
    with pytest.raises(ValueError, match="at least"):
        summary("mobilenet_v2", 16)


def test_formatting():
    assert format_count(3504872) == "3.50M" and format_count(12) == "12"
    assert format_bytes(14 * 2**20) == "14.00 MiB" and format_bytes(100) == "100 B"
