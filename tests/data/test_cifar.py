"""CIFAR-10 pickle folders: recognised, refused when the checksums fail, read when they pass."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets.cifar

from lightnets.data import build_data, classification_kind, default_preprocess
from lightnets.tasks import get_task


def write_fake_cifar10(root: Path, per_batch: int = 4) -> Path:
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                 "labels": rng.integers(0, 10, per_batch).tolist()}
        (folder / name).write_bytes(pickle.dumps(batch))
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship",
             "truck"]
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": names}))
    return folder


def test_cifar_pickle_folder(tmp_path, monkeypatch):
    folder = write_fake_cifar10(tmp_path)
    assert get_task("classification").data_kind(str(tmp_path)) == \
        classification_kind(str(folder)) == "cifar"
    # the generated files fail torchvision's MD5 check: a clear error, no crash
    with pytest.raises(ValueError, match="incomplete or corrupt"):
        build_data(str(folder), default_preprocess("cifar", 32, 3))
    # stand-ins for the real files: accept any checksum
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda *args: True)
    bundle = build_data(str(folder), default_preprocess("cifar", 32, 3))
    assert (len(bundle.train), len(bundle.val)) == (20, 4)
    assert bundle.classes[0] == "airplane" and bundle.train[0][0].shape == (3, 32, 32)
