"""A classifier's weights for a segmenter (issue 30, item 9): a torchvision or timm file, or a
lightnets classifier checkpoint, initialises the segmenter's backbone, the head starts new, and
one line says so; a file that fits neither is refused in one line that never calls a timm
file a lightnets file."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torch import nn

import lightnets
from lightnets.checkpoint import Checkpoint, save_checkpoint
from lightnets.weights import PretrainedNote

timm = pytest.importorskip("timm")


def load(name: str, path: Path, **kwargs) -> tuple[nn.Module, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = lightnets.create_model(name, checkpoint_path=path, **kwargs).eval()
    return model, [str(w.message) for w in caught if issubclass(w.category, PretrainedNote)]


def backbone_from(model: nn.Module, state: dict[str, torch.Tensor], rename) -> None:
    """Every backbone tensor of ``model`` is the file's (``rename``: our key -> the file's)."""
    ours = model.state_dict()
    backbone = [key for key in ours if key.startswith("backbone.")]
    assert backbone and all(torch.equal(ours[key], state[rename(key)].float())
                            for key in backbone if not key.endswith("num_batches_tracked"))


def test_a_torchvision_classifier_initialises_the_backbone(tmp_path):
    torch.manual_seed(0)
    classifier = torchvision.models.mobilenet_v3_small()
    path = tmp_path / "mobilenet_v3_small.pth"
    torch.save(classifier.state_dict(), path)
    model, notes = load("lraspp_mobilenet_v3_small", path, num_classes=3)
    said = [note for note in notes if "initialises the backbone" in note]
    assert said == [f"{path.name} holds torchvision's mobilenet_v3_small classifier: it "
                    "initialises the backbone of lraspp_mobilenet_v3_small, whose other 11 "
                    "tensor(s) (the head) start new"]
    assert model.pretrained.source == "torchvision" and model.pretrained.class_names is None
    assert all(key.startswith("backbone.") for key in model.pretrained.loaded)
    assert model.pretrained.preprocess["resize"] == [224, 224]  # the whole image, its mask too
    ours = model.state_dict()
    torch.testing.assert_close(ours["backbone.features.0.conv.weight"],
                               classifier.features[0][0].weight)
    torch.testing.assert_close(ours["backbone.features.1.depthwise.norm.running_var"],
                               classifier.features[1].block[0][1].running_var)
    with torch.no_grad():
        assert model(torch.rand(1, 3, 64, 64)).shape == (1, 3, 64, 64)


def test_a_timm_file_is_named_timms_never_lightnets(tmp_path):
    torch.manual_seed(0)
    peer = timm.create_model("mobilenetv2_100")
    path = tmp_path / "model.safetensors"
    save_file({k: v.contiguous() for k, v in peer.state_dict().items()}, str(path))
    model, notes = load("lraspp_mobilenet_v2", path)
    assert model.pretrained.source == "timm"
    assert any(note.startswith("model.safetensors holds timm's mobilenet_v2_x1_0 classifier")
               for note in notes)
    assert not any("lightnets file" in note for note in notes)
    ours = model.state_dict()
    torch.testing.assert_close(ours["backbone.features.0.conv.weight"], peer.conv_stem.weight)
    torch.testing.assert_close(ours["backbone.features.0.norm.running_mean"], peer.bn1.running_mean)


def test_a_lightnets_classifier_checkpoint(tmp_path):
    torch.manual_seed(0)
    classifier = lightnets.create_model("mobilenet_v3_small", num_classes=4)
    path = save_checkpoint(Checkpoint(
        "mobilenet_v3_small", {"num_classes": 4}, classifier.state_dict(),
        preprocess={"input_size": 96, "in_chans": 3, "resize": 110, "mean": [0.5] * 3,
                    "std": [0.25] * 3}, class_names=list("abcd")), tmp_path / "cls.pt")
    model, notes = load("lraspp_mobilenet_v3_small", path, num_classes=2)
    assert any(note.startswith("cls.pt holds lightnets' mobilenet_v3_small classifier")
               for note in notes)
    backbone_from(model, classifier.state_dict(), lambda key: key[len("backbone."):])
    assert model.pretrained.preprocess["mean"] == [0.5] * 3
    assert model.pretrained.preprocess["resize"] == [96, 96]


def test_a_file_that_fits_neither_is_refused_in_one_line(tmp_path):
    path = tmp_path / "resnet18.pth"
    torch.save(torchvision.models.resnet18().state_dict(), path)
    with pytest.raises(ValueError, match="does not fit lightnets' lraspp_mobilenet_v3_small") \
            as error:
        lightnets.create_model("lraspp_mobilenet_v3_small", checkpoint_path=path)
    message = str(error.value)
    assert "\n" not in message and "read as a lightnets file" not in message
    # a segmenter's own lightnets checkpoint under another segmenter's name is refused too
    with pytest.raises(ValueError):
        lightnets.create_model("lraspp_mobilenet_v3_small",
                               checkpoint_path=save_checkpoint(Checkpoint(
                                   "lraspp_mobilenet_v2", {"num_classes": 3},
                                   lightnets.create_model("lraspp_mobilenet_v2",
                                                          num_classes=3).state_dict()),
                                   tmp_path / "seg.pt"))


@pytest.mark.slow
def test_train_with_a_classifiers_weights(tmp_path, run_cli):
    pytest.importorskip("sklearn")  # digits-seg
    path = tmp_path / "mobilenet_v3_small.pth"
    torch.save(torchvision.models.mobilenet_v3_small().state_dict(), path)
    status, _, err = run_cli(
        "train", "--model", "lraspp_mobilenet_v3_small", "--data", "digits-seg", "--epochs", "1",
        "--limit-train-batches", "1", "--limit-val-batches", "1", "--batch-size", "2",
        "--input-size", "64", "--pretrained", str(path), "--loss", "ce+dice", "--runs-dir",
        str(tmp_path / "runs"), "--name", "seg", "--no-progress")
    assert status == 0, err
    assert "initialises the backbone of lraspp_mobilenet_v3_small" in err
    config = json.loads((tmp_path / "runs" / "seg" / "config.json").read_text())
    assert config["loss"] == "ce+dice" and config["pretrained"] == str(path)
