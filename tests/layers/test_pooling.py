"""Pools at a stride or densely at stride 1: the strided forms unchanged, the dense ones
size-keeping, dilated pools equal to their definitions, and exportable to ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightnets.layers.pooling import DilatedAvgPool2d, DilatedMaxPool2d, avg_pool, max_pool


def test_strided_and_already_dense_pools_are_unchanged():
    pool = max_pool(3, 2, 1, ceil_mode=True)
    assert isinstance(pool, nn.MaxPool2d) and (pool.kernel_size, pool.stride, pool.padding,
                                               pool.ceil_mode) == (3, 2, 1, True)
    assert str(max_pool(3, 1, 1, ceil_mode=True)) == str(nn.MaxPool2d(3, 1, 1, ceil_mode=True))
    assert str(avg_pool(3, 2, 1)) == str(nn.AvgPool2d(3, 2, 1))


@pytest.mark.parametrize("kernel, padding", [(2, 0), (3, 0), (3, 1)])
@pytest.mark.parametrize("dilation", [1, 2, 4])
def test_dense_pools_keep_the_size(kernel, padding, dilation):
    x = torch.randn(1, 2, 11, 8)
    for pool in (max_pool(kernel, 1, padding, dilation), avg_pool(kernel, 1, padding, dilation)):
        assert pool(x).shape == x.shape, pool
    if kernel == 2:  # DeepLab v1's pool4 / pool5: 2x2/2 at stride 1 is 3x3/1
        assert max_pool(kernel, 1, padding, dilation)(x).shape == x.shape


def test_dilated_pools_equal_their_definition():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 9, 10) - 2  # mostly negative: a zero-padded max would differ
    # max over the 3x3 inputs 2 apart, borders seeing only real inputs
    padded = F.pad(x, (2, 2, 2, 2), value=float("-inf"))
    expected = padded.unfold(2, 5, 1)[..., ::2].unfold(3, 5, 1)[..., ::2].amax((-1, -2))
    torch.testing.assert_close(DilatedMaxPool2d(3, 2)(x), expected)
    assert isinstance(max_pool(3, 1, dilation=2), DilatedMaxPool2d)
    # mean of the same inputs, zero padding counted: a depthwise conv with weights 1/9
    weight = torch.full((3, 1, 3, 3), 1 / 9)
    torch.testing.assert_close(DilatedAvgPool2d(3, 2)(x),
                               F.conv2d(x, weight, padding=2, dilation=2, groups=3))
    torch.testing.assert_close(DilatedAvgPool2d(3, 1)(x), F.avg_pool2d(x, 3, 1, 1))
    with pytest.raises(ValueError, match="odd kernel"):
        DilatedAvgPool2d(2, 2)


def test_dilated_pools_export_to_onnx(tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    model = nn.Sequential(DilatedMaxPool2d(3, 2), DilatedAvgPool2d(3, 4)).eval()
    x = torch.randn(1, 4, 12, 9)
    path = tmp_path / "pools.onnx"
    torch.onnx.export(model, (x,), str(path), dynamo=True, input_names=["input"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    np.testing.assert_allclose(got, model(x).numpy(), rtol=1e-5, atol=1e-5)
