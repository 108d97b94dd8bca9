"""The complexity counter: exact MACs, ops and memory on modules small enough to count."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from lightnets.layers import ChannelShuffle
from lightnets.profile import count_complexity, summary
from lightnets.profile.model_info import golden
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
    with torch.device("meta"):
        peer = torchvision.models.mobilenet_v2()
    assert summary(peer, (3, 224, 224), depth=1).macs == golden("mobilenet_v2")["macs"]
