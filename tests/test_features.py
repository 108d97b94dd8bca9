"""Backbone use: ``create_model(name, features_only=True)`` and ``create_backbone``, the stage
maps of feature_info, at any output stride, exported to ONNX."""

import numpy as np
import pytest
import torch

import lightnets
from lightnets.features import create_backbone
from lightnets.models.base import FeatureNet


def test_backbone_returns_stage_features():
    backbone = create_backbone("mobilenet_v2_x0_5", out_indices=(1, 2, 4)).eval()
    assert isinstance(backbone, FeatureNet)
    assert backbone.channels == [16, 16, 1280] and backbone.reductions == [4, 8, 32]
    with torch.no_grad():
        features = backbone(torch.randn(2, 3, 128, 96))
    assert [f.shape for f in features] == [(2, 16, 32, 24), (2, 16, 16, 12), (2, 1280, 4, 3)]


def test_features_only_is_the_trunk_of_the_classifier():
    torch.manual_seed(0)
    model = lightnets.create_model("resnet18", num_classes=5).eval()
    features = lightnets.create_model("resnet18", features_only=True, out_indices=(3, 1)).eval()
    missing, unexpected = features.load_state_dict(model.state_dict(), strict=False)
    assert not missing  # the head and layer4 (past the deepest stage asked for) are dropped
    assert {key.split(".")[0] for key in unexpected} == {"classifier", "layer4"}
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        deep, shallow = features(x)  # in the order asked for
        assert shallow.shape == (1, 64, 16, 16)
        torch.testing.assert_close(deep, model.layer3(model.layer2(model.layer1(
            model.maxpool(model.stem(x))))))
    classifier = lightnets.create_model("googlenet").eval()  # named stages, not Sequential
    with torch.no_grad():
        trunk = classifier.forward_features(x)
        torch.testing.assert_close(classifier.to_features()(x)[-1], trunk)


def test_features_only_at_output_stride_8():
    backbone = create_backbone("shufflenet_v2_x0_5", output_stride=8)
    assert backbone.reductions == [2, 4, 8, 8, 8] and backbone.output_stride == 8
    with torch.device("meta"):
        maps = backbone.to("meta")(torch.empty(1, 3, 64, 64))
    assert [m.shape[-1] for m in maps] == [32, 16, 8, 8, 8]


def test_backbone_errors():
    with pytest.raises(ValueError, match="out of range"):
        create_backbone("mobilenet_v2_x0_5", out_indices=(7,))
    with pytest.raises(ValueError, match="needs features_only=True"):
        lightnets.create_model("mobilenet_v2_x0_5", out_indices=(1,))
    with pytest.raises(ValueError, match="segmentation model"):
        lightnets.create_model("lraspp_mobilenet_v3_small", features_only=True)
    with pytest.raises(ValueError, match="not a trunk module"):
        FeatureNet(lightnets.create_model("mobilenet_v2_x0_5"), ["classifier"])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        create_backbone("mobilenet_v2_x0_5")(torch.randn(1, 1, 64, 64))


def test_module_name_taps_are_measured():
    features = FeatureNet(lightnets.create_model("mobilenet_v3_large", output_stride=16),
                          ["features.4", 4])
    assert features.feature_info == [
        {"num_chs": 40, "reduction": 8, "module": "features.4"},
        {"num_chs": 960, "reduction": 16, "module": "features.16"}]


@pytest.mark.parametrize("name, output_stride", [("mobilenet_v2_x0_25", 8),
                                                 ("shufflenet_v1_g3_x0_25", 8)])
def test_features_only_exports_to_onnx(name, output_stride, tmp_path):
    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = create_backbone(name, out_indices=(1, 2, 3), output_stride=output_stride).eval()
    x = torch.randn(2, 3, 64, 64)
    path = tmp_path / "features.onnx"
    batch = torch.export.Dim("batch", min=1, max=64)
    torch.onnx.export(model, (x,), str(path), dynamo=True, dynamic_shapes=({0: batch},),
                      input_names=["input"])
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x3 = torch.randn(3, 3, 64, 64)
    with torch.no_grad():
        expected = model(x3)
    got = session.run(None, {"input": x3.numpy()})
    assert len(got) == 3
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-4, atol=1e-4)
