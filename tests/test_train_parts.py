"""The training loop's parts on their own: losses (auxiliary heads, distillation), schedule,
weight-decay groups, atomic checkpoints, RNG round trip, configuration checks."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightnets import registry
from lightnets.checkpoint import load_checkpoint, save_checkpoint
from lightnets.models.base import Classifier, stage_info
from lightnets.train import TrainConfig, loop, train
from lightnets.train.config import resolve_config
from lightnets.train.distill import distillation_loss
from lightnets.train.optim import build_optimizer, param_groups, warmup_cosine
from lightnets.train.rng import capture_rng, restore_rng


def test_aux_logits_enter_the_loss_with_their_weight():
    torch.manual_seed(0)
    logits, aux = torch.randn(4, 5), [torch.randn(4, 5), torch.randn(4, 5)]
    labels = torch.tensor([0, 1, 2, 3])
    expected = F.cross_entropy(logits, labels) + 0.3 * sum(F.cross_entropy(a, labels) for a in aux)
    assert torch.allclose(loop.classification_loss(logits, aux, labels, 0.3, 0.0), expected)
    assert torch.allclose(loop.classification_loss(logits, [], labels, 0.3, 0.0),
                          F.cross_entropy(logits, labels))


class TinyAuxNet(Classifier):
    """A two-conv net with one auxiliary head, as GoogLeNet/Inception v3 have."""

    family, min_input_size, aux_loss_weight = "test", (8, 8), 0.3

    def __init__(self, num_classes: int = 10, in_chans: int = 3, drop_rate: float = 0.0,
                 aux_logits: bool = False):
        super().__init__(num_classes, in_chans, drop_rate)
        self.features = nn.Sequential(nn.Conv2d(in_chans, 8, 3, 2, 1), nn.BatchNorm2d(8),
                                      nn.ReLU())
        self.feature_info = [stage_info(8, 2, "features")]
        self.aux = (nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, num_classes))
                    if aux_logits else None)
        self.build_head(8)

    def forward(self, x, return_aux=False):
        features = self.forward_features(x)
        logits = self.forward_head(features)
        if not return_aux:
            return logits
        return logits, ([self.aux(features)] if self.training and self.aux else [])


def test_training_switches_on_and_uses_auxiliary_heads(tmp_path, monkeypatch):
    monkeypatch.setitem(registry._BUILDERS, "tiny_aux_net", lambda **kw: TinyAuxNet(**kw))
    seen = []
    real = loop.classification_loss

    def spy(logits, aux_logits, labels, aux_weight, smoothing):
        seen.append((len(aux_logits), aux_weight))
        return real(logits, aux_logits, labels, aux_weight, smoothing)

    monkeypatch.setattr(loop, "classification_loss", spy)
    result = train(TrainConfig(model="tiny_aux_net", epochs=1, batch_size=16, input_size=16,
                               limit_train_batches=2, limit_val_batches=1, progress=False,
                               runs_dir=str(tmp_path)))
    assert seen == [(1, 0.3), (1, 0.3)]
    assert load_checkpoint(result.last_checkpoint).model_args["aux_logits"] is True
    seen.clear()  # unless the user turns them off
    train(TrainConfig(model="tiny_aux_net", epochs=1, batch_size=16, input_size=16,
                      limit_train_batches=1, limit_val_batches=1, progress=False,
                      runs_dir=str(tmp_path), model_args={"aux_logits": False}))
    assert seen == [(0, 0.3)]


def test_distillation_loss_is_zero_when_student_matches_and_scales_with_t_squared():
    torch.manual_seed(0)
    teacher = torch.randn(8, 10)
    assert distillation_loss(teacher, teacher, 4.0).abs() < 1e-6
    student = torch.randn(8, 10)
    for temperature in (1.0, 3.0):
        soft_teacher = (teacher / temperature).softmax(1)
        kl = (soft_teacher * (soft_teacher.log() - (student / temperature).log_softmax(1))).sum(1)
        assert torch.allclose(distillation_loss(student, teacher, temperature),
                              kl.mean() * temperature ** 2, atol=1e-5)


def test_warmup_then_cosine():
    factor = warmup_cosine(warmup_steps=4, total_steps=12)
    assert [factor(s) for s in range(4)] == [0.25, 0.5, 0.75, 1.0]
    assert factor(4) == 1.0 and math.isclose(factor(8), 0.5) and factor(12) == 0.0
    assert all(factor(s) >= factor(s + 1) for s in range(4, 12))


def test_no_weight_decay_on_norms_and_biases():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(4, 2))
    decay, no_decay = param_groups(model, 0.1)
    assert [p.shape for p in decay["params"]] == [(4, 3, 3, 3), (2, 4)]
    assert len(no_decay["params"]) == 4 and no_decay["weight_decay"] == 0.0
    sgd = build_optimizer(model, "sgd", 0.1, 1e-4)
    assert sgd.param_groups[0]["nesterov"] and sgd.param_groups[0]["weight_decay"] == 1e-4
    assert isinstance(build_optimizer(model, "adamw", 1e-3, 0.05), torch.optim.AdamW)


def test_checkpoint_writes_are_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1}, path)

    def broken_save(payload, target):
        open(target, "wb").write(b"half a checkpo")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint({"epoch": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=True) == {"epoch": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


def test_rng_states_round_trip_through_weights_only_load(tmp_path):
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    save_checkpoint({"rng": capture_rng()}, tmp_path / "rng.pt")
    first = (torch.rand(3), random.random(), np.random.rand())
    restore_rng(torch.load(tmp_path / "rng.pt", weights_only=True)["rng"])
    again = (torch.rand(3), random.random(), np.random.rand())
    assert torch.equal(first[0], again[0]) and first[1:] == again[1:]


def test_config_defaults_per_data_and_unknown_fields():
    digits = resolve_config(TrainConfig(), "digits", 224)
    assert (digits.input_size, digits.in_chans, digits.optimizer) == (32, 1, "sgd")
    folder = resolve_config(TrainConfig(epochs=3), "folder", 224)
    assert (folder.input_size, folder.in_chans, folder.optimizer, folder.epochs) == (
        224, 3, "adamw", 3)
    with pytest.raises(ValueError, match="unknown configuration field"):
        TrainConfig.from_dict({"model": "x", "lerning_rate": 1})
    with pytest.raises(ValueError, match="label_smoothing"):
        resolve_config(TrainConfig(label_smoothing=1.5), "digits", 224)


def test_cpu_autocast_only_where_it_helps(monkeypatch):
    from lightnets.train import runtime

    cpu = torch.device("cpu")
    monkeypatch.setattr(runtime, "native_bf16", lambda: (True, "native bf16 (test)"))
    assert runtime.pick_amp("auto", cpu, 224) == torch.bfloat16
    assert runtime.pick_amp("auto", cpu, 32) is None  # small inputs: no gain measured
    assert runtime.pick_amp("bf16", cpu, 32) == torch.bfloat16  # asked for explicitly
    assert runtime.pick_amp("off", cpu, 224) is None
    monkeypatch.setattr(runtime, "native_bf16", lambda: (False, "no native bf16 (test)"))
    assert runtime.pick_amp("auto", cpu, 224) is None
    with pytest.raises(ValueError, match="fp16 needs a CUDA device"):
        runtime.pick_amp("fp16", cpu)


def test_precise_bn_recomputes_the_population_statistics():
    from lightnets.train.precise_bn import has_slow_batchnorm, recompute_batchnorm_stats

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


def test_slow_batchnorm_models_get_precise_bn(tmp_path):
    result = train(TrainConfig(model="mobilenet_v3_small", epochs=1, batch_size=16,
                               limit_train_batches=2, limit_val_batches=1, progress=False,
                               runs_dir=str(tmp_path), name="v3"))
    stored = load_checkpoint(result.last_checkpoint).config
    assert stored["precise_bn_batches"] == loop.PRECISE_BN_BATCHES
    with pytest.raises(ValueError, match="precise_bn_batches must be >= 0"):
        train(TrainConfig(model="mobilenet_v3_small", precise_bn_batches=-1, progress=False,
                          runs_dir=str(tmp_path)))
