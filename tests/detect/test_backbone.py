"""The backbone adapters: every classifier of the zoo under an FPN (shapes, strides and widths on
the meta device), SSDLite's taps, and the fine-tuning options."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

import lightnets
from lightnets.detect import fpn_backbone, ssdlite_backbone
from lightnets.detect.backbone import fpn_taps, freeze_batchnorm
from lightnets.registry import meta_model
from lightnets.testing import randomise
from tests.conftest import zoo_params


def stride_of(size: int, map_size: int) -> int:
    """The power-of-two stride of a map (valid-padding trunks lose a few pixels)."""
    return 2 ** round(math.log2(size / map_size))


@pytest.mark.parametrize("name", zoo_params())
def test_every_classifier_under_an_fpn(name):
    info = meta_model(name, num_classes=0).feature_info
    with torch.device("meta"):
        neck = fpn_backbone(name, "p6p7", out_channels=32)
        maps = neck(torch.empty(1, 3, 256, 320))
    taps = fpn_taps(info, name)
    assert neck.body.channels == [info[i]["num_chs"] for i in taps]
    assert [block[0].in_channels for block in neck.fpn.inner_blocks] == neck.body.channels
    assert list(maps) == [str(i) for i in range(len(taps))] + ["p6", "p7"]
    assert neck.out_channels == 32 and all(m.shape[:2] == (1, 32) for m in maps.values())
    strides = [stride_of(256, m.shape[2]) for m in maps.values()]
    assert strides == neck.strides == [*(info[i]["reduction"] for i in taps),
                                       2 * info[taps[-1]]["reduction"],
                                       4 * info[taps[-1]]["reduction"]]
    assert strides[:2] == [8, 16]  # C3 and C4 always; C5 where the trunk reaches stride 32


@pytest.mark.parametrize("name, first, channels", [
    ("mobilenet_v2_x1_0", "features.14.expand", [576, 1280]),  # Sandler et al. Sec. 6.2
    ("ghostnet_x1_0", None, [112, 960]),                       # not an inverted residual
    ("squeezenet1_1", None, [256, 512])])                      # ends at stride 16
def test_ssdlite_maps(name, first, channels):
    with torch.device("meta"):
        neck = ssdlite_backbone(name)
        maps = list(neck(torch.empty(2, 3, 1024, 1024)).values())
    assert neck.expansion == first
    assert neck.out_channels == [*channels, 512, 256, 256, 128]
    assert [m.shape[1] for m in maps] == neck.out_channels
    strides = [stride_of(1024, m.shape[2]) for m in maps]
    assert strides[2:] == [strides[1] * 2 ** i for i in range(1, 5)]
    assert strides[:2] == ([16, 32] if name != "squeezenet1_1" else [8, 16])


def test_fine_tuning_options():
    torch.manual_seed(0)
    neck = fpn_backbone("resnet18", trainable_layers=3, frozen_bn=True)
    learning = {name.split(".")[0] for name, p in neck.body.named_parameters() if p.requires_grad}
    frozen = {name.split(".")[0] for name, p in neck.body.named_parameters() if not p.requires_grad}
    assert learning == {"layer2", "layer3", "layer4"} and frozen == {"stem", "layer1"}
    assert not any(isinstance(m, nn.BatchNorm2d) for m in neck.body.modules())
    assert all(p.requires_grad for p in neck.fpn.parameters())
    plain = fpn_backbone("resnet18")
    bn_params = sum(m.weight.numel() * 2 for m in plain.body.modules()
                    if isinstance(m, nn.BatchNorm2d))
    assert sum(p.numel() for p in plain.parameters()) - bn_params == \
        sum(p.numel() for p in neck.parameters())
    assert all(p.requires_grad is False
               for p in fpn_backbone("resnet18", trainable_layers=0).body.parameters())


def test_frozen_batchnorm_keeps_the_function():
    torch.manual_seed(0)
    trunk = lightnets.create_model("mobilenet_v3_small", num_classes=0).eval()
    randomise(trunk, weights="keep")  # statistics that matter
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        before = trunk.forward_features(x)
        freeze_batchnorm(trunk)
        after = trunk.forward_features(x)
    torch.testing.assert_close(after, before)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in trunk.modules())
    assert sum(isinstance(m, FrozenBatchNorm2d) for m in trunk.modules()) == 34


def test_errors_are_one_line():
    for call, match in [
            (lambda: fpn_backbone("resnet18", trainable_layers=6), "from 0 to 5"),
            (lambda: fpn_backbone("lraspp_mobilenet_v2"), "is a segmentation model"),
            (lambda: fpn_backbone("resnet18", extra="p5"), "extra must be"),
            (lambda: fpn_backbone(3), "registered classifier's name"),
            (lambda: fpn_backbone(meta_model("resnet18"), backbone_args={"width_mult": 2}),
             "not to an instance")]:
        with torch.device("meta"), pytest.raises(ValueError, match=match) as error:
            call()
        assert "\n" not in str(error.value)
