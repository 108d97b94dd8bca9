"""Detectors exported to ONNX with their post-processing (boxes, scores, labels), run in ONNX
Runtime against the eager detector on real digits-det canvases, one-stage ones and Faster
R-CNN; the raw head outputs on request, and refused for Faster R-CNN."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image
from torchvision.models.detection.image_list import ImageList

from lightnets.checkpoint import Checkpoint, save_checkpoint
from lightnets.data.detection import detection_datasets
from lightnets.detect.detector import RawHeads
from lightnets.detect.graph import DetectionGraph
from lightnets.export.detection import (DetectionVerification, ImageMatch, check_detections,
                                        export_detection_onnx, match, session_detections,
                                        verify_detections)
from lightnets.export.artefact import check_data
from lightnets.export.onnx import onnx_session
from lightnets.export.verify import VerificationError
from lightnets.registry import create_model
from tests.data.detection_folders import coco_images, write_coco

SIZE = 96
# random weights: a score threshold low enough that boxes exist, high enough that fewer than
# detections_per_img pass (so the count itself is compared)
ARGS = {"num_classes": 11, "min_size": SIZE, "max_size": SIZE}


def detector(name: str, score_thresh: float):
    """Random weights, the head's jittered: fresh heads score every location alike (ties)."""
    torch.manual_seed(0)
    model = create_model(name, **ARGS, score_thresh=score_thresh).eval()
    with torch.no_grad():
        for parameter in model.head.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    return model


# FCOS is exported by the command-line test below; RetinaNet's decoding is FCOS's, less the
# centerness, with another box coder
@pytest.mark.slow
@pytest.mark.parametrize(("name", "score_thresh"), [("ssdlite_mobilenet_v2", 0.105),
                                                    ("retinanet_shufflenet_v2_x1_0", 0.0135)])
def test_postprocessed_onnx_gives_the_eager_boxes(name, score_thresh, tmp_path):
    model = detector(name, score_thresh)
    graph = DetectionGraph(model, (SIZE, SIZE))
    path = export_detection_onnx(graph, tmp_path / "det.onnx", 18)
    check = verify_detections(model, session_detections(onnx_session(path)), (SIZE, SIZE), 1e-4)
    assert check_detections(check, "det.onnx").passed
    counts = [m.eager for m in check.images]
    assert all(0 < c < model.detections_per_img for c in counts), counts
    assert all(m.exported == m.matched == m.eager for m in check.images)
    assert check.max_relative < 1e-4


def test_matching_counts_a_missing_box_and_a_wrong_label():
    boxes = torch.tensor([[1.0, 2, 30, 40], [5, 5, 20, 20]])
    eager = (boxes, torch.tensor([0.9, 0.5]), torch.tensor([3, 4]))
    same = match(eager, eager, 0, 1e-4, 96, [0.05])
    assert (same.matched, same.borderline) == (2, 0)
    relabelled = match(eager, (boxes, eager[1], torch.tensor([3, 5])), 0, 1e-4, 96, [0.05])
    assert relabelled.matched == 1
    missing = match(eager, (boxes[:1], eager[1][:1], eager[2][:1]), 0, 1e-4, 96, [0.5])
    assert (missing.matched, missing.borderline) == (1, 1)  # its score is at the threshold
    check = DetectionVerification([relabelled], 1e-4, 96)
    assert check.mismatches == 2 and not check.passed
    with pytest.raises(VerificationError, match="2 unmatched"):
        check_detections(check, "det.onnx")
    assert DetectionVerification([ImageMatch(0, 2, 2, 2, 0, 0.5, 0.0)], 1e-4, 96).passed is False


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A saved (untrained) FCOS checkpoint at 96x96 with the digits' ten classes."""
    model = detector("fcos_shufflenet_v2_x0_5", 0.15)
    preprocess = {"input_size": SIZE, "in_chans": 3, "resize": SIZE,
                  "mean": list(model.transform.image_mean), "std": list(model.transform.image_std)}
    checkpoint = Checkpoint("fcos_shufflenet_v2_x0_5", {**ARGS, "score_thresh": 0.15},
                            model.state_dict(), preprocess, [str(d) for d in range(10)],
                            {"task": "detection", "data": "digits-det"})
    return save_checkpoint(checkpoint, tmp_path_factory.mktemp("det") / "det.pt")


@pytest.mark.slow
def test_cli_exports_a_checked_postprocessed_file(saved, tmp_path, run_cli):
    out = tmp_path / "det.onnx"
    status, printed, _ = run_cli("export", "--checkpoint", str(saved), "--output", str(out))
    assert status == 0 and "boxes, scores, labels" in printed
    assert printed.count("digits-det canvas") == 3 and "check passed" in printed
    sidecar = json.loads((tmp_path / "det.onnx.json").read_text())
    assert sidecar["detection"]["form"] == "postprocessed"
    assert sidecar["input_size"] == [1, 3, SIZE, SIZE] and not sidecar["dynamic_batch"]
    assert sidecar["verification"]["passed"] and sidecar["verification"]["mismatches"] == 0
    session = onnx_session(out)
    assert [o.name for o in session.get_outputs()] == ["boxes", "scores", "labels"]
    boxes, scores, labels = session_detections(session)(torch.randn(1, 3, SIZE, SIZE))
    assert boxes.shape[1:] == (4,) and labels.dtype == torch.int64
    assert bool((scores[:-1] >= scores[1:]).all())

    # predict on the file (ONNX Runtime alone) lists the checkpoint's boxes (eager torchvision)
    picture = tmp_path / "canvas.png"
    image = detection_datasets("digits-det", 128, augment=False, warn=False).val[1][0]
    Image.fromarray(image.permute(1, 2, 0).numpy()).resize((120, 90)).save(picture)
    found = {}
    for name, model in (("onnx", out), ("eager", saved)):
        status, printed, _ = run_cli("predict", "--checkpoint", str(model), str(picture),
                                     "--score-threshold", "0", "--output", str(tmp_path / name),
                                     "--json")
        assert status == 0
        [found[name]] = json.loads(printed)
    assert 0 < len(found["onnx"]["boxes"]) == len(found["eager"]["boxes"])
    for mine, theirs in zip(found["onnx"]["boxes"], found["eager"]["boxes"]):
        assert mine["label"] == theirs["label"] and mine["score"] == pytest.approx(
            theirs["score"], abs=2e-4)
        assert mine["box"] == pytest.approx(theirs["box"], abs=0.11)  # listed to 0.1 px


@pytest.mark.slow
def test_cli_raw_heads_on_request_and_refusals(saved, tmp_path, run_cli):
    out = tmp_path / "raw.onnx"
    status, _, _ = run_cli("export", "--checkpoint", str(saved), "--output", str(out),
                           "--no-postprocess", "--json")
    assert status == 0
    assert json.loads((tmp_path / "raw.onnx.json").read_text())["detection"]["form"] == \
        "raw_heads"
    status, _, err = run_cli("export", "--checkpoint", str(saved), "--format", "torchscript",
                             "--postprocess", "--output", str(tmp_path / "det.torchscript"))
    assert status != 0 and "to onnx only" in err
    status, _, err = run_cli("predict", "--checkpoint", str(out), str(out))
    assert status != 0 and "raw head outputs" in err
    with pytest.raises(ValueError, match="--input-size 96"):
        DetectionGraph(detector("fcos_shufflenet_v2_x0_5", 0.15), (64, 64))
    with pytest.raises(ValueError, match="Faster R-CNN has no raw head outputs"):
        RawHeads(create_model("fasterrcnn_mobilenet_v3_large_fpn", num_classes=3))(
            torch.zeros(1, 3, SIZE, SIZE))


FASTERRCNN = {"backbone": "shufflenet_v2_x0_5", "fpn_channels": 64, "box_score_thresh": 0.3,
              **ARGS}


def fasterrcnn() -> torch.nn.Module:
    """A random Faster R-CNN whose class scores spread: fresh RoI features barely vary between
    proposals (a random trunk's maps are faint), so the class layer is scaled to their spread
    on a real canvas and centred on their mean; scores then differ box by box and the labels
    vary, as a trained model's do."""
    torch.manual_seed(0)
    model = create_model("fasterrcnn", **FASTERRCNN).eval()
    canvas = detection_datasets("digits-det", SIZE, augment=False, warn=False).val[0][0]
    image = canvas.float().div(255).unsqueeze(0)
    mean = torch.tensor(model.transform.image_mean).view(1, -1, 1, 1)
    std = torch.tensor(model.transform.image_std).view(1, -1, 1, 1)
    with torch.no_grad():
        features = model.backbone((image - mean) / std)
        sizes = [(SIZE, SIZE)]
        proposals, _ = model.rpn(ImageList(image, sizes), features)
        pooled = model.roi_heads.box_head(model.roi_heads.box_roi_pool(features, proposals,
                                                                       sizes))
        layer = model.roi_heads.box_predictor.cls_score
        layer.weight.div_(float(pooled.std(0).mean()))
        layer.bias.copy_(-(layer.weight @ pooled.mean(0)))
    return model


@pytest.mark.slow
def test_fasterrcnn_exported_with_its_two_stages_gives_the_eager_boxes(tmp_path, run_cli):
    model = fasterrcnn()
    path = export_detection_onnx(DetectionGraph(model, (SIZE, SIZE)), tmp_path / "frcnn.onnx",
                                 18)
    check = verify_detections(model, session_detections(onnx_session(path)), (SIZE, SIZE), 1e-4)
    assert check_detections(check, "frcnn.onnx").passed
    assert all(0 < m.eager == m.exported == m.matched < 100 for m in check.images), check.lines()
    [found] = model([detection_datasets("digits-det", SIZE, augment=False, warn=False).val[1][0]
                     .float() / 255])
    assert len(set(found["labels"].tolist())) > 2 and found["scores"].std() > 0.01

    # the command line: a checkpoint exported with post-processing; raw forms and int8 refused
    preprocess = {"input_size": SIZE, "in_chans": 3, "resize": SIZE,
                  "mean": list(model.transform.image_mean), "std": list(model.transform.image_std)}
    checkpoint = str(save_checkpoint(Checkpoint(
        "fasterrcnn", FASTERRCNN, model.state_dict(), preprocess, [str(d) for d in range(10)],
        {"task": "detection", "data": "digits-det"}), tmp_path / "frcnn.pt"))
    out = tmp_path / "cli.onnx"
    status, printed, _ = run_cli("export", "--checkpoint", checkpoint, "--output", str(out))
    assert status == 0 and "boxes, scores, labels" in printed and "check passed" in printed
    sidecar = json.loads((tmp_path / "cli.onnx.json").read_text())["detection"]
    assert sidecar["form"] == "postprocessed" and sidecar["score_thresh"] == 0.3
    assert sidecar["proposals"] == 1000
    picture = tmp_path / "canvas.png"
    image = detection_datasets("digits-det", SIZE, augment=False, warn=False).val[2][0]
    Image.fromarray(image.permute(1, 2, 0).numpy()).save(picture)
    found = {}
    for name, model_file in (("onnx", out), ("eager", checkpoint)):
        status, printed, _ = run_cli("predict", "--checkpoint", str(model_file), str(picture),
                                     "--score-threshold", "0.3", "--output",
                                     str(tmp_path / name), "--json")
        assert status == 0
        [found[name]] = json.loads(printed)
    assert 0 < len(found["onnx"]["boxes"]) == len(found["eager"]["boxes"])
    for mine, theirs in zip(found["onnx"]["boxes"], found["eager"]["boxes"]):
        assert mine["label"] == theirs["label"] and mine["score"] == pytest.approx(
            theirs["score"], abs=2e-4)
        assert mine["box"] == pytest.approx(theirs["box"], abs=0.11)  # listed to 0.1 px
    for raw in (["--no-postprocess"], ["--format", "torchscript"]):
        status, _, err = run_cli("export", "--checkpoint", checkpoint, "--output",
                                 str(tmp_path / "raw.file"), *raw)
        assert status != 0 and "has no raw head outputs" in err
    status, _, err = run_cli("quantize", "--checkpoint", checkpoint, "--calib-data",
                             "digits-det")
    assert status != 0 and "quantize takes one-stage detectors" in err


def test_fasterrcnn_by_name_is_refused_raw_in_one_line(tmp_path, run_cli):
    # from a name as from a checkpoint: the exported network is the RawHeads, so the same
    # refusal comes before any export (before: a traceback, or the graph dumped)
    for form in (["--format", "torchscript"], ["--format", "pt2"], ["--no-postprocess"]):
        status, _, err = run_cli("export", "--model", "fasterrcnn", *form, "--output",
                                 str(tmp_path))
        assert status != 0 and "Faster R-CNN has no raw head outputs" in err
        assert err.strip().count("\n") == 0, err[:300]
    assert not list(tmp_path.iterdir())


def test_a_check_that_compared_no_box_does_not_pass(tmp_path):
    nothing = DetectionVerification([ImageMatch(0, 0, 0, 0, 0, 0.0, 0.0)], 1e-4, SIZE,
                                    score_thresh=0.5)
    assert not nothing.passed and not nothing.failed and nothing.compared == 0
    assert nothing.verdict().startswith("check compared nothing: no boxes above the threshold")
    assert nothing.as_dict()["compared"] == 0 and not nothing.as_dict()["passed"]
    assert check_detections(nothing, "x.onnx") is nothing  # the file is kept, unchecked
    some = DetectionVerification([ImageMatch(0, 2, 2, 2, 0, 0.0, 0.0)], 1e-4, SIZE)
    assert some.passed and some.verdict().startswith("check passed: 2 box(es) compared")

    # checked on the data the checkpoint was trained on, when it is here
    write_coco(tmp_path / "coco", coco_images(6))
    assert check_data({"data": str(tmp_path / "coco"), "seed": 1}) == (
        str(tmp_path / "coco"), {"seed": 1}, [])
    data, _, [note] = check_data({"data": str(tmp_path / "gone")})
    assert data == "digits-det" and "not here" in note
    model = detector("fcos_shufflenet_v2_x0_5", 0.15)
    check = verify_detections(model, lambda x: (torch.zeros(0, 4), torch.zeros(0),
                                                torch.zeros(0, dtype=torch.int64)),
                              (SIZE, SIZE), 1e-4, data=str(tmp_path / "coco"))
    assert check.lines()[0].startswith(f"{tmp_path / 'coco'} image 0")
