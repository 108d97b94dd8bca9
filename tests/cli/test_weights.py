"""``lightnets convert``, and ``predict`` / ``eval`` of torchvision weights: ImageNet's class
names, the weights' own preprocessing, one-line errors."""

from __future__ import annotations

import json

import pytest
import torch
import torchvision

from tests.conftest import make_image_tree

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def torchvision_files(tmp_path_factory):
    """torchvision's MobileNetV2 at width 0.25 (random weights): 1000 classes, and 3."""
    folder = tmp_path_factory.mktemp("tv")
    torch.manual_seed(0)
    torch.save(torchvision.models.mobilenet_v2(width_mult=0.25).state_dict(),
               folder / "imagenet.pth")
    torch.save(torchvision.models.mobilenet_v2(width_mult=0.25, num_classes=3).state_dict(),
               folder / "three.pth")
    return folder


def test_convert_then_predict_with_imagenet_names(torchvision_files, tmp_path, run_cli):
    images = make_image_tree(tmp_path / "images", per_class=1)
    image = str(next((images / "red").iterdir()))
    output = tmp_path / "mbv2.safetensors"
    status, out, err = run_cli("convert", str(torchvision_files / "imagenet.pth"), "--model",
                               "mobilenet_v2_x0_25", "--output", str(output))
    assert status == 0, err
    assert "as torchvision weights of mobilenet_v2_x0_25" in out and "check passed" in out
    assert "1000 classes (1000 class names); preprocessing: resize 232 bilinear, crop 224" in out
    status, direct, _ = run_cli("predict", "--model", "mobilenet_v2_x0_25", "--weights",
                                str(torchvision_files / "imagenet.pth"), "--json", image)
    assert status == 0
    status, converted, _ = run_cli("predict", "--checkpoint", str(output), "--json", image)
    assert status == 0 and json.loads(direct) == json.loads(converted)
    names = torchvision.models.MobileNet_V2_Weights.DEFAULT.meta["categories"]
    assert all(t["class"] == names[t["index"]] for t in json.loads(direct)[0]["top"])
    assert run_cli("convert", str(output), "--output", str(tmp_path / "bad.onnx"))[0] == 2


def test_eval_of_weights_takes_the_class_folders_in_order(torchvision_files, tmp_path, run_cli):
    data = make_image_tree(tmp_path / "colours", per_class=3)
    status, out, err = run_cli("eval", "--model", "mobilenet_v2_x0_25", "--weights",
                               str(torchvision_files / "three.pth"), "--data", str(data),
                               "--json", "--confusion", str(tmp_path / "confusion.png"))
    assert status == 0, err
    result = json.loads(out)
    assert result["count"] == 3 and set(result["per_class"]) == {"blue", "green", "red"}
    assert (tmp_path / "confusion.png").stat().st_size > 0
    status, _, err = run_cli("eval", "--model", "mobilenet_v2_x0_25", "--weights",
                             str(torchvision_files / "imagenet.pth"), "--data", str(data))
    assert status == 2 and "predicts 1000 classes" in err and "has 3" in err
    status, _, err = run_cli("predict", "--weights", str(torchvision_files / "three.pth"), "x.png")
    assert status == 2 and "pass the lightnets model name (--model)" in err


def test_export_of_weights_carries_their_preprocessing_and_names(torchvision_files, tmp_path,
                                                                  run_cli):
    output = tmp_path / "mbv2.onnx"
    status, out, err = run_cli("export", "--model", "mobilenet_v2_x0_25", "--weights",
                               str(torchvision_files / "imagenet.pth"), "--output", str(output),
                               "--json")
    assert status == 0, err
    sidecar = json.loads(out)
    assert sidecar["preprocess"]["resize"] == 232 and sidecar["input_size"][-1] == 224
    names = torchvision.models.MobileNet_V2_Weights.DEFAULT.meta["categories"]
    assert sidecar["class_names"] == list(names)
    status, _, err = run_cli("export", "--checkpoint", str(output), "--weights", str(output))
    assert status == 2 and "--weights goes with --model" in err


def test_the_cli_offers_exactly_the_weight_sources_the_loader_reads():
    from lightnets.cli._common import WEIGHT_SOURCES
    from lightnets.weights.load import SOURCES

    assert WEIGHT_SOURCES == SOURCES
