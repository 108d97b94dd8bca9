"""Box-aware augmentation: the mosaic (four letterboxed images tiled, a window cut, the boxes
following) and SSD's zoom-out and IoU crop, letterboxed back."""

from __future__ import annotations

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from lightnets.data import build_data, default_preprocess
from lightnets.data.detection import detection_datasets
from lightnets.data.detection.mosaic import MIN_VISIBLE, mosaic
from lightnets.data.detection.records import DetectionDataset, make_record
from lightnets.data.detection.transforms import detection_train_transform, letterboxed_again


def sample(value: int, boxes: list[list[float]], labels: list[int], size: int = 32):
    """A flat image of ``value`` with its boxes."""
    return (tv_tensors.Image(torch.full((3, size, size), value, dtype=torch.uint8)),
            {"boxes": tv_tensors.BoundingBoxes(torch.tensor(boxes, dtype=torch.float32)
                                               .reshape(-1, 4), format="XYXY",
                                               canvas_size=(size, size)),
             "labels": torch.tensor(labels), "iscrowd": torch.zeros(len(labels), dtype=torch.long),
             "image_id": value, "scale": torch.tensor([1.0, 1.0])})


def test_the_window_at_the_centre_shows_a_quarter_of_each_image_and_moves_its_boxes():
    samples = [sample(10, [[20, 20, 28, 28]], [1]),   # inside the window's top-left quarter
               sample(20, [[2, 18, 10, 26]], [2]),    # top-right
               sample(30, [[18, 2, 26, 10]], [3]),    # bottom-left
               sample(40, [[0, 0, 4, 4]], [4])]       # bottom-right
    image, target = mosaic(samples, 32, (32, 32))
    assert image.shape == (3, 32, 32) and image.dtype == torch.uint8
    assert [int(image[0, 0, 0]), int(image[0, 0, 31]), int(image[0, 31, 0]),
            int(image[0, 31, 31])] == [10, 20, 30, 40]
    # the window starts at (16, 16) of the 64x64 tiling
    assert target["boxes"].tolist() == [[4, 4, 12, 12], [18, 2, 26, 10], [2, 18, 10, 26],
                                        [16, 16, 20, 20]]
    assert target["labels"].tolist() == [1, 2, 3, 4] and target["image_id"] == 10
    assert tuple(target["boxes"].canvas_size) == (32, 32)


def test_a_box_mostly_cut_off_by_the_window_is_dropped_with_its_label():
    # the first image's boxes at its right and left edges, the second image's at its left
    samples = [sample(1, [[24, 0, 32, 8], [0, 0, 8, 8]], [1, 2]), sample(2, [[0, 0, 8, 8]], [3]),
               sample(3, [[0, 0, 8, 8]], [4]), sample(4, [], [])]
    image, target = mosaic(samples, 32, (16, 16))  # the window is the first image exactly
    assert bool((image == 1).all())
    assert target["labels"].tolist() == [1, 2] and target["iscrowd"].tolist() == [0, 0]
    # two pixels right: the left box keeps 6/8 of itself, the second image's 2/8 (dropped)
    _, target = mosaic(samples, 32, (18, 16))
    assert 2 / 8 < MIN_VISIBLE <= 6 / 8
    assert target["boxes"].tolist() == [[22, 0, 30, 8], [0, 0, 6, 8]]
    assert target["labels"].tolist() == [1, 2]
    # six pixels right: the other way round
    _, target = mosaic(samples, 32, (22, 16))
    assert target["boxes"].tolist() == [[18, 0, 26, 8], [26, 0, 32, 8]]
    assert target["labels"].tolist() == [1, 3]


def test_bad_mosaics_are_errors():
    four = [sample(i, [], []) for i in range(4)]
    with pytest.raises(ValueError, match="takes 4 samples, got 3"):
        mosaic(four[:3], 32, (16, 16))
    with pytest.raises(ValueError, match=r"outside \[16, 48\]"):
        mosaic(four, 32, (8, 16))
    with pytest.raises(ValueError, match=r"mosaic is a probability in \[0, 1\], got 1.5"):
        DetectionDataset([], None, 32, None, ["x"], mosaic=1.5)


def test_a_mosaic_dataset_mixes_images_and_keeps_boxes_inside():
    records = [make_record(i, (32, 32), [[4, 4, 28, 28]], [1], [0]) for i in range(4)]
    images = {i: torch.full((3, 32, 32), 50 * i + 10, dtype=torch.uint8) for i in range(4)}
    dataset = DetectionDataset(records, lambda record: images[record.image_id], 32, None, ["x"],
                               mosaic=1.0)
    torch.manual_seed(0)
    values, counts = set(), []
    for index in range(12):
        image, target = dataset[index % 4]
        values |= set(image.unique().tolist())
        boxes = target["boxes"]
        assert bool((boxes >= 0).all() and (boxes <= 32).all())
        counts.append(len(boxes))
    assert len(values) == 4 and max(counts) > 1  # parts of several images, their boxes too
    plain = DetectionDataset(records, lambda record: images[record.image_id], 32, None, ["x"])
    assert plain[2][0].unique().tolist() == [110] and plain[2][1]["boxes"].tolist() == \
        [[4, 4, 28, 28]]


def test_training_data_takes_the_option_and_validation_never_mosaics():
    data = build_data("digits-det", default_preprocess("digits-det", 64, 3), mosaic=0.5,
                      kind="digits-det")
    assert data.train.mosaic == 0.5 and data.val.mosaic == 0.0
    assert detection_datasets("digits-det", 64, augment=False, mosaic=1.0).train.mosaic == 0.0


def test_a_crop_is_letterboxed_back_to_the_training_size():
    image, target = sample(7, [[2, 4, 10, 12]], [1], size=16)
    image, target = letterboxed_again(image[:, :8], {**target, "boxes": tv_tensors.BoundingBoxes(
        target["boxes"], format="XYXY", canvas_size=(8, 16))}, 32)
    assert image.shape == (3, 32, 32) and bool((image[:, 16:] == 0).all())
    assert target["boxes"].tolist() == [[4, 8, 20, 24]] and target["labels"].tolist() == [1]


def test_zoom_crop_rescales_the_boxes_beyond_the_light_augmentation():
    def widths(transform: v2.Compose) -> list[float]:
        torch.manual_seed(0)
        out = []
        for _ in range(24):
            image, target = transform(*sample(100, [[16, 16, 48, 48]], [1], size=64))
            assert image.shape == (3, 64, 64) and len(target["boxes"]) == 1
            out.append(float(target["boxes"][0, 2] - target["boxes"][0, 0]) / 32)
        return out

    light = widths(detection_train_transform("digits-det"))  # its zoom: 0.8-1.2
    zoomed = widths(detection_train_transform("digits-det", zoom_crop=True, size=64))
    assert all(0.75 <= w <= 1.25 for w in light)
    assert min(zoomed) < 0.6 and max(zoomed) > 1.3  # zoomed out up to 4x, cropped in
    with pytest.raises(ValueError, match="pass size"):
        detection_train_transform("digits-det", zoom_crop=True)


@pytest.mark.parametrize("kind, colour", [("digits-det", v2.ColorJitter),
                                          ("coco", v2.RandomPhotometricDistort)])
def test_colour_jitter_false_leaves_out_only_the_photometric_step(kind, colour):
    def steps(**kwargs) -> list[type]:
        return [type(step) for step in detection_train_transform(kind, **kwargs).transforms]

    with_it, without = steps(), steps(colour_jitter=False)
    assert colour in with_it and colour not in without
    assert without == [step for step in with_it if step is not colour]
