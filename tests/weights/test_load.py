"""Loading files: every format and wrapper, the source's preprocessing, a new classifier, adapted
input channels (as timm adapts them), and clear refusals: keys with no place, another
architecture, a truncated file, a pickle that would run code."""

from __future__ import annotations

import json
import warnings

import pytest
import torch
import torchvision

import lightnets
from lightnets import registry
from lightnets.checkpoint import Checkpoint, save_checkpoint
from lightnets.testing import randomise
from lightnets.weights import PretrainedNote, adapt_input_conv, imagenet_categories

timm = pytest.importorskip("timm")
X = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


@pytest.fixture(scope="module")
def resnet18():
    """torchvision's ResNet-18 with non-trivial BatchNorm, in eval mode."""
    torch.manual_seed(0)
    return randomise(torchvision.models.resnet18().eval(), weights="keep")


@pytest.fixture(scope="module")
def resnet18_file(resnet18, tmp_path_factory):
    path = tmp_path_factory.mktemp("tv") / "resnet18-f37072fd.pth"  # a torchvision release name
    torch.save(resnet18.state_dict(), path)
    return path


def load(name, path, **kwargs):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = lightnets.create_model(name, checkpoint_path=path, **kwargs).eval()
    return model, [str(w.message) for w in caught if issubclass(w.category, PretrainedNote)]


def same_logits(model, reference, x=X):
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), rtol=1e-5, atol=1e-5)


def test_torchvision_release_loads_with_its_preprocessing_and_names(resnet18, resnet18_file):
    model, notes = load("resnet18", resnet18_file)
    same_logits(model, resnet18)
    info = model.pretrained
    assert notes == [] and info.source == "torchvision"  # named as the release: no doubt
    assert info.preprocess == {"input_size": 224, "in_chans": 3, "resize": 256,
                               "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
                               "interpolation": "bilinear"}
    assert info.class_names[:2] == ["tench", "goldfish"] and len(info.class_names) == 1000
    assert info.class_names == imagenet_categories()
    assert lightnets.create_model is registry.create_model  # one function, both names


def test_training_wrappers_and_prefixes_are_unwrapped(resnet18, tmp_path):
    state = resnet18.state_dict()
    wrapped = {"epoch": 3, "state_dict": {f"module._orig_mod.{k}": v for k, v in state.items()}}
    torch.save(wrapped, tmp_path / "ddp.pth")
    model, notes = load("resnet18", tmp_path / "ddp.pth")
    same_logits(model, resnet18)
    assert any("fits both torchvision and timm" in note for note in notes)  # a bare name
    # torchvision's files from before 2018 have no step counters; half precision is widened
    old = {k: v.half() for k, v in state.items() if not k.endswith("num_batches_tracked")}
    torch.save(old, tmp_path / "old.pth")
    model, _ = load("resnet18", tmp_path / "old.pth", source="torchvision")
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.no_grad():
        assert (model(X) - resnet18(X)).abs().max() < 0.05


def test_timm_formats_and_a_hugging_face_folder(tmp_path):
    torch.manual_seed(0)
    peer = timm.create_model("mobilenetv2_035").eval()
    timm.models.save_for_hf(peer, str(tmp_path / "hf"), safe_serialization="both")
    assert {p.name for p in (tmp_path / "hf").iterdir()} >= {"config.json", "model.safetensors",
                                                              "pytorch_model.bin"}
    folder, notes = load("mobilenet_v2_x0_35", tmp_path / "hf")
    same_logits(folder, peer)
    assert folder.pretrained.source == "timm" and notes == []
    config = json.loads((tmp_path / "hf" / "config.json").read_text())["pretrained_cfg"]
    assert folder.pretrained.preprocess["interpolation"] == config["interpolation"] == "bicubic"
    assert folder.pretrained.preprocess["resize"] == int(224 / config["crop_pct"])
    named, _ = load(None, tmp_path / "hf")  # the folder names its model
    assert named.pretrained.model_name == "mobilenet_v2_x0_35"
    for weights in ("model.safetensors", "pytorch_model.bin"):  # bare files: timm by suffix
        model, notes = load("mobilenet_v2_x0_35", tmp_path / "hf" / weights)
        same_logits(model, peer)
        assert model.pretrained.source == "timm"
    with pytest.raises(ValueError, match="holds timm's mobilenetv2_035; lightnets' resnet18 is "
                       "the twin of timm's resnet18"):
        load("resnet18", tmp_path / "hf")


def test_new_classifier_and_one_input_channel_as_timm_adapts_it(resnet18, resnet18_file):
    model, notes = load("resnet18", resnet18_file, num_classes=10, in_chans=1)
    assert "classifier replaced: 1000 -> 10 classes, new weights" in notes
    assert "first convolution adapted from 3 to 1 input channel(s)" in notes
    assert model.pretrained.class_names is None and model.pretrained.preprocess["in_chans"] == 1
    assert model.pretrained.model_args == {"num_classes": 10, "in_chans": 1}
    kernel = resnet18.conv1.weight.detach()
    torch.testing.assert_close(model.stem.conv.weight, timm.models.adapt_input_conv(1, kernel))
    torch.testing.assert_close(adapt_input_conv(kernel, 5), timm.models.adapt_input_conv(5, kernel))
    # the trunk computes torchvision's features of a grey image repeated over RGB
    grey = X[:, :1]
    with torch.no_grad():
        reference = resnet18.avgpool(resnet18.layer4(resnet18.layer3(resnet18.layer2(
            resnet18.layer1(resnet18.maxpool(resnet18.relu(resnet18.bn1(resnet18.conv1(
                grey.expand(-1, 3, -1, -1))))))))))
        ours = model.global_pool(model.forward_features(grey))
    torch.testing.assert_close(ours, reference.flatten(1), rtol=1e-5, atol=1e-5)
    assert model(grey).shape == (2, 10)
    assert not any(p.is_meta for p in model.parameters())


def test_lightnets_checkpoints_in_both_formats(tmp_path):
    torch.manual_seed(0)
    model = lightnets.create_model("shufflenet_v2_x0_5", num_classes=4).eval()
    checkpoint = Checkpoint("shufflenet_v2_x0_5", {"num_classes": 4}, model.state_dict(),
                            preprocess={"input_size": 64, "in_chans": 3, "resize": 72,
                                        "mean": [0.5] * 3, "std": [0.5] * 3},
                            class_names=list("abcd"))
    for suffix in (".pt", ".safetensors"):
        path = save_checkpoint(checkpoint, tmp_path / f"ckpt{suffix}")
        loaded, notes = load("shufflenet_v2_x0_5", path)
        same_logits(loaded, model)
        assert loaded.pretrained.class_names == list("abcd") and notes == []
    with pytest.raises(ValueError, match="is a lightnets checkpoint, not a timm file"):
        load(None, path, source="timm")
    with pytest.raises(ValueError, match="holds a shufflenet_v2_x0_5, not a resnet18"):
        load("resnet18", path)


def test_unmapped_keys_are_an_error_listing_them_unless_not_strict(resnet18, tmp_path):
    state = {**resnet18.state_dict(), "projector.weight": torch.zeros(8, 512)}
    torch.save(state, tmp_path / "extra.pth")
    with pytest.raises(ValueError, match=r"1 tensor\(s\) with no place in the model "
                       r"\(projector.weight\)") as error:
        load("resnet18", tmp_path / "extra.pth", source="torchvision")
    assert "\n" not in str(error.value)
    model, notes = load("resnet18", tmp_path / "extra.pth", source="torchvision", strict=False)
    same_logits(model, resnet18)
    assert any("strict=False" in note and "projector.weight" in note for note in notes)


def test_a_file_of_another_architecture_is_refused(tmp_path):
    with torch.device("meta"):
        resnet34 = torchvision.models.resnet34()
    torch.save(resnet34.to_empty(device="cpu").state_dict(), tmp_path / "resnet34.pth")
    with pytest.raises(ValueError, match=r"does not fit lightnets' resnet18 .*layer1\.2\."):
        load("resnet18", tmp_path / "resnet34.pth")
    with pytest.raises(ValueError, match=r"of the wrong shape \(layer1\.0\.conv1\.conv\.weight: "
                       r"\(64, 64, 3, 3\) vs \(256, 16, 3, 3\)"):
        load("resnet34", tmp_path / "resnet34.pth", groups=4)  # grouped: another network


def test_truncated_files_and_code_payloads(resnet18_file, tmp_path):
    data = resnet18_file.read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="cannot read checkpoint .*cut.pth"):
        load("resnet18", tmp_path / "cut.pth")
    (tmp_path / "cut.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{")
    with pytest.raises(ValueError, match="cannot read checkpoint .*cut.safetensors"):
        load("resnet18", tmp_path / "cut.safetensors")
    marker = tmp_path / "ran"
    torch.save({"state_dict": Payload(str(marker))}, tmp_path / "payload.pth")
    with pytest.raises(ValueError, match="cannot read checkpoint .*payload.pth"):
        load("resnet18", tmp_path / "payload.pth")
    assert not marker.exists()  # the unpickler refused it before running anything
    with pytest.raises(ValueError, match="not found"):
        load("resnet18", tmp_path / "missing.pth")


class Payload:
    """Pickles as a call of ``exec``: what a malicious checkpoint would carry."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('ran')",)
