"""The complexity counter and ``lightnets.summary``: exact counts on modules small enough to
count by hand, agreement with the golden table, memory measurement and per-layer rows."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import lightnets
from lightnets.layers import ChannelShuffle
from lightnets.profile import count_complexity, summary
from lightnets.profile.model_info import golden
from lightnets.profile.model_summary import format_bytes, format_count, normalize_input_size
from tests.conftest import zoo_params

FP32 = 4


class Residual(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


class Concat(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x * 2], dim=1)


def test_grouped_dilated_conv():
    conv = nn.Conv2d(8, 16, 3, padding=2, dilation=2, groups=4)
    result = summary(conv, (8, 10, 10))
    # each of 16*10*10 outputs sums 8/4 input channels x 3x3 taps
    assert result.macs == 16 * 10 * 10 * 2 * 9 == count_complexity(conv, (8, 10, 10)).macs
    assert result.flops == 2 * result.macs
    assert result.params == 16 * 2 * 9 + 16
    assert result.layers[0].kernel == "3x3 d2 g4"


def test_linear_on_extra_axes():
    linear = nn.Linear(20, 30)
    result = summary(linear, (5, 4, 20))
    assert result.macs == 5 * 4 * 20 * 30
    assert result.params == result.trainable_params == 20 * 30 + 30


def test_depthwise_conv():
    conv = nn.Conv2d(16, 16, 3, stride=2, padding=1, groups=16, bias=False)
    result = summary(conv, (16, 8, 8))
    assert result.macs == 16 * 4 * 4 * 9
    assert result.layers[0].kernel == "3x3/2 dw"
    assert result.layers[0].output_shapes == [(1, 16, 4, 4)]


def test_transposed_conv():
    conv = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1)
    result = summary(conv, (4, 5, 5))
    # every input element is multiplied with out_channels x 3x3 weights
    assert result.macs == 4 * 5 * 5 * 6 * 9 == count_complexity(conv, (4, 5, 5)).macs
    assert result.layers[0].output_shapes == [(1, 6, 10, 10)]
    assert result.layers[0].kernel.startswith("T 3x3/2")


def test_channel_shuffle_is_a_copy_without_macs():
    result = summary(ChannelShuffle(4), (8, 4, 4))
    assert result.macs == 0
    assert result.ops["copy"] == 8 * 4 * 4
    assert result.activation_bytes == 8 * 4 * 4 * FP32  # one new tensor, views are free
    assert result.bytes_moved == 2 * 8 * 4 * 4 * FP32  # read once, written once


def test_concat_and_its_elementwise_input():
    result = summary(Concat(), (3, 4, 4))
    assert result.ops["elementwise"] == 3 * 16
    assert result.ops["copy"] == 6 * 16
    assert result.layers[0].output_shapes == [(1, 6, 4, 4)]


def test_residual_add_is_seen():
    result = summary(Residual(8), (8, 5, 5))
    assert result.macs == 8 * 25 * 8
    assert result.ops["elementwise"] == 8 * 25
    assert sum(result.ops.values()) == 8 * 25


def test_norm_activation_pooling_counts():
    block = nn.Sequential(nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.AdaptiveAvgPool2d(1))
    result = summary(block, (4, 8, 8))
    assert result.macs == 0
    assert result.ops["norm"] == result.ops["activation"] == 4 * 64
    # max-pool reads 2x2 inputs per output, the global average every input
    assert result.ops["pooling"] == 4 * 16 * 4 + 4 * 16
    assert result.params == 8 and result.buffer_bytes == 2 * 4 * FP32 + 8  # + int64 counter


def test_peak_live_activation_is_measured():
    def chain(inplace: bool) -> nn.Module:
        return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.ReLU(inplace),
                             nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.ReLU(inplace))

    image, feature = 3 * 64 * FP32, 8 * 64 * FP32
    out_of_place = summary(chain(False), (3, 8, 8))
    assert out_of_place.activation_bytes == 4 * feature
    # at most the input and two feature maps are alive at once (an op's input and output)
    assert out_of_place.peak_activation_bytes == image + 2 * feature
    in_place = summary(chain(True), (3, 8, 8))
    assert in_place.activation_bytes == 2 * feature
    assert in_place.peak_activation_bytes == image + 2 * feature
    assert summary(chain(False), (3, 8, 8), batch_size=3).peak_activation_bytes == 3 * (
        image + 2 * feature)


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


@pytest.mark.parametrize("name", zoo_params())
def test_counter_matches_golden_table(name):
    result = summary(name, depth=0)
    assert {"params": result.params, "macs": result.macs} == golden(name)


def test_real_model_is_left_untouched():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4)).train()
    result = summary(model, (3, 16, 16))
    assert result.macs == 4 * 14 * 14 * 27
    assert model.training and next(model.parameters()).device.type == "cpu"


def test_peer_models_can_be_counted():
    import torchvision

    with torch.device("meta"):
        peer = torchvision.models.mobilenet_v2()
    assert summary(peer, (3, 224, 224), depth=1).macs == golden("mobilenet_v2")["macs"]


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
