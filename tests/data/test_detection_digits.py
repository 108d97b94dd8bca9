"""digits-det: fixed canvases of real digit scans, train and val from disjoint scans, boxes
inside the canvas and tight around each digit's ink, labels 1..10, uint8 RGB out."""

from __future__ import annotations

import functools
import pickle

import pytest
import torch
from torchvision.transforms import v2

from lightnets.data.detection import detection_collate, detection_datasets
from lightnets.data.detection.digits_det import (CANVAS_SIZE, DIGIT_SIZES, VAL_CANVASES,
                                                 VAL_SEED, DigitCanvases, digit_canvases)
from lightnets.data.digits import digits_split


@functools.lru_cache(maxsize=1)
def default_data():
    return detection_datasets("digits-det", CANVAS_SIZE)


def test_canvases_are_fixed_and_the_same_on_every_read():
    data = default_data()
    assert (len(data.train), len(data.val)) == (1000, 200) and data.notes == []
    assert data.classes == [str(d) for d in range(10)] and data.category_ids is None
    # laid out afresh from the fixed seed: the same boxes, labels and pixels
    _, (val_x, val_y) = digits_split()
    again = DigitCanvases(val_x, val_y, VAL_CANVASES, VAL_SEED)
    assert again is not data.val.read_image
    assert [r.boxes.tolist() for r in data.val.records] == [r.boxes.tolist()
                                                            for r in again.records]
    assert [r.labels.tolist() for r in data.val.records] == [r.labels.tolist()
                                                             for r in again.records]
    for index in (0, 57, 199):
        image, target = data.val[index]
        assert image.shape == (3, CANVAS_SIZE, CANVAS_SIZE) and image.dtype == torch.uint8
        assert torch.equal(image, again(again.records[index])) and torch.equal(image,
                                                                              data.val[index][0])
        assert target["image_id"] == index and target["iscrowd"].sum() == 0
    copied = pickle.loads(pickle.dumps(data.val))  # as DataLoader processes receive it
    assert torch.equal(copied[57][0], data.val[57][0])
    other = DigitCanvases(val_x, val_y, 5, VAL_SEED + 1)
    assert [r.boxes.tolist() for r in other.records] != [r.boxes.tolist()
                                                         for r in again.records[:5]]
    counts = torch.tensor([len(r.labels) for r in data.train.records])
    assert counts.min() >= 1 and counts.max() <= 4 and counts.float().mean() > 2
    labels = torch.cat([r.labels for r in data.train.records])
    assert labels.min() == 1 and labels.max() == 10
    assert labels.bincount(minlength=11)[1:].min() > 150  # every digit, about as often
    # training draws differ (shift, zoom, colour) but never flip a digit
    draws = [data.train[3][0] for _ in range(3)]
    assert not torch.equal(draws[0], draws[1])
    assert not any(isinstance(t, v2.RandomHorizontalFlip) for t in data.train.transform.transforms)


def test_train_and_val_draw_from_disjoint_scans():
    train, val = digit_canvases()
    (train_x, _), (val_x, _) = digits_split()
    train_used = {tuple(train_x[i].flatten().tolist()) for s in train.sources for i in s}
    val_used = {tuple(val_x[i].flatten().tolist()) for s in val.sources for i in s}
    assert len(train_used) > 900 and len(val_used) > 250
    assert len(train_used & val_used) < 5  # the split's rare duplicate scans only


def test_boxes_lie_inside_the_canvas_and_tight_around_the_ink():
    _, (val_x, val_y) = digits_split()
    canvases = DigitCanvases(val_x, val_y, 40, seed=3, noise=0.0)
    for record in canvases.records:
        image = canvases(record).int()
        background = image[:, 0, 0] if not record.boxes.numel() else image.flatten(1).mode(1)[0]
        ink = (image - background[:, None, None]).abs().amax(dim=0)  # per-pixel contrast
        boxes = record.boxes.int()
        assert ((0 <= boxes) & (boxes <= CANVAS_SIZE)).all()
        sides = boxes[:, 2:] - boxes[:, :2]
        assert (sides >= 2).all() and (sides <= DIGIT_SIZES[1]).all()
        for x1, y1, x2, y2 in boxes.tolist():
            box = ink[y1:y2, x1:x2]
            # every side of the box touches ink ...
            assert min(box[0].max(), box[-1].max(), box[:, 0].max(), box[:, -1].max()) >= 2
            # ... and the ring just outside it is background (other digits keep a gap)
            ring = torch.zeros_like(ink, dtype=torch.bool)
            ring[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1] = True
            ring[y1:y2, x1:x2] = False
            assert ink[ring].max() == 0
        covered = torch.zeros_like(ink, dtype=torch.bool)
        for x1, y1, x2, y2 in boxes.tolist():
            covered[y1:y2, x1:x2] = True
        assert ink[~covered].max() == 0  # no ink outside the boxes: no digit without its box
        labels_seen = record.labels - 1
        assert ((0 <= labels_seen) & (labels_seen <= 9)).all()


@pytest.mark.parametrize("size", [96, 160])
def test_other_sizes_scale_boxes_and_collate_as_lists(size):
    data = detection_datasets("digits-det", size, augment=False)
    images, targets = detection_collate([data.val[i] for i in range(3)])
    for image, target, record in zip(images, targets, data.val.records[:3]):
        assert image.shape == (3, size, size) and image.dtype == torch.uint8
        assert target["boxes"].canvas_size == (size, size)
        assert torch.allclose(target["boxes"], record.boxes * size / CANVAS_SIZE)
        assert torch.equal(target["labels"], record.labels)
