"""Decoding: 16-bit images are scaled to 8 bits, not clipped, on every path that reads one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lightnets.data import build_data, default_preprocess
from lightnets.data.detection import rgb_image
from lightnets.data.images import load_rgb, to_mode
from lightnets.data.seg_folders import SegmentationPairs
from lightnets.export.predict import open_image


def grey_pair(tmp_path):
    """The same 16x16 picture as an 8-bit and a 16-bit PNG (each 8-bit value v as v * 257)."""
    pixels = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "eight.png")
    Image.fromarray(pixels.astype(np.uint16) * 257).save(tmp_path / "sixteen.png")
    with Image.open(tmp_path / "sixteen.png") as image:
        assert image.mode in ("I;16", "I")  # PIL reads it back as 16-bit
    return pixels, tmp_path / "eight.png", tmp_path / "sixteen.png"


def test_the_same_picture_at_8_and_16_bits_decodes_the_same_everywhere(tmp_path):
    pixels, eight, sixteen = grey_pair(tmp_path)
    rgb = np.repeat(pixels[:, :, None], 3, axis=2)
    assert np.array_equal(np.asarray(load_rgb(sixteen)), rgb)  # image folders
    assert np.array_equal(rgb_image(sixteen).permute(1, 2, 0).numpy(), rgb)  # detection
    for chans, mode in ((3, "RGB"), (1, "L")):  # predict
        assert np.array_equal(np.asarray(open_image(sixteen, chans)),
                              np.asarray(open_image(eight, chans))), mode
    mask = tmp_path / "mask.png"
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(mask)
    pairs = SegmentationPairs([(eight, mask), (sixteen, mask)], None, ["a", "b"])
    assert np.array_equal(pairs[0][0].numpy(), pairs[1][0].numpy())  # segmentation


def test_an_image_folder_of_16_bit_files_gives_the_8_bit_input(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (16, 16), dtype=np.uint8)
    for depth, folder in ((8, tmp_path / "eight"), (16, tmp_path / "sixteen")):
        for name in ("a", "b"):
            for number in range(2):
                (folder / name).mkdir(parents=True, exist_ok=True)
                values = pixels if depth == 8 else pixels.astype(np.uint16) * 257
                Image.fromarray(values).save(folder / name / f"{number}.png")
    preprocess = default_preprocess("folder", 16, 3)
    eight = build_data(str(tmp_path / "eight"), preprocess, augment=False, val_fraction=0.5)
    sixteen = build_data(str(tmp_path / "sixteen"), preprocess, augment=False, val_fraction=0.5)
    assert np.array_equal(eight.val[0][0].numpy(), sixteen.val[0][0].numpy())


@pytest.mark.parametrize("mode", ["I;16", "I;16B", "I"])
def test_16_bit_values_are_scaled_by_the_full_range_and_rounded(mode):
    values = np.array([[0, 128, 129, 257, 32896, 65535]], dtype=np.uint16)
    if mode == "I;16B":
        image = Image.frombytes(mode, (6, 1), values.astype(">u2").tobytes())
    else:
        image = Image.fromarray(values if mode == "I;16" else values.astype(np.int32))
    assert image.mode == mode
    assert np.asarray(to_mode(image, "L")).tolist() == [[0, 0, 1, 1, 128, 255]]
    assert np.asarray(to_mode(Image.new("L", (2, 1), 7), "RGB")).tolist() == [[[7] * 3] * 2]
