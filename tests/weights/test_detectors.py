"""torchvision's detector files through ``create_model(name, checkpoint_path=...)``: the same
boxes, scores and labels as torchvision's model, in the published form (frozen BatchNorm) when
the file is; new class layers for another class count; COCO's names; clear refusals."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn
from torchvision.ops.misc import FrozenBatchNorm2d

import lightnets
from lightnets.testing import randomise
from lightnets.weights import PretrainedNote
from lightnets.weights.layout import layout_of

SMALL = {"min_size": 128, "max_size": 128}  # both models: a small canvas keeps the tests fast
# per detector: the arguments (both models) that leave scored boxes on random weights, whether
# torchvision publishes it with frozen BatchNorm, and the random weights that leave boxes whole
# and scores apart: "he" (He scale), "trunk" (He scale but the head as torchvision initialises
# it: RetinaNet's four unnormalised head convolutions saturate every score at He scale) or
# "small" (N(0, 0.1): Faster R-CNN's box regression)
CASES = {
    "ssdlite320_mobilenet_v3_large": ({}, False, "he"),
    "fasterrcnn_mobilenet_v3_large_fpn": ({**SMALL, "rpn_post_nms_top_n_test": 100,
                                           "rpn_score_thresh": 0.0, "box_score_thresh": 0.0},
                                          True, "small"),
    "fcos_resnet50_fpn": ({**SMALL, "score_thresh": 0.0}, True, "he"),
    "retinanet_resnet50_fpn": ({**SMALL, "score_thresh": 0.0}, True, "trunk"),
}


REPLACED = ("class layers (head.classification_head.cls_logits) replaced: 91 -> 11 classes, new "
            "weights")


def release_name(name: str) -> str:
    """The file name of torchvision's COCO release of detector ``name``."""
    return Path(torchvision.models.get_model_weights(name).DEFAULT.url).name


def freeze(module: nn.Module) -> None:
    """torchvision's published form: every BatchNorm a FrozenBatchNorm2d with its values."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            freeze(child)


def torchvision_file(name: str, folder: Path, frozen: bool = False, init: str = "he",
                     **kwargs) -> tuple[Path, list[dict[str, torch.Tensor]], list[torch.Tensor]]:
    """torchvision's ``name`` with random weights (``init``: see CASES) and BatchNorm
    statistics saved under its release's file name (with frozen BatchNorm if ``frozen``), its
    detections and the images (two: BatchNorm statistics of SSDLite's last, 1x1 map need more
    than one value)."""
    torch.manual_seed(0)
    images = [torch.rand(3, 112, 128), torch.rand(3, 128, 96)]
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None, **kwargs)
    head = {key: tensor.clone() for key, tensor in model.head.state_dict().items()
            } if init == "trunk" else {}
    with torch.no_grad():
        randomise(model, images, weights="he") if init != "small" else randomise(model)
        if head:
            model.head.load_state_dict(head)
        if frozen:
            freeze(model)
        expected = model.eval()(images)
    path = folder / release_name(name)
    torch.save(model.state_dict(), path)
    return path, expected, images


def load(name: str, path: Path, **kwargs) -> tuple[nn.Module, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = lightnets.create_model(name, checkpoint_path=path, **kwargs).eval()
    return model, [str(w.message) for w in caught if issubclass(w.category, PretrainedNote)]


@pytest.mark.parametrize("name", CASES)
def test_torchvision_files_give_torchvisions_detections(name, tmp_path):
    kwargs, published_frozen, init = CASES[name]
    path, expected, images = torchvision_file(name, tmp_path, published_frozen, init, **kwargs)
    model, notes = load(name, path, **kwargs)
    assert notes == []  # a release's name, every tensor in its place
    with torch.no_grad():
        found = model(images)
    assert all(len(image["scores"]) > 1 and image["scores"].std() > 0 for image in expected)
    for ours, theirs in zip(found, expected):
        for key in ("boxes", "scores", "labels"):
            torch.testing.assert_close(ours[key], theirs[key], rtol=1e-4, atol=1e-4)
    info = model.pretrained
    assert info.source == "torchvision" and info.model_args["num_classes"] == 91
    assert info.model_args.get("frozen_bn", False) is published_frozen
    frozen = [m for m in model.modules() if isinstance(m, FrozenBatchNorm2d)]
    trainable = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert (bool(frozen), bool(trainable)) == (published_frozen, not published_frozen)
    # COCO's names for labels 1..90 (torchvision's list starts with the background)
    assert len(info.class_names) == 90 and info.class_names[0] == "person"
    assert info.class_names[-1] == "toothbrush"
    # the detection data's letterbox to the detector's input size
    assert info.preprocess["letterbox"] is True
    assert info.preprocess["input_size"] == model.default_input_size[-1]


def test_a_file_with_step_counters_loads_trainable_batchnorm(tmp_path):
    # torchvision's own random Faster R-CNN (weights=None) has trainable BatchNorm: so has ours
    name = "fasterrcnn_mobilenet_v3_large_fpn"
    kwargs = CASES[name][0]
    path, expected, images = torchvision_file(name, tmp_path, False, "small", **kwargs)
    model, _ = load(name, path, **kwargs)
    assert not model.pretrained.model_args["frozen_bn"]
    assert not any(isinstance(m, FrozenBatchNorm2d) for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(model(images)[0]["boxes"], expected[0]["boxes"],
                                   rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("name, per_class", [("ssdlite320_mobilenet_v3_large", 6),
                                             ("retinanet_resnet50_fpn", 9),
                                             ("fcos_resnet50_fpn", 1)])
def test_class_layers_are_multiples_of_the_class_count(name, per_class):
    layout = layout_of(name)
    assert set(layout.per_class.values()) == {per_class}
    at_11 = layout.at(11, 3)
    assert all(at_11[key][0] == 11 * per_class for key in layout.classifier)
    state = {key: torch.empty(shape, device="meta") for key, shape in at_11.items()}
    assert layout.classes_and_chans(state) == (11, 3)


def test_faster_rcnn_class_layers():
    layout = layout_of("fasterrcnn_mobilenet_v3_large_fpn")
    assert layout.per_class == {"roi_heads.box_predictor.cls_score.weight": 1,
                                "roi_heads.box_predictor.cls_score.bias": 1,
                                "roi_heads.box_predictor.bbox_pred.weight": 4,
                                "roi_heads.box_predictor.bbox_pred.bias": 4}
    assert layout.at(11, 3)["roi_heads.box_predictor.bbox_pred.weight"][0] == 44


def test_another_class_count_replaces_the_class_layers(tmp_path):
    name = "retinanet_resnet50_fpn"
    kwargs = CASES[name][0]
    path, _, _ = torchvision_file(name, tmp_path, True, "trunk", **kwargs)
    file_state = torch.load(path, weights_only=True)
    model, notes = load(name, path, num_classes=11, **kwargs)
    assert notes == [REPLACED]
    info = model.pretrained
    assert model.num_classes == 11 and info.class_names is None
    assert info.model_args["num_classes"] == 11 and info.model_args["frozen_bn"]
    state = model.state_dict()
    assert state["head.classification_head.cls_logits.weight"].shape == (9 * 11, 256, 3, 3)
    assert "head.classification_head.cls_logits.weight" not in info.loaded
    # the class layers initialised as torchvision's (the prior probability's bias), the rest
    # the file's
    torch.testing.assert_close(state["head.classification_head.cls_logits.bias"],
                               torch.full((99,), -4.59512), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(state["head.regression_head.bbox_reg.weight"],
                               file_state["head.regression_head.bbox_reg.weight"])
    with torch.no_grad():
        [found] = model([torch.rand(3, 96, 96)])
    assert found["labels"].max() < 11


def test_fcos_at_eleven_classes_from_the_release(tmp_path):
    name = "fcos_resnet50_fpn"
    kwargs = CASES[name][0]
    path, _, _ = torchvision_file(name, tmp_path, True, **kwargs)
    model, notes = load(name, path, num_classes=11, frozen_bn=True, **kwargs)  # as the file
    assert notes == [REPLACED] and model.pretrained.model_args["frozen_bn"]
    assert model.state_dict()["head.classification_head.cls_logits.weight"].shape[0] == 11


def test_other_file_names_assume_the_default_release(tmp_path):
    name = "ssdlite320_mobilenet_v3_large"
    path, _, _ = torchvision_file(name, tmp_path)
    renamed = path.rename(tmp_path / "my_detector.pth")
    model, notes = load(name, renamed)
    assert len(notes) == 1 and "none of torchvision's" in notes[0] and "class names" in notes[0]
    assert len(model.pretrained.class_names) == 90


def test_a_classifier_file_is_refused_in_one_line(tmp_path):
    path = tmp_path / "resnet50.pth"
    with torch.device("meta"):
        classifier = torchvision.models.resnet50()
    torch.save({k: torch.zeros(v.shape, dtype=v.dtype) for k, v in
                classifier.state_dict().items()}, path)
    with pytest.raises(ValueError, match="does not fit lightnets' fcos_resnet50_fpn") as error:
        lightnets.create_model("fcos_resnet50_fpn", checkpoint_path=path)
    assert "\n" not in str(error.value) and "missing" in str(error.value)


def test_not_strict_loads_what_fits_and_says_so(tmp_path):
    name = "ssdlite320_mobilenet_v3_large"
    path, _, _ = torchvision_file(name, tmp_path)
    state = torch.load(path, weights_only=True)
    del state["head.regression_head.module_list.0.1.weight"]
    torch.save(state, path)
    with pytest.raises(ValueError, match="1 of the model's tensor"):
        lightnets.create_model(name, checkpoint_path=path)
    model, notes = load(name, path, strict=False)
    assert any(note.startswith("strict=False") for note in notes)
    assert "head.regression_head.module_list.0.1.weight" not in model.pretrained.loaded
    assert len(model.pretrained.loaded) == len(state)


def test_convert_refuses_detectors_in_one_line(tmp_path, run_cli):
    name = "ssdlite320_mobilenet_v3_large"
    path, _, _ = torchvision_file(name, tmp_path)
    status, _, err = run_cli("convert", str(path), "--model", name, "--output",
                             str(tmp_path / "out.safetensors"))
    assert status == 2 and "is a detector" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out.safetensors").exists()


def test_eval_on_other_data_names_both_class_counts(tmp_path, run_cli):
    pytest.importorskip("sklearn")  # the digits-det images
    name = "ssdlite320_mobilenet_v3_large"
    path, _, _ = torchvision_file(name, tmp_path)
    status, _, err = run_cli("eval", "--model", name, "--weights", str(path), "--data",
                             "digits-det")
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "predicts 90 object classes (91 with the background)" in err and "has 10" in err
