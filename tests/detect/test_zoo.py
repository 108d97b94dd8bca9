"""The registered detectors: interface, counts beside torchvision's published numbers,
torchvision's parameter shapes key for key, and its function with its weights."""

from __future__ import annotations

import pytest
import torch
import torchvision

import lightnets
from lightnets.cli import main
from lightnets.detect.zoo import ANY_BACKBONE, LIGHT, torchvision_keys
from lightnets.profile import count_complexity
from lightnets.profile.model_info import golden, reference
from lightnets.registry import meta_model, peers_of, task_of
from lightnets.testing import randomise
from lightnets.weights.mapping import rename
from tests.conftest import assert_takes_any_backbone, zoo_params

DETECTORS = zoo_params(task="detection")
TORCHVISION = ["ssdlite320_mobilenet_v3_large", "fasterrcnn_mobilenet_v3_large_fpn",
               "fcos_resnet50_fpn", "retinanet_resnet50_fpn"]


def test_the_registry_lists_detectors(capsys):
    names = lightnets.list_models(task="detection")
    assert set(TORCHVISION) | set(LIGHT) | set(ANY_BACKBONE) == set(names)
    assert {"fcos_shufflenet_v2_x1_0", "fcos_mobilenet_v2", "fcos_squeezenet1_1",
            "fcos_ghostnet_x1_0", "ssdlite_mobilenet_v2"} <= set(names)
    assert main(["list", "--task", "detection", "fcos*"]) == 0
    out = capsys.readouterr().out
    assert "fcos_shufflenet_v2_x1_0" in out and "detection" in out and "3x320x320" in out
    assert "ssdlite" not in out
    assert main(["list", "--markdown", "--task", "detection", "ssdlite320*"]) == 0
    assert "published COCO box mAP" in (out := capsys.readouterr().out) and "| 21.3 |" in out


def test_the_architectures_by_name_take_any_backbone():
    assert_takes_any_backbone("fcos", "fcos_squeezenet1_1", "squeezenet1_1")
    assert_takes_any_backbone("retinanet", "retinanet_mobilenet_v2", "mobilenet_v2_x1_0")
    assert meta_model("fasterrcnn", backbone="ghostnet_x1_0").family == "Faster R-CNN (GhostNet)"
    assert meta_model("ssdlite").family == "SSDLite (MobileNetV2)"


@pytest.mark.parametrize("name", DETECTORS)
def test_interface_counts_and_published_numbers(name):
    model = meta_model(name)
    assert model.task == task_of(name) == "detection" and model.num_classes == 91
    assert model.family and model.paper and model.in_chans == 3
    size = 800 if name in TORCHVISION[1:] else 320
    assert model.default_input_size == (3, size, size)
    counts = count_complexity(model)
    assert {"params": counts.params, "macs": counts.macs} == golden(name), (
        "architecture changed: update with `python -m lightnets.profile.model_info`")
    ref = reference(name)
    if name not in TORCHVISION:
        assert not ref and not peers_of(name), "only torchvision publishes these models"
        return
    assert peers_of(name)["torchvision"].name == name and ref["box_map"] > 20
    published_form = meta_model(name, frozen_bn=ref["frozen_bn"])
    assert sum(p.numel() for p in published_form.parameters()) == ref["params"]
    if ref["macs"] is not None:
        assert counts.macs == pytest.approx(ref["macs"], rel=ref["macs_tol"])
    else:  # torchvision's GFLOPS leave out the RoI heads: count them on no proposal
        model.rpn._post_nms_top_n["testing"] = 0
        assert count_complexity(model).macs == pytest.approx(ref["macs_without_roi_heads"],
                                                             rel=ref["macs_tol"])


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_state_dicts_map_key_for_key(name):
    with torch.device("meta"):
        theirs = torchvision.models.get_model(name, weights=None, weights_backbone=None)
        ours = lightnets.create_model(name)
    mapped = {key: tensor.shape for key, tensor in
              rename(theirs.state_dict(), torchvision_keys(name)).items()}
    assert mapped == {key: tensor.shape for key, tensor in ours.state_dict().items()}
    assert [p.shape for p in theirs.parameters()] == [p.shape for p in ours.parameters()]


def twins(name: str, he_scale: bool = True,
          **kwargs) -> tuple[torch.nn.Module, torch.nn.Module, list[torch.Tensor]]:
    """torchvision's detector with random weights and BatchNorm statistics (at He scale with
    statistics measured on the images, or N(0, 0.1)), and ours loaded from its state dict
    through the renaming rules; images to run them on (two: BatchNorm statistics of SSDLite's
    last, 1x1 map need more than one value)."""
    torch.manual_seed(0)
    images = [torch.rand(3, 112, 128), torch.rand(3, 128, 96)]
    theirs = torchvision.models.get_model(name, weights=None, weights_backbone=None, **kwargs)
    with torch.no_grad():
        randomise(theirs, images, weights="he") if he_scale else randomise(theirs)
    ours = lightnets.create_model(name, **kwargs)
    ours.load_state_dict(rename(theirs.state_dict(), torchvision_keys(name)))
    return ours.eval(), theirs.eval(), images


def assert_same_detections(ours, theirs, images):
    with torch.no_grad():
        found, expected = ours(images), theirs(images)
    assert all(len(image["scores"]) > 1 and image["scores"].std() > 0 for image in expected)
    for ours_image, their_image in zip(found, expected):
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(ours_image[key], their_image[key], rtol=1e-4, atol=1e-4)


def test_ssdlite320_computes_torchvisions_function(one_thread):
    ours, theirs, images = twins("ssdlite320_mobilenet_v3_large")
    batch = ours.transform(images)[0].tensors
    with torch.no_grad():
        raw = ours.forward_raw(batch)
        expected = theirs.head(list(theirs.backbone(batch).values()))
    for key in expected:
        torch.testing.assert_close(raw[key], expected[key], rtol=1e-4, atol=1e-4)
    assert_same_detections(ours, theirs, images)


def test_fasterrcnn_mobilenet_computes_torchvisions_function(one_thread):
    # (at He scale the random box regression leaves no box whole: N(0, 0.1) weights instead)
    ours, theirs, images = twins("fasterrcnn_mobilenet_v3_large_fpn", False, min_size=128,
                                 max_size=128, rpn_post_nms_top_n_test=100,
                                 rpn_score_thresh=0.0, box_score_thresh=0.0)
    assert_same_detections(ours, theirs, images)
