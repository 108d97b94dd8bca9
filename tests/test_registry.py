"""The registry: registration, lookup, wildcards, aliases and errors."""

from __future__ import annotations

import pytest
import torch

import lightnets
from lightnets import registry
from lightnets.models.mobilenet_v2 import MobileNetV2


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry, "_BUILDERS", dict(registry._BUILDERS))
    monkeypatch.setattr(registry, "_ALIASES", dict(registry._ALIASES))
    monkeypatch.setattr(registry, "_TASKS", dict(registry._TASKS))


def test_register_and_create(scratch_registry):
    @registry.register_model(aliases=["tiny_alias"])
    def tiny_test_net(**kwargs):
        return MobileNetV2(width_mult=0.1, **kwargs)

    assert "tiny_test_net" in lightnets.list_models("tiny*")
    assert "tiny_alias" not in lightnets.list_models("tiny*")
    assert "tiny_alias" in lightnets.list_models("tiny*", include_aliases=True)
    model = lightnets.create_model("tiny_alias", num_classes=3).eval()
    assert model(torch.randn(1, 3, 32, 32)).shape == (1, 3)
    info = lightnets.model_info("tiny_alias")  # not in the golden table: measured on meta
    assert info.name == "tiny_test_net" and info.aliases == ["tiny_alias"]
    default = lightnets.create_model("tiny_test_net")
    assert info.params == sum(p.numel() for p in default.parameters())
    assert info.macs > 0


def test_duplicate_name_raises(scratch_registry):
    def mobilenet_v2_x1_0(**kwargs):
        return MobileNetV2(**kwargs)

    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(mobilenet_v2_x1_0)

    def other(**kwargs):
        return MobileNetV2(**kwargs)

    with pytest.raises(ValueError, match="already registered"):
        registry.register_model(other, aliases=["mobilenet_v2"])


def test_unknown_name_lists_closest():
    with pytest.raises(registry.UnknownModelError, match="closest: .*mobilenet_v2") as error:
        lightnets.create_model("mobilenet_v7")
    assert "\n" not in str(error.value)
    with pytest.raises(ValueError, match="lightnets list"):
        lightnets.create_model("zzzzzzzz")


def test_bad_kwargs_give_one_line_errors():
    with pytest.raises(ValueError, match="does not accept the argument 'depth_mult'"):
        lightnets.create_model("mobilenet_v2", depth_mult=2)
    with pytest.raises(ValueError, match="num_classes"):
        lightnets.create_model("mobilenet_v2", num_classes=-1)
    with pytest.raises(ValueError, match="drop_rate"):
        lightnets.create_model("mobilenet_v2", drop_rate=1.5)
    with pytest.raises(ValueError, match="width_mult"):
        lightnets.create_model("mobilenet_v2", width_mult=0)


def test_wildcards():
    names = lightnets.list_models("mobilenet_v2_x?_5")
    assert names == ["mobilenet_v2_x0_5"]
    both = lightnets.list_models(["mobilenet_v2_x1_0", "mobilenet_v2_x1_4"])
    assert both == ["mobilenet_v2_x1_0", "mobilenet_v2_x1_4"]
    assert lightnets.list_models("nothing*") == []
    assert lightnets.list_models() == sorted(lightnets.list_models())


def test_a_variant_name_sets_defaults_that_arguments_override():
    # the one rule of the zoo: a name is a preset, every constructor argument can change it
    for preset, other, change in [("shufflenet_v1_g3_x1_0", "shufflenet_v1_g8_x0_5",
                                   dict(groups=8, width_mult=0.5)),
                                  ("shufflenet_v2_x1_0", "shufflenet_v2_x2_0",
                                   dict(width_mult=2.0)),
                                  ("mobilenet_v2_x0_5", "mobilenet_v2_x1_4", dict(width_mult=1.4)),
                                  ("resnext50_32x4d", "resnet50", dict(groups=1, base_width=64))]:
        changed = registry.meta_model(preset, **change).state_dict()
        expected = registry.meta_model(other).state_dict()
        assert {k: v.shape for k, v in changed.items()} == {k: v.shape for k, v in expected.items()}
    with pytest.raises(ValueError, match="does not accept the argument 'widht_mult'"):
        lightnets.create_model("mobilenet_v2", widht_mult=0.5)


def test_tasks_and_features_only(scratch_registry):
    assert registry.task_of("mobilenet_v2") == "classification"
    assert registry.task_of("lraspp_mobilenet_v3_large") == "segmentation"
    assert registry.task_of("fcos_shufflenet_v2_x1_0") == "detection"
    with pytest.raises(ValueError, match="unknown task 'keypoints'"):
        registry.register_model(lambda **kw: None, task="keypoints")

    @registry.register_model
    def not_a_classifier(**kwargs):
        return torch.nn.Conv2d(3, 3, 1)

    with pytest.raises(ValueError, match="features_only needs a classifier's trunk"):
        lightnets.create_model("fcos_resnet18", features_only=True)
    with pytest.raises(ValueError, match="not a lightnets Classifier"):
        lightnets.create_model("not_a_classifier", features_only=True)
    features = lightnets.create_model("mobilenet_v2_x0_5", features_only=True, out_indices=[-1])
    assert features.channels == [1280] and not hasattr(features, "classifier")
