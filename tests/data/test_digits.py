"""The digits data: the fixed, stratified split and the bundle upscaled to any size and channels."""

from __future__ import annotations

import pytest
import torch

from lightnets.data import build_data, default_preprocess
from lightnets.data.digits import digits_split


def test_digits_split_is_fixed_disjoint_and_stratified():
    (train_x, train_y), (val_x, val_y) = digits_split()
    assert (len(train_y), len(val_y)) == (1442, 355)
    assert train_x.shape[1:] == (1, 8, 8) and 0 <= train_x.min() and train_x.max() <= 1
    assert val_y.bincount().tolist() == [35, 36, 35, 36, 36, 36, 36, 35, 34, 36]
    (again_x, _), _ = digits_split()
    assert torch.equal(train_x, again_x)
    # no validation image also appears in training
    train_rows = {tuple(row.tolist()) for row in train_x.flatten(1)}
    assert sum(tuple(row.tolist()) in train_rows for row in val_x.flatten(1)) < 5  # rare duplicates


@pytest.mark.parametrize("in_chans", [1, 3])
def test_digits_bundle_upscales_to_size_and_channels(in_chans):
    bundle = build_data("digits", default_preprocess("digits", 24, in_chans))
    image, label = bundle.val[0]
    assert image.shape == (in_chans, 24, 24) and image.dtype == torch.float32
    assert bundle.classes == [str(d) for d in range(10)] and 0 <= label < 10
    # normalised with the training split's statistics: roughly zero mean, unit spread
    batch = torch.stack([bundle.val[i][0] for i in range(64)])
    assert abs(batch.mean()) < 0.3 and 0.6 < batch.std() < 1.4
    augmented = torch.stack([bundle.train[0][0] for _ in range(4)])
    assert not torch.equal(augmented[0], augmented[1])  # random affine jitter
