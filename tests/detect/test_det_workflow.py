"""A detector's whole workflow on the embedded digits-det data, through the command line:
train -> eval (mAP by pycocotools, COCO-format detections) -> predict (boxes drawn) -> export
with post-processing and of the network's raw head outputs, checked in ONNX Runtime."""

from __future__ import annotations

import csv
import json

import pytest
import torch
from PIL import Image

from lightnets.checkpoint import load_checkpoint
from lightnets.cli import main
from lightnets.data.detection import detection_datasets
from lightnets.train import evaluate

MODEL = "fcos_mobilenet_v3_small"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A detector trained for one epoch of three batches at 64x64; its score threshold low
    enough that it finds boxes, which the export's check compares."""
    runs = tmp_path_factory.mktemp("runs")
    status = main(["train", "--model", MODEL, "--model-arg", "score_thresh=0.02",
                   "--epochs", "1", "--batch-size", "8",
                   "--input-size", "64", "--limit-train-batches", "3", "--limit-val-batches",
                   "2", "--no-progress", "--runs-dir", str(runs), "--name", "det"])
    assert status == 0
    return runs / "det"


@pytest.mark.slow
@pytest.mark.xdist_group("det_workflow")
def test_detection_run_eval_predict_export(trained, tmp_path, run_cli):
    [row] = list(csv.DictReader((trained / "metrics.csv").open()))
    # no training accuracy: a detector counts none (the column was always 0)
    assert list(row) == ["epoch", "lr", "train_loss", "val_map", "val_map_50",
                         "val_map_75", "epoch_seconds", "images_per_second"]
    assert float(row["train_loss"]) > 0 and 0 <= float(row["val_map"]) <= float(
        row["val_map_50"]) <= 1
    config = json.loads((trained / "config.json").read_text())
    assert config["task"] == "detection" and config["num_classes"] == 11  # with the background
    built = load_checkpoint(trained / "last.pt").model_args  # what the checkpoint rebuilds
    assert built["min_size"] == built["max_size"] == 64 and built["num_classes"] == 11

    detections = tmp_path / "detections.json"
    status, out, _ = run_cli("eval", "--checkpoint", str(trained / "last.pt"), "--json",
                      "--limit-batches", "2", "--batch-size", "16", "--save-predictions",
                      str(detections))
    assert status == 0
    scores = json.loads(out)
    # the validation the run did: two batches of twice the training batch
    assert scores["count"] == 32 and scores["map"] == pytest.approx(float(row["val_map"]))
    assert set(scores["per_class_ap"]) == {str(d) for d in range(10)}
    assert Image.open(scores["examples_png"]).size[0] > 300
    written = json.loads(detections.read_text())
    assert len(written) == scores["detections"]
    assert all(set(d) == {"image_id", "category_id", "bbox", "score"} for d in written)

    picture = tmp_path / "canvas.png"
    image = detection_datasets("digits-det", 128, augment=False).val[0][0]
    Image.fromarray(image.permute(1, 2, 0).numpy()).resize((100, 80)).save(picture)
    status, out, _ = run_cli("predict", "--checkpoint", str(trained / "last.pt"), str(picture),
                      "--output", str(tmp_path / "boxes"), "--score-threshold", "0", "--json")
    assert status == 0
    [prediction] = json.loads(out)
    assert Image.open(prediction["drawn_png"]).size == (100, 80)
    for found in prediction["boxes"]:  # in the file's own pixels
        x1, y1, x2, y2 = found["box"]
        assert 0 <= x1 <= x2 <= 100 and 0 <= y1 <= y2 <= 80 and found["class"] in "0123456789"

    # with its post-processing (the default), checked box by box on digits-det canvases
    onnx = tmp_path / "det.onnx"
    status, out, _ = run_cli("export", "--checkpoint", str(trained / "last.pt"), "--output",
                             str(onnx), "--json")
    assert status == 0
    sidecar = json.loads(out)
    assert sidecar["detection"]["form"] == "postprocessed" and sidecar["verification"]["passed"]
    assert sidecar["verification"]["compared"] > 0
    assert [m["eager"] for m in sidecar["verification"]["images"]] == \
        [m["matched"] for m in sidecar["verification"]["images"]]
    from lightnets.export.onnx import onnx_session, run_session

    status, _, _ = run_cli("export", "--checkpoint", str(trained / "last.pt"), "--output",
                           str(tmp_path / "raw.onnx"), "--no-postprocess")
    assert status == 0
    raw = run_session(onnx_session(tmp_path / "raw.onnx"), torch.randn(2, 3, 64, 64))
    assert raw.shape[0] == 2 and raw.shape[-1] == 4 + 1 + 11  # boxes, centerness, classes

    # int8, gated by the mAP of the boxes torchvision decodes from the int8 network's outputs
    status, out, _ = run_cli("quantize", "--checkpoint", str(trained / "last.pt"),
                      "--calib-data", "digits-det", "--calib-size", "16", "--max-drop", "100",
                      "--output", str(tmp_path / "det.int8.onnx"), "--latency-batch", "1",
                      "--json")
    assert status == 0
    report = json.loads(out)
    assert report["metric"] == "map" and 0 <= report["reduced_map"] <= 1
    assert report["fp32_map"] == pytest.approx(evaluate(trained / "last.pt").map, abs=1e-4)


@pytest.mark.slow
@pytest.mark.xdist_group("det_workflow")
def test_pretrained_backbone_weights_start_the_trunk(tmp_path):
    """``--pretrained`` for a detector holds classifier weights for its trunk (a torchvision
    file here); the run's checkpoint does not depend on that file afterwards."""
    import torchvision

    from lightnets.registry import create_model

    peer = torchvision.models.mobilenet_v3_small(weights=None)
    torch.save(peer.state_dict(), tmp_path / "mobilenet_v3_small.pth")
    status = main(["train", "--model", MODEL, "--epochs", "1", "--batch-size", "4",
                   "--input-size", "64", "--limit-train-batches", "1", "--limit-val-batches",
                   "1", "--lr", "1e-12", "--no-progress", "--runs-dir", str(tmp_path),
                   "--name", "pre", "--pretrained", str(tmp_path / "mobilenet_v3_small.pth")])
    assert status == 0
    checkpoint = load_checkpoint(tmp_path / "pre" / "last.pt")
    assert "backbone_args" not in checkpoint.model_args
    ours = create_model("mobilenet_v3_small", checkpoint_path=str(tmp_path /
                                                                  "mobilenet_v3_small.pth"))
    first = next(v for k, v in checkpoint.model.items() if k.endswith("weight") and v.dim() == 4)
    assert torch.allclose(first, next(p for p in ours.state_dict().values() if p.dim() == 4))


@pytest.mark.slow
@pytest.mark.xdist_group("det_workflow")
def test_any_backbone_by_the_architectures_name(tmp_path, run_cli):
    """``--model fcos --backbone NAME`` trains FCOS on that classifier; the checkpoint records
    the backbone, so evaluation rebuilds the same network."""
    status, printed, _ = run_cli("train", "--model", "fcos", "--backbone", "squeezenet1_1",
                                 "--epochs", "1", "--batch-size", "4", "--input-size", "64",
                                 "--limit-train-batches", "1", "--limit-val-batches", "1",
                                 "--no-progress", "--runs-dir", str(tmp_path))
    assert status == 0 and "training fcos with backbone squeezenet1_1" in printed
    checkpoint = load_checkpoint(tmp_path / "fcos_squeezenet1_1-digits-det" / "last.pt")
    assert checkpoint.model_name == "fcos" and checkpoint.model_args["backbone"] == \
        "squeezenet1_1"
    assert checkpoint.build_model().family == "FCOS (SqueezeNet)"
    status, _, err = run_cli("train", "--model", "fcos_squeezenet1_1", "--backbone", "resnet18")
    assert status != 0 and "--backbone goes with a detection architecture by name" in err
    status, _, err = run_cli("train", "--model", "fcos", "--backbone", "resnet_18")
    assert status != 0 and "unknown model 'resnet_18'" in err and "\n" not in err.strip()


@pytest.mark.parametrize("name", ["fcos_mobilenet_v3_small", "ssdlite_shufflenet_v2_x1_0"])
def test_raw_heads_decoded_by_torchvision_give_the_detectors_boxes(name):
    """What an exported detector computes (RawHeads), decoded by torchvision's own anchors, box
    coder and NMS (decoded_detector), is the detector's output: boxes, scores and labels."""
    from lightnets.detect.detector import RawHeads, decoded_detector
    from lightnets.registry import create_model

    torch.manual_seed(0)
    detector = create_model(name, num_classes=4, min_size=96, max_size=96,
                            score_thresh=0.01).eval()
    images = [torch.rand(3, 96, 96), torch.rand(3, 96, 96)]
    with torch.no_grad():
        expected = detector(images)
        decoded = decoded_detector(detector, RawHeads(detector).eval())(images)
    assert len(expected[0]["boxes"]) > 0
    for mine, theirs in zip(decoded, expected):
        for key in ("boxes", "scores", "labels"):
            assert torch.allclose(mine[key].float(), theirs[key].float(), atol=1e-5), key
