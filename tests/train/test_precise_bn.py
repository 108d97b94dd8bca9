"""Precise BN: population statistics recomputed, used for slowly averaging BatchNorms."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.checkpoint import load_checkpoint
from lightnets.train import TrainConfig, loop, train
from lightnets.train.precise_bn import (has_slow_batchnorm, lagging_batchnorm,
                                        recompute_batchnorm_stats)
from tests.train.conftest import tiny_config


def test_precise_bn_recomputes_the_population_statistics():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4, momentum=0.01), nn.ReLU())
    assert has_slow_batchnorm(model) and not has_slow_batchnorm(nn.BatchNorm2d(4))
    batches = [torch.randn(8, 3, 6, 6) * (i + 1) + i for i in range(3)]
    with torch.no_grad():
        features = [model[0](b) for b in batches]
    assert recompute_batchnorm_stats(model, iter(batches)) == 3
    norm = model[1]
    # momentum None: the plain average of the per-batch means and (unbiased) variances
    means = torch.stack([f.mean(dim=(0, 2, 3)) for f in features])
    variances = torch.stack([f.transpose(0, 1).flatten(1).var(dim=1) for f in features])
    assert torch.allclose(norm.running_mean, means.mean(0), atol=1e-5)
    assert torch.allclose(norm.running_var, variances.mean(0), rtol=1e-4)
    assert norm.momentum == 0.01 and not model.training


@pytest.mark.parametrize("name", ["ssdlite_mobilenet_v2", "fasterrcnn"])
def test_a_detectors_statistics_come_from_its_network_without_targets(name):
    from lightnets.registry import create_model

    torch.manual_seed(0)
    detector = create_model(name, num_classes=3, min_size=64, max_size=64)
    batches = [torch.randn(2, 3, 64, 64) for _ in range(2)]
    first = next(m for m in detector.modules() if isinstance(m, nn.BatchNorm2d))
    captured = []
    hook = first.register_forward_pre_hook(lambda module, args: captured.append(args[0]))
    assert recompute_batchnorm_stats(detector, iter(batches), detector.batchnorm_forward) == 2
    hook.remove()
    means = torch.stack([c.mean(dim=(0, 2, 3)) for c in captured])
    assert len(captured) == 2 and torch.allclose(first.running_mean, means.mean(0), atol=1e-5)
    assert not detector.training
    if name.startswith("ssdlite"):  # the head's BatchNorm too
        head = [m for m in detector.head.modules() if isinstance(m, nn.BatchNorm2d)]
        assert head and all(int(m.num_batches_tracked) == 2 for m in head)


def test_short_epochs_and_slow_momentum_lag():
    default, slow = nn.BatchNorm2d(4), nn.BatchNorm2d(4, momentum=0.01)
    assert lagging_batchnorm(default, 15) and lagging_batchnorm(default, 37)  # 0.9^37 > 2%
    assert not lagging_batchnorm(default, 38) and not lagging_batchnorm(default, 44)
    assert lagging_batchnorm(slow, 10_000)  # MobileNetV3's: lags the weights whatever the epoch
    cumulative = nn.BatchNorm2d(4, momentum=None)
    assert not lagging_batchnorm(cumulative, 1) and not lagging_batchnorm(nn.ReLU(), 1)


@pytest.mark.slow
def test_slow_batchnorm_models_get_precise_bn(tmp_path):
    result = train(tiny_config(tmp_path, model="mobilenet_v3_small", epochs=1, batch_size=16,
                               limit_train_batches=2, name="v3"))
    stored = load_checkpoint(result.last_checkpoint).config
    assert stored["precise_bn_batches"] == loop.PRECISE_BN_BATCHES
    with pytest.raises(ValueError, match="precise_bn_batches must be >= 0"):
        train(TrainConfig(model="mobilenet_v3_small", precise_bn_batches=-1, progress=False,
                          runs_dir=str(tmp_path)))
