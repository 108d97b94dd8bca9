"""Preprocessing: the evaluation transform on grey and RGB PIL images."""

from __future__ import annotations

from PIL import Image

from lightnets.data import default_preprocess, eval_transform


def test_eval_transform_handles_pil_grey_and_rgb():
    preprocess = default_preprocess("folder", 16, 3)
    assert preprocess["resize"] == 18
    rgb = Image.new("RGB", (40, 30), (255, 0, 0))
    grey = Image.new("L", (30, 40), 128)
    assert eval_transform(preprocess)(rgb).shape == (3, 16, 16)
    assert eval_transform(preprocess)(grey).shape == (3, 16, 16)
    assert eval_transform(default_preprocess("folder", 16, 1))(rgb).shape == (1, 16, 16)
