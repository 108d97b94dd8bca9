"""Fine-tuning from a converted torchvision file: the new classifier learns alone while the
backbone is frozen (weights and BatchNorm statistics untouched), then everything learns; a
killed and resumed fine-tuning run ends with the weights of an uninterrupted one."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torchvision

from lightnets.checkpoint import load_checkpoint
from lightnets.cli import main
from lightnets.train import TrainConfig, train
from tests.train.conftest import tiny_config, train_killed_after_first_epoch

pytestmark = pytest.mark.slow  # three trainings


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """torchvision's MobileNetV2 at width 0.25 (random weights), converted to lightnets."""
    folder = tmp_path_factory.mktemp("pretrained")
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2(width_mult=0.25).state_dict(), folder / "tv.pth")
    assert main(["convert", str(folder / "tv.pth"), "--model", "mobilenet_v2_x0_25",
                 "--output", str(folder / "mbv2.safetensors")]) == 0
    return folder / "mbv2.safetensors"


@pytest.mark.usefixtures("one_thread")
def test_frozen_backbone_then_resume_equals_an_uninterrupted_run(converted, tmp_path,
                                                                 monkeypatch):
    config = tiny_config(tmp_path, pretrained=str(converted), freeze_backbone_epochs=1)
    train(dataclasses.replace(config, name="straight"))
    train_killed_after_first_epoch(dataclasses.replace(config, name="killed"), monkeypatch)

    source = load_checkpoint(converted).model
    frozen = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert frozen.epoch == 1 and frozen.model_args == {"num_classes": 10, "in_chans": 1}
    assert frozen.preprocess["mean"] == [pytest.approx(0.449)]  # ImageNet's, averaged to grey
    for key, tensor in frozen.model.items():
        if key.startswith("classifier."):
            assert tensor.shape[0] == 10
        elif key == "features.0.conv.weight":  # adapted to one channel: the RGB kernels summed
            torch.testing.assert_close(tensor, source[key].sum(1, keepdim=True))
        else:  # weights and BatchNorm statistics as pretrained
            assert torch.equal(tensor, source[key]), key

    train(TrainConfig(resume=str(tmp_path / "killed")))
    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "killed" / "last.pt")
    assert resumed.epoch == 2 and resumed.config["pretrained"] == str(converted)
    for key, tensor in straight.model.items():
        assert torch.equal(tensor, resumed.model[key]), key
    moved = [k for k, v in straight.model.items() if k in source and v.shape == source[k].shape
             and v.is_floating_point() and not torch.equal(v, source[k])]
    assert "features.1.depthwise.conv.weight" in moved  # the second epoch trained everything
