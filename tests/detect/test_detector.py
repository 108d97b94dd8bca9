"""``create_detector``: every architecture on light backbones, torchvision's calling convention
(losses in training, boxes in eval), the options that reach torchvision, and one-line errors."""

from __future__ import annotations

import pytest
import torch

import lightnets
from lightnets.detect import ARCHS, create_detector
from lightnets.profile import count_complexity


def targets(*boxes_per_image):
    return [{"boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
             "labels": torch.arange(1, len(boxes) + 1)} for boxes in boxes_per_image]


@pytest.mark.parametrize("arch, backbone", [
    ("fcos", "mobilenet_v3_small"), ("retinanet", "squeezenet1_1"),
    ("ssdlite", "mobilenet_v2_x0_5"), ("fasterrcnn", "shufflenet_v2_x0_5")])
def test_every_arch_trains_and_detects(arch, backbone, one_thread):
    torch.manual_seed(0)
    model = create_detector(arch, backbone, num_classes=4, min_size=64, max_size=64,
                            score_thresh=0.0)
    assert model.task == "detection" and model.num_classes == 4 and model.in_chans == 3
    assert model.default_input_size == (3, 64, 64) and model.family.endswith(")")
    images = [torch.rand(3, 64, 64), torch.rand(3, 48, 64)]
    losses = model.train()(images, targets([[4, 6, 30, 40], [30, 30, 60, 62]], [[1, 2, 20, 20]]))
    assert losses and all(torch.isfinite(loss) for loss in losses.values())
    model.eval()
    with torch.no_grad():
        detections = model(images)
    assert len(detections) == 2 and set(detections[0]) == {"boxes", "labels", "scores"}
    for found, image in zip(detections, images):  # boxes in the input's pixels
        assert (found["boxes"][:, 2:] <= torch.tensor(image.shape[:0:-1]) + 1e-4).all()
        # the two-stage and SSD heads never predict the background; FCOS and RetinaNet score
        # class 0 too (sigmoid per class), which training never makes positive
        lowest = 1 if arch in ("ssdlite", "fasterrcnn") else 0
        assert ((found["labels"] >= lowest) & (found["labels"] < 4)).all()


def test_fcos_shufflenet_learns_from_its_losses(one_thread):
    torch.manual_seed(0)
    model = lightnets.create_model("fcos_shufflenet_v2_x1_0", num_classes=11, min_size=64,
                                   max_size=64).train()
    assert model.transform.min_size == (64,) and model.transform.max_size == 64
    images = [torch.rand(3, 64, 64), torch.rand(3, 64, 64)]
    losses = model(images, targets([[8, 8, 30, 34], [34, 20, 60, 50]], []))  # one image empty
    assert set(losses) == {"classification", "bbox_regression", "bbox_ctrness"}
    assert all(torch.isfinite(loss) and loss > 0 for loss in losses.values())
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


def test_options_reach_torchvision():
    with torch.device("meta"):
        fcos = create_detector("fcos", "resnet18", 3, min_size=128, max_size=160,
                               image_mean=[0.5] * 3, score_thresh=0.3, nms_thresh=0.4,
                               detections_per_img=7, head_convs=2, topk_candidates=50)
        rcnn = create_detector("fasterrcnn", "resnet18", 3, score_thresh=0.3, nms_thresh=0.4,
                               detections_per_img=7)
        grey = create_detector("retinanet", "mobilenet_v2_x0_5", 2, in_chans=1)
        ssd = create_detector("ssdlite", "mobilenet_v2_x0_5", 5, min_size=160)
    assert (fcos.score_thresh, fcos.nms_thresh, fcos.detections_per_img) == (0.3, 0.4, 7)
    assert fcos.topk_candidates == 50 and fcos.transform.image_mean == [0.5] * 3
    assert (fcos.transform.min_size, fcos.transform.max_size) == ((128,), 160)
    assert len(fcos.head.classification_head.conv) == 2 * 3  # conv, GroupNorm, ReLU per layer
    assert fcos.anchor_generator.sizes == ((8,), (16,), (32,), (64,), (128,))
    assert (rcnn.roi_heads.score_thresh, rcnn.roi_heads.nms_thresh,
            rcnn.roi_heads.detections_per_img) == (0.3, 0.4, 7)
    assert rcnn.rpn.anchor_generator.sizes == ((32,), (64,), (128,), (256,))
    assert grey.in_chans == 1 and grey.transform.image_mean == [pytest.approx(0.449)]
    assert grey.anchor_generator.sizes[0] == (32, 40, 50)  # Lin et al. 2017b: 4x stride 8
    assert ssd.transform.fixed_size == (160, 160) and ssd.default_input_size == (3, 160, 160)
    assert ssd.transform.image_mean == [0.5] * 3 and ssd.score_thresh == 0.001


def test_one_channel_detector_runs(one_thread):
    torch.manual_seed(0)
    model = create_detector("fcos", "mobilenet_v3_small", 3, in_chans=1, min_size=64,
                            max_size=64, score_thresh=0.0).eval()
    with torch.no_grad():
        found = model([torch.rand(1, 64, 64)])[0]
    assert found["boxes"].shape[1] == 4 and len(found["scores"]) == len(found["labels"])


def test_raw_forward_is_what_is_counted():
    with torch.device("meta"):
        model = create_detector("fcos", "shufflenet_v2_x0_5", 11, min_size=128, max_size=128)
        raw = model.eval().forward_raw(torch.empty(2, 3, 128, 128))
    positions = sum((128 // s) ** 2 for s in (8, 16, 32, 64, 128))
    assert raw["cls_logits"].shape == (2, positions, 11)
    assert raw["bbox_regression"].shape == (2, positions, 4)
    counts = count_complexity(model)
    assert counts.input_size == (3, 128, 128) and counts.macs > 0
    assert counts.macs < count_complexity(model, (3, 256, 256)).macs


def test_errors_are_one_line():
    for call, match in [
            (lambda: create_detector("yolo", "resnet18"), "unknown detector architecture"),
            (lambda: create_detector("fcos", "fcn_resnet50"), "is a segmentation model"),
            (lambda: create_detector("fcos", "resnet18", num_classes=1), "K\\+1"),
            (lambda: create_detector("fcos", "resnet18", num_classes=2.5), ">= 2"),
            (lambda: create_detector("fcos", "resnet_18"), "closest: resnet18"),
            (lambda: create_detector("ssdlite", "resnet18", min_size=128, max_size=160),
             "fixed square size"),
            (lambda: create_detector("ssdlite", "resnet18", taps=[1, 2]), "taps apply"),
            (lambda: create_detector("retinanet", "resnet18", head_convs=2), "FCOS's head"),
            (lambda: create_detector("fcos", "resnet18", anchor_sizes=((8,),)), "one tuple"),
            (lambda: create_detector("fcos", "resnet18", in_chans=1, image_mean=[0.5] * 3),
             "one value per input channel"),
            (lambda: lightnets.create_model("fcos_resnet18", widht=2), "does not accept"),
            (lambda: create_detector("fcos", "resnet18", score_thresh=2.0),
             "score_thresh must be a number in \\[0, 1\\], got 2.0"),
            (lambda: create_detector("fasterrcnn", "resnet18", score_thresh=2.0),
             "score_thresh must be"),
            (lambda: create_detector("fasterrcnn", "resnet18", box_nms_thresh=-1),
             "box_nms_thresh must be"),
            (lambda: create_detector("fcos", "resnet18", nms_thresh=-1), "nms_thresh must"),
            (lambda: create_detector("fcos", "resnet18", nms_thresh=5), "nms_thresh must"),
            (lambda: create_detector("fcos", "resnet18", detections_per_img=-1),
             "detections_per_img must be an integer >= 1"),
            (lambda: create_detector("fcos", "resnet18", min_size=0), "min_size must"),
            (lambda: create_detector("ssdlite", "resnet18", min_size=-5), "min_size must"),
            (lambda: create_detector("fcos", "resnet18", fpn_channels=0), "fpn_channels must")]:
        with torch.device("meta"), pytest.raises(ValueError, match=match) as error:
            call()
        assert "\n" not in str(error.value)
    model = create_detector("fcos", "mobilenet_v3_small", 3, min_size=64, max_size=64)
    for images, match in [(torch.rand(3, 64, 64), "list of"),
                          ([torch.rand(1, 64, 64)], r"\(3, H, W\)"),
                          ([torch.zeros(3, 64, 64, dtype=torch.uint8)], "floating-point")]:
        with pytest.raises(ValueError, match=match):
            model.eval()(images)
    with pytest.raises(ValueError, match="needs targets"):
        model.train()([torch.rand(3, 64, 64)])
    beyond = [{"boxes": torch.tensor([[1.0, 1, 20, 20]]), "labels": torch.tensor([7])}]
    with pytest.raises(ValueError, match=r"num_classes=3 takes labels 1..2; .* image 0 .* 7$"):
        model.train()([torch.rand(3, 64, 64)], beyond)
    assert set(ARCHS) == {"fcos", "retinanet", "ssdlite", "fasterrcnn"}
