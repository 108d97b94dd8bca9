"""A GFL detector's whole workflow on digits-det through the command line (train -> eval ->
predict -> export with its post-processing, checked box by box in ONNX Runtime -> int8 gated by
mAP), and ``--input-size`` as the size every detection architecture runs at."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from lightnets.checkpoint import load_checkpoint
from lightnets.data.detection import detection_datasets
from lightnets.detect.graph import DetectionGraph
from lightnets.export.source import from_name
from lightnets.registry import meta_model
from lightnets.tasks import get_task
from lightnets.train import TrainConfig


@pytest.mark.parametrize("name", ["gfl", "fcos_shufflenet_v2_x1_0", "ssdlite_shufflenet_v2_x1_0",
                                  "retinanet_shufflenet_v2_x1_0", "fasterrcnn"])
def test_the_input_size_is_the_size_the_detector_runs_at(name):
    # training builds the detector with the task's arguments for --input-size
    args = get_task("detection").model_args(TrainConfig(model=name, input_size=96))
    transform = meta_model(name, **args).transform
    if transform.fixed_size:  # SSDLite: one fixed square
        assert tuple(transform.fixed_size) == (96, 96)
    else:
        assert tuple(transform.min_size) == (96,) and transform.max_size == 96
    # and so does an export by name
    exported = from_name(name, 64).model.detector.transform
    assert (exported.fixed_size or exported.min_size)[-1] == 64


def test_a_size_the_detector_cannot_take_is_one_line():
    with pytest.raises(ValueError, match=r"multiples of 32 .*got 100$"):
        from_name("gfl_squeezenet1_1", 100)
    # torchvision's transform pads a 100x100 batch to 128: no graph of the same boxes at 100
    detector = from_name("fcos_shufflenet_v2_x1_0", 100).model.detector
    with pytest.raises(ValueError, match="pads its inputs to multiples of 32; export it at such "
                                         "a size, not 100x100"):
        DetectionGraph(detector, (100, 100))


@pytest.mark.slow
def test_gfl_train_eval_predict_export(tmp_path, run_cli):
    runs = tmp_path / "runs"
    status, _, _ = run_cli("train", "--model", "gfl", "--model-arg", "score_thresh=0.0",
                           "--epochs", "1", "--batch-size", "8", "--input-size", "64",
                           "--limit-train-batches", "3", "--limit-val-batches", "1",
                           "--no-colour-jitter", "--no-progress", "--runs-dir", str(runs),
                           "--name", "gfl")
    assert status == 0
    assert json.loads((runs / "gfl" / "config.json").read_text())["colour_jitter"] is False
    checkpoint = runs / "gfl" / "last.pt"
    built = load_checkpoint(checkpoint).build_model()
    assert tuple(built.transform.min_size) == (64,) and built.num_classes == 11

    status, out, _ = run_cli("eval", "--checkpoint", str(checkpoint), "--json",
                             "--limit-batches", "1", "--batch-size", "8")
    assert status == 0
    scores = json.loads(out)
    assert scores["count"] == 8 and 0 <= scores["map"] <= 1 and scores["detections"] > 0

    picture = tmp_path / "canvas.png"
    image = detection_datasets("digits-det", 128, augment=False, warn=False).val[0][0]
    Image.fromarray(image.permute(1, 2, 0).numpy()).resize((100, 80)).save(picture)
    status, out, _ = run_cli("predict", "--checkpoint", str(checkpoint), str(picture),
                             "--output", str(tmp_path / "boxes"), "--score-threshold", "0",
                             "--json")
    assert status == 0
    [prediction] = json.loads(out)
    assert prediction["boxes"] and Image.open(prediction["drawn_png"]).size == (100, 80)
    assert all(found["class"] in "0123456789" for found in prediction["boxes"])

    status, out, _ = run_cli("export", "--checkpoint", str(checkpoint), "--output",
                             str(tmp_path / "gfl.onnx"), "--json")
    assert status == 0
    sidecar = json.loads(out)
    assert sidecar["detection"]["form"] == "postprocessed"
    check = sidecar["verification"]
    assert check["passed"] and check["compared"] > 0 and check["mismatches"] == 0

    status, out, _ = run_cli("export", "--checkpoint", str(checkpoint), "--output",
                             str(tmp_path / "raw.onnx"), "--no-postprocess", "--json")
    assert status == 0
    from lightnets.export.onnx import onnx_session, run_session
    raw = run_session(onnx_session(tmp_path / "raw.onnx"), torch.randn(2, 3, 64, 64))
    assert raw.shape[0] == 2 and raw.shape[-1] == 4 * 8 + 10  # distributions, classes
