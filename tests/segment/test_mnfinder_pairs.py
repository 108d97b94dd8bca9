"""``benchmarks/mnfinder_pairs.py``, the converter of issue 29's real segmentation set, on a
hand-made wheel of the same layout: 3-class masks (a micronucleus wins over a nucleus), tiles,
the split by folder with a repeated image dropped, and a pair folder lightnets reads."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

from lightnets.data.seg_folders import seg_folder_datasets

SCRIPT = Path(__file__).parents[2] / "benchmarks" / "mnfinder_pairs.py"


def load_script():
    spec = importlib.util.spec_from_file_location("mnfinder_pairs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def encoded(array: np.ndarray) -> bytes:
    """A mask (RGBA) as PNG, an image (2-D) as TIFF, as in the wheel."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG" if array.ndim == 3 else "TIFF")
    return buffer.getvalue()


def rgba(marked: np.ndarray) -> np.ndarray:
    """A mask as the wheel stores it: RGBA, the first channel 255 on the object."""
    out = np.zeros((*marked.shape, 4), np.uint8)
    out[..., 0] = np.where(marked, 255, 0)
    out[..., 3] = 255
    return out


def fake_wheel(path: Path) -> Path:
    rng = np.random.default_rng(0)
    nucleus = np.zeros((300, 260), bool)
    nucleus[10:100, 20:90] = True
    micro = np.zeros_like(nucleus)
    micro[50:60, 50:60] = True  # inside the nucleus: becomes class 2
    micro[200:205, 200:205] = True
    train = rng.integers(500, 9000, (300, 260)).astype(np.uint16)
    other = rng.integers(0, 255, (256, 128)).astype(np.uint8)
    with zipfile.ZipFile(path, "w") as wheel:
        for folder, name, image in (("training-data/A", "1", train), ("test-data/B", "1", train),
                                    ("test-data/B", "2", other)):
            base = f"mnfinder/{folder}"
            wheel.writestr(f"{base}/images/{name}.tif", encoded(image))
            wheel.writestr(f"{base}/images/{name}.png", b"not read")  # the wheel's copies
            rows, cols = image.shape
            for masks, marked in (("nucleus_masks", nucleus), ("mn_masks", micro)):
                wheel.writestr(f"{base}/{masks}/{name}.png",
                               encoded(rgba(marked[:rows, :cols])))
    return path


def test_wheel_becomes_a_pair_folder_of_tiles(tmp_path):
    script = load_script()
    counts = script.convert(fake_wheel(tmp_path / "m.whl"), tmp_path / "pairs", 128)
    # 300x260 -> 2x2 tiles in train; the repeated test image is dropped; 256x128 -> 2x1 in val
    assert counts == {"train": 4, "val": 2}
    first = np.array(Image.open(tmp_path / "pairs/train/masks/training-data_A_1_000.png"))
    assert first[60, 30] == 1 and first[55, 55] == 2 and first[120, 120] == 0
    assert set(np.unique(first)) == {0, 1, 2}
    image = np.array(Image.open(tmp_path / "pairs/train/images/training-data_A_1_000.png"))
    assert image.dtype == np.uint8 and image.shape == (128, 128) and image.max() == 255
    train, val, classes, skipped = seg_folder_datasets(tmp_path / "pairs", None, None)
    assert classes == ["background", "nucleus", "micronucleus"] and not skipped
    assert len(train) == 4 and len(val) == 2
