"""Every classifier at output stride 16 and 8 (32 is the whole-zoo tests' default): the same
parameters, the maps at the stride feature_info claims (measured from their sizes), and, where
the strided layers are "same"-padded, exactly the strided network evaluated densely."""

from __future__ import annotations

import math

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.models.stages import StageTracker
from lightnets.registry import meta_model
from lightnets.testing import randomise
from tests.conftest import zoo_params


def measured_reduction(input_size: int, map_size: int) -> int:
    """The stride of a map, rounded to a power of two (valid-padding nets are not exact)."""
    return 2 ** round(math.log2(input_size / map_size))


@pytest.mark.parametrize("name", zoo_params())
def test_output_stride_keeps_parameters_and_reports_true_strides(name):
    nominal = meta_model(name)
    shapes = {key: value.shape for key, value in nominal.state_dict().items()}
    size = nominal.default_input_size[1]
    x = torch.empty(1, *nominal.default_input_size, device="meta")
    for output_stride in (16, 8):
        model = meta_model(name, output_stride=output_stride)
        assert {key: value.shape for key, value in model.state_dict().items()} == shapes
        assert model.output_stride == output_stride
        expected = [{**entry, "reduction": min(entry["reduction"], output_stride)}
                    for entry in nominal.feature_info]
        assert model.feature_info == expected
        features = model.to_features()
        maps = features(x)
        assert [m.shape[1] for m in maps] == features.channels
        assert [measured_reduction(size, m.shape[-1]) for m in maps] == features.reductions


# Same-padded families: the dilated trunk sampled every 32 / output_stride pixels is the
# strided trunk (no squeeze-excite, whose global mean sees the denser map). A subset: the
# sweep over every model is benchmarks/output_stride_sweep.py
EXACT = [("mobilenet_v2_x0_25", 64), ("shufflenet_v1_g3_x0_25", 64), ("shufflenet_v2_x0_5", 64),
         ("resnet18", 64)]


@pytest.mark.parametrize("name, size", EXACT)
def test_dilated_trunk_is_the_strided_one_evaluated_densely(name, size):
    torch.manual_seed(0)
    x = torch.randn(1, 3, size, size)
    outputs = {}
    for output_stride in (32, 16, 8):
        model = lightnets.create_model(name, output_stride=output_stride,
                                       features_only=True).eval()
        randomise(model)  # the same values: same shapes in the same order
        with torch.no_grad():
            outputs[output_stride] = (model(x)[-1], model.reductions[-1])
    strided, reduction = outputs[32]
    for output_stride in (16, 8):
        dense, dense_reduction = outputs[output_stride]
        step = reduction // dense_reduction
        assert step == 32 // output_stride
        torch.testing.assert_close(dense[..., ::step, ::step], strided, rtol=1e-4, atol=1e-4)


def test_mobilenet_v3_dilates_as_torchvision():
    """At 16, torchvision's dilated=True (its DeepLabV3 and LR-ASPP): the first block of the
    dilated stage already takes dilation 2."""
    with torch.device("meta"):
        ours = lightnets.create_model("mobilenet_v3_large", output_stride=16)
        theirs = torchvision.models.mobilenet_v3_large(dilated=True)
    dilations = [[m.dilation for m in net.modules() if isinstance(m, nn.Conv2d)]
                 for net in (ours, theirs)]
    assert dilations[0] == dilations[1] and (2, 2) in dilations[0]
    strides = [[m.stride for m in net.modules() if isinstance(m, nn.Conv2d)]
               for net in (ours, theirs)]
    assert strides[0] == strides[1]


def test_stage_tracker_policies_and_partial_strides():
    previous = StageTracker(8)
    steps = [previous.layer(s) for s in (2, 2, 2, 1, 2, 1, 2, 1)]
    assert [s.stride for s in steps] == [2, 2, 2, 1, 1, 1, 1, 1]
    assert [s.first_dilation for s in steps] == [1, 1, 1, 1, 1, 2, 2, 4]
    assert [s.dilation for s in steps] == [1, 1, 1, 1, 2, 2, 4, 4]
    assert [s.strided for s in steps] == [True, True, True, False, True, False, True, False]
    new = StageTracker(16, dilate_first=True)
    assert [new.layer(s).first_dilation for s in (2, 2, 2, 2, 2, 1)] == [1, 1, 1, 1, 2, 2]
    partial = StageTracker(8)  # a stride-4 layer at stride 4 keeps 2 of it
    partial.layer(4)
    step = partial.layer(4)
    assert (step.stride, step.first_dilation, step.dilation) == (2, 1, 2)
    partial.end_stage(10, "x")
    assert partial.feature_info == [{"num_chs": 10, "reduction": 8, "module": "x"}]
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32, got 4"):
        StageTracker(4)
    with pytest.raises(ValueError, match="output_stride must be 8, 16 or 32"):
        lightnets.create_model("vgg11", output_stride=12)
