"""The segmentation losses on hand-made masks: a perfect prediction gives the minimum, ignored
pixels change nothing (value and gradients), gradients are finite, known values, weighted
sums, binary (one-channel) logits, one-line refusals of bad specs, and a resumed run keeping
its loss."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from lightnets.checkpoint import Checkpoint
from lightnets.segment.losses import LOSSES, class_logits, make_loss, parse_loss
from lightnets.tasks.segmentation import segmentation_loss
from lightnets.train import TrainConfig
from lightnets.train.config import resumed_config

IGNORE = 255
NAMES = sorted(LOSSES)


def hand_mask() -> torch.Tensor:
    """Two 6x6 masks of three classes: a square of 1, a thin line of 2 (a rare class), the rest
    background, and a band of ignored pixels."""
    masks = torch.zeros(2, 6, 6, dtype=torch.long)
    masks[0, 1:4, 1:4] = 1
    masks[1, :, 4] = 2
    masks[1, 0, :] = IGNORE
    return masks


def perfect_logits(masks: torch.Tensor, classes: int = 3, scale: float = 60.0) -> torch.Tensor:
    """Logits whose softmax is (to float precision) one-hot on the labels."""
    labels = masks.clone()
    labels[labels == IGNORE] = 0
    return F.one_hot(labels, classes).permute(0, 3, 1, 2).float() * scale


@pytest.mark.parametrize("name", NAMES)
def test_perfect_prediction_gives_the_minimum(name):
    masks = hand_mask()
    loss = make_loss(name, IGNORE)
    perfect = float(loss(perfect_logits(masks), masks))
    assert perfect == pytest.approx(0.0, abs=1e-5)
    torch.manual_seed(0)
    for _ in range(3):
        assert float(loss(torch.randn(2, 3, 6, 6) * 3, masks)) > perfect + 1e-3


@pytest.mark.parametrize("name", NAMES)
def test_ignored_pixels_change_nothing(name):
    masks = hand_mask()
    torch.manual_seed(1)
    logits = torch.randn(2, 3, 6, 6, requires_grad=True)
    loss = make_loss(name, IGNORE)
    value = loss(logits, masks)
    value.backward()
    grad = logits.grad.clone()
    ignored = masks == IGNORE
    assert grad.permute(0, 2, 3, 1)[ignored].abs().max() == 0  # no gradient reaches them
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    other = logits.detach().clone()
    other.permute(0, 2, 3, 1)[ignored] = torch.randn(int(ignored.sum()), 3) * 50
    assert float(loss(other, masks)) == pytest.approx(float(value.detach()), rel=1e-6)


@pytest.mark.parametrize("name", NAMES)
def test_all_ignored_is_zero_with_a_graph(name):
    masks = torch.full((1, 4, 4), IGNORE)
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    value = make_loss(name, IGNORE)(logits, masks)
    value.backward()
    assert float(value.detach()) == 0.0 and logits.grad.abs().sum() == 0


def test_known_values():
    # two pixels, two classes, probabilities (0.5, 0.5) on both: Dice = 2*0.5 / (0.5+0.5+1)
    # for class 0 (one pixel), the same for class 1; Tversky = 0.5 / (0.5 + 0.3*0.5 + 0.7*0.5)
    logits, masks = torch.zeros(1, 2, 1, 2), torch.tensor([[[0, 1]]])
    assert float(make_loss("dice", IGNORE)(logits, masks)) == pytest.approx(0.5)
    assert float(make_loss("tversky", IGNORE)(logits, masks)) == pytest.approx(0.5)
    # focal at p_t = 0.5: 0.25 * log 2; the Lovász loss of two half-wrong pixels per class:
    # errors (0.5, 0.5), Jaccard increments (1/2, 1/2) -> 0.5
    assert float(make_loss("focal", IGNORE)(logits, masks)) == pytest.approx(0.25 * 0.693147,
                                                                             rel=1e-5)
    assert float(make_loss("lovasz", IGNORE)(logits, masks)) == pytest.approx(0.5)


def test_weighted_sums_and_aux_heads():
    masks = hand_mask()
    torch.manual_seed(2)
    logits, aux = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    ce, dice = make_loss("ce", IGNORE)(logits, masks), make_loss("dice", IGNORE)(logits, masks)
    assert float(make_loss("ce+0.5*dice", IGNORE)(logits, masks)) == pytest.approx(
        float(ce + 0.5 * dice), rel=1e-6)
    assert float(ce) == pytest.approx(float(F.cross_entropy(logits, masks, ignore_index=IGNORE)))
    combined = segmentation_loss(logits, [aux], masks, 0.4, loss="ce+dice")
    expected = make_loss("ce+dice", IGNORE)
    assert float(combined) == pytest.approx(float(expected(logits, masks)
                                                  + 0.4 * expected(aux, masks)), rel=1e-6)


def test_one_channel_is_binary_cross_entropy():
    torch.manual_seed(3)
    z = torch.randn(2, 1, 5, 5)
    masks = (torch.rand(2, 5, 5) > 0.5).long()
    masks[0, 0, 0] = IGNORE
    keep = masks != IGNORE
    bce = F.binary_cross_entropy_with_logits(z[:, 0][keep], masks[keep].float())
    assert float(make_loss("ce", IGNORE)(z, masks)) == pytest.approx(float(bce), rel=1e-6)
    assert torch.equal(class_logits(z).argmax(1), (z[:, 0] > 0).long())
    assert torch.equal(class_logits(z, 0.8).argmax(1), (z[:, 0].sigmoid() > 0.8).long())


@pytest.mark.parametrize("spec, expected", [
    ("ce", ((1.0, "ce"),)), ("ce+dice", ((1.0, "ce"), (1.0, "dice"))),
    ("CE + 0.5*Dice", ((1.0, "ce"), (0.5, "dice"))), ("2*focal+lovasz", ((2.0, "focal"),
                                                                          (1.0, "lovasz")))])
def test_parser_reads_sums(spec, expected):
    assert parse_loss(spec) == expected


@pytest.mark.parametrize("spec, message", [
    ("", "empty loss"), ("dize", "bad loss term 'dize'"), ("ce+", "bad loss term ''"),
    ("0*dice", "must be positive"), ("ce+ce", "appears twice"), ("ce*0.5", "bad loss term"),
    ("-1*ce", "bad loss term")])
def test_parser_refuses_bad_specs_in_one_line(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        parse_loss(spec)
    assert "\n" not in str(error.value)


def test_resume_keeps_the_loss_and_refuses_another():
    stored = TrainConfig(model="lraspp_mobilenet_v3_small", data="digits-seg", epochs=3,
                         loss="ce+dice", binary=False)
    checkpoint = Checkpoint("lraspp_mobilenet_v3_small", {"num_classes": 11}, {},
                            config=stored.to_dict(), epoch=1, path="runs/seg/last.pt")
    kept = resumed_config(TrainConfig(resume="runs/seg"), checkpoint)
    assert kept.loss == "ce+dice"
    with pytest.raises(ValueError, match="loss 'ce\\+dice' -> 'lovasz'"):
        resumed_config(TrainConfig(resume="runs/seg", loss="lovasz"), checkpoint)
