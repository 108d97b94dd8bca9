"""torchvision's segmentation files through ``create_model(name, checkpoint_path=...)`` and
``--weights``: all six (FCN, DeepLabV3, LR-ASPP) with torchvision's outputs (randomised weights
and BatchNorm statistics), their auxiliary heads, preprocessing and VOC class names, and
fine-tuning to another class count (the heads' final layers new, everything else kept)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.testing import randomise
from lightnets.weights import PretrainedNote

# LR-ASPP runs in every pass (the DeepLabV3 head on MobileNetV3 also in the test of a file
# without its auxiliary head); the others, seconds each, with the slow tests
HEAVY = ("deeplabv3_mobilenet_v3_large", "fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50",
         "deeplabv3_resnet101")
SIX = ["lraspp_mobilenet_v3_large", *(pytest.param(name, marks=pytest.mark.slow)
                                      for name in HEAVY)]
IMAGES = torch.rand(2, 3, 67, 75, generator=torch.Generator().manual_seed(0))  # odd sizes


def release_name(name: str) -> str:
    """The file name of torchvision's VOC release of segmenter ``name``."""
    return Path(torchvision.models.get_model_weights(name).DEFAULT.url).name


def torchvision_file(name: str, folder: Path, aux: bool = True
                     ) -> tuple[Path, dict[str, torch.Tensor]]:
    """torchvision's ``name`` (with its auxiliary head where it has one and ``aux``) with random
    weights and BatchNorm statistics measured on the images, saved under its release's file
    name, and its outputs on them in training-free eval mode."""
    kwargs = {} if name.startswith("lraspp") else {"aux_loss": aux}
    model = torchvision.models.get_model(name, weights=None, weights_backbone=None, **kwargs)
    with torch.no_grad():
        randomise(model, IMAGES, weights="he")
        expected = dict(model.eval()(IMAGES))
    path = folder / release_name(name)
    torch.save(model.state_dict(), path)
    return path, expected


def load(name: str, path: Path, **kwargs) -> tuple[nn.Module, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = lightnets.create_model(name, checkpoint_path=path, **kwargs).eval()
    return model, [str(w.message) for w in caught if issubclass(w.category, PretrainedNote)]


def relative(ours: torch.Tensor, theirs: torch.Tensor) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


@pytest.mark.parametrize("name", SIX)
def test_torchvision_files_give_torchvisions_outputs(name, tmp_path):
    path, expected = torchvision_file(name, tmp_path)
    model, notes = load(name, path)
    assert notes == []  # a release's name, every tensor in its place
    with torch.no_grad():
        out = model(IMAGES)
        model.training = True  # the auxiliary head's output; its layers (dropout) as in eval
        _, aux = model(IMAGES, return_aux=True)
    assert expected["out"].std() > 0 and out.argmax(1).unique().numel() > 1
    assert relative(out, expected["out"]) < 1e-5
    assert ("aux" in expected) == bool(aux)
    if aux:
        assert relative(aux[0], expected["aux"]) < 1e-5
    info = model.pretrained
    assert info.source == "torchvision" and info.model_args["num_classes"] == 21
    assert info.class_names[:3] == ["background", "aeroplane", "bicycle"]
    assert len(info.class_names) == 21 and info.class_names[-1] == "tvmonitor"
    assert info.preprocess["resize"] == [520, 520] and info.preprocess["input_size"] == 520
    assert info.preprocess["mean"] == pytest.approx([0.485, 0.456, 0.406])


def test_a_file_without_the_auxiliary_head_builds_none(tmp_path):
    name = "deeplabv3_mobilenet_v3_large"
    path, expected = torchvision_file(name, tmp_path, aux=False)
    model, notes = load(name, path)
    assert notes == [] and model.aux_head is None
    assert model.pretrained.model_args["aux_loss"] is False
    with torch.no_grad():
        assert relative(model(IMAGES), expected["out"]) < 1e-5


def test_fine_tuning_to_another_class_count_keeps_the_backbone(tmp_path):
    name = "lraspp_mobilenet_v3_large"
    path, _ = torchvision_file(name, tmp_path)
    source = torch.load(path, weights_only=True)
    model, notes = load(name, path, num_classes=5)
    assert notes == ["classifier replaced: 21 -> 5 classes, new weights"]
    assert model.pretrained.class_names is None and model.num_classes == 5
    ours = model.state_dict()
    assert ours["head.low_classifier.weight"].shape[0] == 5
    assert ours["head.high_classifier.weight"].shape[0] == 5
    # the trunk and the rest of the head are the file's
    assert torch.equal(ours["backbone.features.0.conv.weight"], source["backbone.0.0.weight"])
    assert torch.equal(ours["head.cbr.conv.weight"], source["classifier.cbr.0.weight"])
    with torch.no_grad():
        assert model(IMAGES).shape == (2, 5, 67, 75)


@pytest.mark.slow
def test_weights_on_the_command_line(tmp_path, run_cli):
    pytest.importorskip("sklearn")  # digits-seg
    name = "lraspp_mobilenet_v3_large"
    path, _ = torchvision_file(name, tmp_path)
    status, _, err = run_cli("eval", "--model", name, "--weights", str(path), "--data",
                             "digits-seg")
    # the file loads (its 21 VOC classes), and the digits' 11 are refused in one line
    assert status == 2 and len(err.strip().splitlines()) == 1
    assert "predicts 21 classes" in err and "has 11" in err
