"""``create_segmenter``: any head on any backbone, the stages and rates it picks, the auxiliary
output mechanism, torchvision's function for its models, and one-line errors."""

from __future__ import annotations

import pytest
import torch

import lightnets
from lightnets.layers.aspp import ASPP
from lightnets.segment import create_segmenter
from lightnets.testing import peer_twins
from tests.conftest import check_aux_outputs


@pytest.mark.parametrize("head, backbone, output_stride", [
    ("fcn", "vgg11", 8), ("deeplabv3", "inception_v3", 16), ("deeplabv3plus", "ghostnet_x1_0", 8),
    ("lraspp", "squeezenet1_1", 16), ("deeplabv3", "xception", 32)])
def test_any_head_on_any_backbone(head, backbone, output_stride):
    with torch.device("meta"):
        model = create_segmenter(head, backbone, num_classes=5, output_stride=output_stride,
                                 aux_loss=True).eval()
        x = torch.empty(2, 3, 97, 131)
        assert model(x).shape == (2, 5, 97, 131)
        logits, aux = model.train()(x, return_aux=True)
    assert logits.shape == aux[0].shape == (2, 5, 97, 131)
    assert model.backbone.reductions[-2] <= output_stride  # the head's map is at most that coarse
    assert model.task == "segmentation" and model.output_stride == output_stride


def test_default_stages_rates_and_torchvision_choices():
    with torch.device("meta"):
        plus = lightnets.create_model("deeplabv3plus_resnet50")
        plus8 = lightnets.create_model("deeplabv3plus_resnet50", output_stride=8)
        lite = lightnets.create_model("lraspp_mobilenet_v2")
        fcn = lightnets.create_model("fcn_resnet50")
        mobile = lightnets.create_model("deeplabv3_mobilenet_v3_large")
    assert plus.backbone.taps == ["layer1", "layer4"] and plus.backbone.reductions == [4, 16]
    assert plus.head.aspp.rates == (6, 12, 18) and plus8.head.aspp.rates == (12, 24, 36)
    assert lite.backbone.taps == ["features.6", "features.18"]
    assert lite.backbone.reductions == [8, 16]
    assert fcn.backbone.taps == ["layer4", "layer3"] and fcn.backbone.reductions == [8, 8]
    assert fcn.aux_loss_weight == 0.5 and plus.aux_loss_weight == 0.0
    # torchvision's: the first block at stride 8 feeds the auxiliary head; 12/24/36 at 16
    assert mobile.backbone.taps == ["features.16", "features.4"]
    assert mobile.backbone.reductions == [16, 8]
    assert mobile.head.aspp.rates == (12, 24, 36)
    assert isinstance(mobile.head.aspp, ASPP)


# the ResNet pairs' parts are checked one by one (dilations: tests/models/test_resnet.py; heads:
# tests/layers/test_segmentation_heads.py; order: tests/profile/test_bench.py); all six whole:
# benchmarks/output_stride_sweep.py --torchvision
@pytest.mark.parametrize("name", ["lraspp_mobilenet_v3_large", "deeplabv3_mobilenet_v3_large"])
def test_same_function_as_torchvision_with_its_weights(name):
    ours, theirs = peer_twins(name)
    torch.manual_seed(0)
    x = torch.randn(2, 3, 67, 83)
    with torch.no_grad():
        torch.testing.assert_close(ours.eval()(x), theirs.eval()(x)["out"], rtol=1e-4,
                                   atol=1e-4)


def test_aux_output_mechanism_and_reset():
    torch.manual_seed(0)
    model = create_segmenter("deeplabv3plus", "mobilenet_v2_x0_25", num_classes=4,
                             aux_loss=True)
    x = torch.randn(2, 3, 65, 49)
    check_aux_outputs(model, x, 1, (2, 4, 65, 49))
    model.reset_classifier(7)
    assert model(x).shape == (2, 7, 65, 49) and model.num_classes == 7
    assert model.aux_head.classifier.out_channels == 7
    with pytest.raises(ValueError, match="positive integer, got True"):
        model.reset_classifier(True)


def test_errors_are_one_line():
    for call, match in [
            (lambda: create_segmenter("segnet", "resnet18"), "unknown head 'segnet'"),
            (lambda: create_segmenter("fcn", "lraspp_mobilenet_v2"), "is a segmentation model"),
            (lambda: create_segmenter("fcn", "resnet18", rates=(1, 2)), "fcn head takes no rates"),
            (lambda: create_segmenter("fcn", "resnet18", low_level=1), "reads no low-level"),
            (lambda: create_segmenter("lraspp", "resnet18", aux_level=2), "needs aux_loss=True"),
            (lambda: create_segmenter("fcn", "resnet18", num_classes=0), "positive integer"),
            (lambda: create_segmenter("fcn", "resnet18", num_classes=True), "got True"),
            (lambda: create_segmenter("fcn", "resnet18", output_stride=4), "8, 16 or 32"),
            (lambda: create_segmenter("fcn", "resnet_18"), "closest: resnet18"),
            (lambda: lightnets.create_model("fcn_resnet50", widht=2), "does not accept")]:
        with torch.device("meta"), pytest.raises(ValueError, match=match) as error:
            call()
        assert "\n" not in str(error.value)
    with torch.device("meta"):
        model = lightnets.create_model("lraspp_mobilenet_v3_small")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        model(torch.empty(1, 1, 64, 64, device="meta"))
    with pytest.raises(ValueError, match="at least 32x32"):
        model(torch.empty(1, 3, 16, 64, device="meta"))
