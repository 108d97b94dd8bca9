"""Segmentation metrics: mIoU, pixel accuracy and per-class IoU from one confusion matrix, the
ignored index, and the per-pixel loss."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightnets.data import IGNORE_INDEX
from lightnets.tasks.segmentation import (confusion_counts, evaluate_segmenter, scores,
                                          segmentation_loss)


def test_scores_of_a_hand_counted_confusion_matrix():
    # true x predicted: class 0 IoU 8 / (10 + 9 - 8), class 1 IoU 4 / (6 + 6 - 4)
    confusion = torch.tensor([[8, 2, 0], [1, 4, 1], [0, 0, 0]])
    miou, accuracy, per_class = scores(confusion)
    assert per_class[0] == pytest.approx(8 / 11) and per_class[1] == pytest.approx(0.5)
    # class 2 is predicted once: present, IoU 0
    assert per_class[2] == 0.0 and miou == pytest.approx((8 / 11 + 0.5 + 0) / 3)
    assert accuracy == pytest.approx(12 / 16)
    miou, _, per_class = scores(torch.tensor([[3, 0, 0], [0, 2, 0], [0, 0, 0]]))
    assert per_class[2] is None and miou == 1.0  # neither labelled nor predicted: left out


def test_ignored_pixels_count_nowhere():
    labels = torch.tensor([[0, 1], [IGNORE_INDEX, 1]])
    predicted = torch.tensor([[0, 1], [1, 0]])
    counts = confusion_counts(predicted, labels, 2).view(2, 2)
    assert counts.tolist() == [[1, 0], [1, 1]]
    logits = torch.randn(1, 2, 2, 2)
    masks = labels[None].clone()
    loss = segmentation_loss(logits, [], masks, 0.0)
    changed = masks.clone()
    changed[0, 1, 0] = IGNORE_INDEX
    assert loss == segmentation_loss(logits, [], changed, 0.0)  # already ignored
    aux = torch.randn(1, 2, 2, 2)
    assert segmentation_loss(logits, [aux], masks, 0.5) == pytest.approx(
        float(loss + 0.5 * segmentation_loss(aux, [], masks, 0.0)))


def test_evaluate_segmenter_perfect_and_shifted_predictions():
    masks = torch.zeros(4, 16, 16, dtype=torch.uint8)
    masks[:, 4:10, 4:10] = 1
    masks[:, 12:, 12:] = 2
    masks[:, 0, :] = IGNORE_INDEX
    images = masks[:, None].float()

    def perfect(x):
        index = x[:, 0].long().clamp(max=2)
        return torch.nn.functional.one_hot(index, 3).permute(0, 3, 1, 2).float() * 10

    loader = DataLoader(TensorDataset(images, masks), batch_size=3)
    result = evaluate_segmenter(perfect, loader, 3, examples=2)
    assert result.miou == 1.0 and result.pixel_accuracy == 1.0 and result.count == 4
    assert len(result.examples) == 2 and result.examples[0][1].shape == (16, 16)
    shifted = evaluate_segmenter(lambda x: perfect(x).roll(2, dims=-1), loader, 3)
    assert shifted.miou < 0.8 and shifted.per_class_iou[1] == pytest.approx(24 / 48)
    # logits at a quarter of the size are resized to the masks
    coarse = evaluate_segmenter(lambda x: perfect(x)[..., ::2, ::2], loader, 3)
    assert coarse.count == 4 and 0.5 < coarse.miou < 1.0
