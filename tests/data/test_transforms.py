"""Preprocessing: the evaluation transform on grey and RGB PIL images; uint8 until the batch."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from lightnets.data import default_preprocess, eval_transform, normalize_transform, train_transform


def test_eval_transform_handles_pil_grey_and_rgb():
    preprocess = default_preprocess("folder", 16, 3)
    assert preprocess["resize"] == 18
    rgb = Image.new("RGB", (40, 30), (255, 0, 0))
    grey = Image.new("L", (30, 40), 128)
    assert eval_transform(preprocess)(rgb).shape == (3, 16, 16)
    assert eval_transform(preprocess)(grey).shape == (3, 16, 16)
    assert eval_transform(default_preprocess("folder", 16, 1))(rgb).shape == (1, 16, 16)


def test_unnormalized_images_stay_uint8_and_normalize_as_a_batch_exactly():
    preprocess = default_preprocess("folder", 16, 3)
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)) for _ in range(3)]
    raw = torch.stack([eval_transform(preprocess, normalize=False)(image) for image in images])
    assert raw.dtype == torch.uint8 and raw.shape == (3, 3, 16, 16)
    per_image = torch.stack([eval_transform(preprocess)(image) for image in images])
    batched = normalize_transform(preprocess)(raw.contiguous(memory_format=torch.channels_last))
    assert torch.equal(batched, per_image)  # the same numbers, whichever side of the loader
    augmented = train_transform(preprocess, "folder", normalize=False)(images[0])
    assert augmented.dtype == torch.uint8 and augmented.shape == (3, 16, 16)
