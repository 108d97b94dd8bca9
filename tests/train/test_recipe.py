"""The regularisation recipe: each augmentation policy and random erasing reach the training
images, MixUp and CutMix the batch (soft targets summing to 1) and the loss (label smoothing
composed), the training accuracy counts the dominant class, the settings are checked and
recorded."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torchvision.transforms import v2

from lightnets.checkpoint import load_checkpoint
from lightnets.cli import main
from lightnets.data import build_data, default_preprocess
from lightnets.data.transforms import AUTO_AUGMENTS, DIGITS_MEAN, batch_mix, train_transform
from lightnets.tasks import CLASSIFICATION_TASK, classification
from lightnets.train import train
from tests.conftest import TINY_TRAIN
from tests.train.conftest import tiny_config


@pytest.mark.parametrize("policy", AUTO_AUGMENTS)
def test_each_policy_reaches_the_training_images(policy):
    preprocess = default_preprocess("digits", 32, 1)
    bundle = build_data("digits", preprocess, normalize=False, auto_augment=policy)
    steps = bundle.train.transform.transforms
    assert sum(isinstance(step, AUTO_AUGMENTS[policy]) for step in steps) == 1
    assert not any(isinstance(step, tuple(AUTO_AUGMENTS.values()))
                   for step in bundle.val.transform.transforms)
    torch.manual_seed(0)
    images = torch.stack([bundle.train[i][0] for i in range(8)])
    assert images.shape == (8, 1, 32, 32) and images.dtype == torch.float32


def test_random_erasing_fills_with_the_mean_colour_before_normalisation():
    torch.manual_seed(0)
    digits = train_transform(default_preprocess("digits", 32, 1), "digits", random_erase=1.0,
                             normalize=False)
    erased = digits(torch.ones(1, 8, 8))  # white (black only where the affine jitter fills)
    assert (erased == DIGITS_MEAN[0]).sum() >= 4
    folder = default_preprocess("folder", 32, 3)
    photo = train_transform(folder, "folder", random_erase=1.0, normalize=False)
    erased = photo(torch.full((3, 40, 40), 255, dtype=torch.uint8))
    mean = torch.tensor([round(m * 255) for m in folder["mean"]], dtype=torch.uint8)
    assert (erased == mean[:, None, None]).all(0).any()
    # the normalisation the trainer runs on the device makes the erased pixels about zero
    normalised = v2.Normalize(folder["mean"], folder["std"])(erased.float() / 255)
    assert normalised.abs().min() < 0.02


@pytest.mark.parametrize("mixup,cutmix,kind", [(0.2, 0.0, v2.MixUp), (0.0, 1.0, v2.CutMix),
                                               (0.2, 1.0, v2.RandomChoice)])
def test_mixing_reaches_the_batch_as_soft_targets(mixup, cutmix, kind):
    mix = batch_mix(mixup, cutmix, 10)
    assert isinstance(mix, kind)
    torch.manual_seed(0)
    images, labels = torch.randn(6, 1, 16, 16), torch.tensor([0, 1, 2, 3, 4, 5])
    for _ in range(4):  # both branches of the random choice
        mixed, soft = mix(images, labels)
        assert mixed.shape == images.shape and soft.shape == (6, 10)
        assert torch.allclose(soft.sum(1), torch.ones(6)) and (soft >= 0).all()
        assert not torch.equal(mixed, images)
    assert batch_mix(0.0, 0.0, 10) is None


def test_the_loss_under_soft_targets_composes_label_smoothing():
    torch.manual_seed(0)
    logits, labels = torch.randn(4, 5), torch.tensor([0, 3, 1, 1])
    hard = classification.classification_loss(logits, [], labels, 0.0, 0.1)
    one_hot = F.one_hot(labels, 5).float()
    assert torch.allclose(classification.classification_loss(logits, [], one_hot, 0.0, 0.1), hard)
    soft = 0.7 * one_hot + 0.3 * one_hot.roll(1, 0)  # a MixUp blend
    by_hand = -((0.9 * soft + 0.1 / 5) * logits.log_softmax(1)).sum(1).mean()
    assert torch.allclose(classification.classification_loss(logits, [], soft, 0.0, 0.1),
                          by_hand)


def test_training_accuracy_counts_the_dominant_class_of_a_blend():
    logits = torch.tensor([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]])
    soft = torch.tensor([[0.6, 0.4, 0.0], [0.0, 0.3, 0.7]])
    hits, counted = CLASSIFICATION_TASK.hits_and_counts(logits, soft)
    assert (float(hits), float(counted)) == (1.0, 2.0)


@pytest.mark.slow
def test_a_run_with_the_whole_recipe_records_it_and_mixes_the_loss(tmp_path, monkeypatch):
    seen = []
    real = classification.classification_loss

    def spy(logits, aux_logits, labels, aux_weight, smoothing):
        seen.append(tuple(labels.shape))
        return real(logits, aux_logits, labels, aux_weight, smoothing)

    monkeypatch.setattr(classification, "classification_loss", spy)
    result = train(tiny_config(tmp_path, epochs=1, limit_train_batches=2, batch_size=16,
                               auto_augment="trivialaugment", random_erase=0.25, mixup=0.2,
                               cutmix=1.0, drop_path_rate=0.1))
    assert seen == [(16, 10), (16, 10)]
    config = json.loads((result.run_dir / "config.json").read_text())
    assert (config["auto_augment"], config["random_erase"], config["mixup"], config["cutmix"],
            config["drop_path_rate"]) == ("trivialaugment", 0.25, 0.2, 1.0, 0.1)
    assert load_checkpoint(result.last_checkpoint).model_args["drop_path_rate"] == 0.1
    assert 0 <= result.history[0]["train_acc"] <= 1


@pytest.mark.parametrize("argv,expected", [
    (["--mixup", "-1"], "mixup is a Beta distribution's alpha"),
    (["--random-erase", "2"], "random_erase must be a probability in [0, 1]"),
    (["--drop-path", "1"], "drop_path_rate must be in [0, 1)"),
    (["--no-augment", "--auto-augment", "augmix"], "they need augmentation on"),
    (["--model", "shufflenet_v2_x0_5", "--drop-path", "0.1"], "has no residual branch"),
    (["--model", "lraspp_mobilenet_v3_small", "--cutmix", "1"], "--cutmix: classifiers only"),
    (["--mosaic", "0.5", "--zoom-crop"], "--mosaic, --zoom-crop: detectors only"),
    (["--model", "gfl_shufflenet_v2_x1_0", "--mosaic", "2"],
     "mosaic is a fraction of the training images, in [0, 1]; got 2.0"),
    (["--model", "gfl_shufflenet_v2_x1_0", "--no-augment", "--zoom-crop"],
     "mosaic, zoom_crop and colour_jitter augment the training images"),
    (["--model", "gfl_shufflenet_v2_x1_0", "--no-augment", "--colour-jitter"],
     "they need augmentation on"),
    (["--colour-jitter"], "--colour-jitter: detectors only"),
])
def test_bad_recipes_are_one_line_errors(argv, expected, tmp_path, capsys):
    assert main(["train", *TINY_TRAIN, *argv, "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and expected in err and "\n" not in err
    assert not any(tmp_path.iterdir())
