"""The GFL detector: head shapes on every registered backbone (meta device), the task-aligned
assignment on hand-made cases, its losses, the eval contract, its decoding from exported raw
outputs, and its export graph against eager."""

from __future__ import annotations

import math

import pytest
import torch

import lightnets
from lightnets.detect.backbone import fine_tap
from lightnets.detect.assign import task_aligned_assign
from lightnets.detect.detector import RawHeads, decoded_detector
from lightnets.detect.gfl_head import decode_boxes, encode_sides, grid_points
from lightnets.detect.gfl_loss import distribution_focal_loss, quality_focal_loss
from lightnets.detect.graph import DetectionGraph
from lightnets.detect.zoo import LIGHT
from lightnets.registry import meta_model
from lightnets.testing import randomise

GFL = sorted(name for name, (arch, _) in LIGHT.items() if arch == "gfl")
SIZE = 64


def small(randomised: bool = True):
    """A GFL detector on ShuffleNetV2 0.5x at 64x64, 4 object classes, a score threshold every
    box passes and (``randomised``) random weights and BatchNorm statistics, so that its scores
    spread."""
    torch.manual_seed(0)
    model = lightnets.create_model("gfl", num_classes=5, min_size=SIZE, score_thresh=0.0,
                                   backbone_args={"width_mult": 0.5})
    if randomised:
        randomise(model)
        for layer in [*model.head.cls_out, *model.head.reg_out]:  # scores apart: no near-ties
            torch.nn.init.normal_(layer.weight, std=0.2)
    return model.eval()


@pytest.mark.parametrize("name", GFL)
def test_head_shapes_on_every_registered_backbone(name):
    model = meta_model(name, num_classes=5, min_size=128)
    assert model.family.startswith("GFL (") and model.default_input_size == (3, 128, 128)
    outputs, shapes = model.network(torch.empty(2, 3, 128, 128, device="meta"))
    assert len(shapes) == len(model.strides) == 4 if "squeezenet" not in name else 3
    assert model.strides == [8 * 2 ** i for i in range(len(model.strides))]
    for (height, width), stride in zip(shapes, model.strides):  # unpadded trunks: one less
        assert math.ceil(128 / stride) - 1 <= height == width <= math.ceil(128 / stride)
    locations = sum(h * w for h, w in shapes)
    assert outputs["bbox_regression"].shape == (2, locations, 4 * (model.reg_max + 1))
    assert outputs["cls_logits"].shape == (2, locations, 4)  # no background logit


@pytest.mark.parametrize("name", GFL)
def test_a_fine_level_adds_the_trunks_stride_4_map_first(name):
    coarse = meta_model(name, num_classes=5, min_size=128)
    fine = meta_model(name, num_classes=5, min_size=128, fine_level=True)
    assert fine.strides == [4, *coarse.strides]
    outputs, shapes = fine.network(torch.empty(1, 3, 128, 128, device="meta"))
    assert 31 <= shapes[0][0] == shapes[0][1] <= 32  # unpadded trunks: one less
    locations = sum(h * w for h, w in shapes)
    assert outputs["cls_logits"].shape == (1, locations, 4)
    coarse_shapes = coarse.network(torch.empty(1, 3, 128, 128, device="meta"))[1]
    assert shapes[1:] == coarse_shapes  # the same coarser levels, one finer map before them


def test_a_fine_level_needs_a_stride_4_stage_not_already_tapped():
    info = [{"reduction": 2, "module": "stem"}, {"reduction": 8, "module": "stage2"}]
    with pytest.raises(ValueError,
                       match=r"^Net has no stage at stride 4 \(its strides: \[2, 8\]\)$"):
        fine_tap(info, [1], "Net")
    info.insert(1, {"reduction": 4, "module": "pool"})
    assert fine_tap(info, [2], "Net") == [1, 2]
    with pytest.raises(ValueError, match="the taps already hold Net's stride-4 stage"):
        fine_tap(info, ["pool", 2], "Net")
    with pytest.raises(ValueError, match="fine_level must be True or False, got 'yes'"):
        meta_model("gfl", fine_level="yes")


def test_registered_variants_and_sizes_it_cannot_take():
    assert set(GFL) == {"gfl_shufflenet_v2_x1_0", "gfl_mobilenet_v2", "gfl_mobilenet_v3_large",
                        "gfl_ghostnet_x1_0", "gfl_squeezenet1_1"}
    assert meta_model("gfl", backbone="mobilenet_v3_small").family == "GFL (MobileNetV3)"
    with pytest.raises(ValueError, match="multiples of 32 .* got 100"):
        meta_model("gfl", min_size=100)
    with pytest.raises(ValueError, match="neck block must be one of ghost, separable"):
        meta_model("gfl", neck_block="dense")
    separable = meta_model("gfl", neck_block="separable", neck_width=64)
    assert sum(p.numel() for p in separable.parameters()) < \
        sum(p.numel() for p in meta_model("gfl").parameters())


def test_an_empty_image_has_no_positives():
    points, _ = grid_points([(8, 8)], [8])
    found = task_aligned_assign(torch.full((64, 3), 0.5), torch.zeros(64, 4), points,
                                torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert len(found.points) == len(found.boxes) == len(found.quality) == 0


def test_a_large_box_goes_to_the_coarse_points_that_predict_it():
    # a 64x64 image, levels at strides 8 (64 points) and 32 (4 points); the box covers it all
    points, strides = grid_points([(8, 8), (2, 2)], [8, 32])
    box = torch.tensor([[0.0, 0.0, 64.0, 64.0]])
    predicted = torch.cat([points - 2, points + 2], dim=1)  # fine points: tiny boxes
    predicted[64:] = box                                    # coarse points: the box itself
    found = task_aligned_assign(torch.full((68, 3), 0.3), predicted, points, box,
                                torch.tensor([2]), topk=4)
    assert sorted(found.points.tolist()) == [64, 65, 66, 67]
    assert (strides[found.points] == 32).all() and (found.boxes == 0).all()
    assert torch.allclose(found.quality, torch.ones(4))  # IoU 1, equally aligned


def test_positives_lie_inside_their_box_and_a_shared_point_keeps_the_closer_box():
    points, _ = grid_points([(8, 8)], [8])
    boxes = torch.tensor([[0.0, 0.0, 40.0, 40.0], [16.0, 16.0, 56.0, 56.0]])
    predicted = torch.cat([points - 6, points + 6], dim=1)
    shared = 3 * 8 + 3  # the point (28, 28), inside both boxes
    predicted[shared] = torch.tensor([17.0, 17.0, 55.0, 55.0])  # almost the second box
    found = task_aligned_assign(torch.full((64, 2), 0.5), predicted, points, boxes,
                                torch.tensor([0, 1]))
    # each box's 13 best points, those claimed twice counted once
    assert len(set(found.points.tolist())) == len(found.points) < 2 * 13
    assert shared in found.points.tolist() and set(found.boxes.tolist()) == {0, 1}
    owners = dict(zip(found.points.tolist(), found.boxes.tolist()))
    assert owners[shared] == 1
    for point, owner in owners.items():
        x, y = points[point].tolist()
        x1, y1, x2, y2 = boxes[owner].tolist()
        assert x1 < x < x2 and y1 < y < y2
    assert float(found.quality.max()) == pytest.approx(float(
        lightnets.detect.assign.box_iou(boxes[1:], predicted[shared:shared + 1])), rel=1e-5)


def test_the_loss_terms_on_known_values():
    quality = torch.tensor([0.0, 0.3, 1.0])
    assert quality_focal_loss(torch.logit(quality.clamp(1e-6, 1 - 1e-6)), quality).max() < 1e-6
    assert quality_focal_loss(torch.tensor([3.0]), torch.tensor([0.0])) > 0
    # a distance on a bin: the cross-entropy of that bin alone, four sides summed
    logits = torch.randn(1, 4, 8)
    expected = torch.nn.functional.cross_entropy(logits[0], torch.full((4,), 2)).mul(4)
    assert distribution_focal_loss(logits, torch.full((1, 4), 2.0)) == pytest.approx(
        float(expected), rel=1e-5)
    # sides encode and decode back to the box (within the distributions' range)
    points, strides = torch.tensor([[20.0, 20.0]]), torch.tensor([8.0])
    box = torch.tensor([[4.0, 10.0, 30.0, 44.0]])
    sides = encode_sides(box, points, strides, 7)
    one_hot = torch.zeros(1, 4, 8)
    for side, value in enumerate(sides[0].tolist()):  # two bins around the value
        low = int(value)
        one_hot[0, side, low], one_hot[0, side, low + 1] = low + 1 - value, value - low
    decoded = decode_boxes(one_hot.clamp(min=1e-12).log().flatten(1), points, strides, 7)
    assert torch.allclose(decoded, box, atol=1e-4)


def test_the_loss_falls_on_one_batch_and_eval_follows_the_contract():
    model = small(randomised=False).train()  # the head's own initialisation
    images = [torch.rand(3, SIZE, SIZE) for _ in range(2)]
    targets = [{"boxes": torch.tensor([[8.0, 8.0, 40.0, 44.0]]), "labels": torch.tensor([3])},
               {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    totals = []
    for _ in range(8):
        losses = model(images, targets)
        assert set(losses) == {"quality_focal", "giou", "distribution_focal"}
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        totals.append(float(total.detach()))
    assert totals[-1] < 0.8 * totals[0], totals
    found = model.eval()(images)
    assert len(found) == 2 and all(set(f) == {"boxes", "scores", "labels"} for f in found)
    for f in found:
        assert 0 < len(f["boxes"]) <= model.detections_per_img
        assert f["labels"].min() >= 1 and f["labels"].max() <= 4
        assert (f["boxes"] >= 0).all() and (f["boxes"] <= SIZE).all()
        assert bool((f["scores"][:-1] >= f["scores"][1:]).all())
    with pytest.raises(ValueError, match="takes labels 1..4"):
        model.train()(images, [{"boxes": torch.ones(1, 4), "labels": torch.tensor([5])}] * 2)


@torch.no_grad()
def test_the_export_graph_and_raw_outputs_decode_to_the_eager_boxes():
    model = small()
    image = torch.rand(3, SIZE, SIZE)
    [eager] = model([image])
    mean = torch.tensor(model.transform.image_mean).view(-1, 1, 1)
    std = torch.tensor(model.transform.image_std).view(-1, 1, 1)
    boxes, scores, labels = DetectionGraph(model, (SIZE, SIZE))(((image - mean) / std)[None])
    assert 10 < len(eager["boxes"]) <= 100 and torch.equal(labels, eager["labels"])
    assert torch.allclose(boxes, eager["boxes"], atol=1e-4)
    assert torch.allclose(scores, eager["scores"])
    [decoded] = decoded_detector(model, RawHeads(model))([image])
    assert torch.allclose(decoded["boxes"], eager["boxes"], atol=1e-4)
