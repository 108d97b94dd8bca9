"""The common model interface, over every registered model."""

from __future__ import annotations

import math

import pytest
import torch

import lightnets
from lightnets.profile import count_complexity
from lightnets.profile.model_info import golden, reference
from lightnets.registry import meta_model, task_of
from tests.conftest import cached_model, small_input, zoo_params

ZOO = zoo_params()


def test_zoo_is_not_empty():
    assert "mobilenet_v2_x1_0" in lightnets.list_models()


@pytest.mark.parametrize("name", ZOO)
def test_forward_backward(name):
    model = cached_model(name).train()
    x = small_input(model)
    out = model(x)
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()
    out.logsumexp(1).sum().backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    model.zero_grad(set_to_none=True)


@pytest.mark.parametrize("name", ZOO)
def test_eval_forward_and_aux_mechanism(name):
    model = cached_model(name).eval()
    assert model.task == task_of(name) == "classification"
    x = small_input(model, batch=1)
    with torch.no_grad():
        logits = model(x)
        logits_aux, aux = model(x, return_aux=True)
    assert aux == [], "eval mode must not return auxiliary outputs"
    torch.testing.assert_close(logits, logits_aux)


@pytest.mark.parametrize("name", ZOO)
@pytest.mark.parametrize("size", ["min", "default"])
def test_feature_info_matches_real_features(name, size):
    """Stage channels and strides against real shapes, at the minimum size (real tensors) and at
    the default size (meta device: shapes only, so VGG at 224 costs nothing)."""
    if size == "min":
        model = cached_model(name).eval()
        x = small_input(model, batch=1)
    else:
        model = meta_model(name)
        x = torch.empty(1, *model.default_input_size, device="meta")
    info = model.feature_info
    assert info, "feature_info must list the stages"
    reductions = [entry["reduction"] for entry in info]
    assert reductions == sorted(set(reductions)), (
        f"reductions not strictly increasing: {reductions}")
    assert info[-1]["num_chs"] == model.num_features
    modules = dict(model.named_modules())
    shapes: dict[str, torch.Size] = {}

    def recorder(key: str):
        def hook(_module, _inputs, output) -> None:
            shapes[key] = output.shape
        return hook

    hooks = [modules[e["module"]].register_forward_hook(recorder(e["module"])) for e in info]
    with torch.no_grad():
        model(x)
    for hook in hooks:
        hook.remove()
    for entry in info:
        shape = shapes[entry["module"]]
        assert shape[1] == entry["num_chs"], entry
        if size == "default":
            # valid-padding nets (Inception, AlexNet) are not exact multiples: nearest power of 2
            ratio = x.shape[2] / shape[2]
            assert round(math.log2(ratio)) == math.log2(entry["reduction"]), (entry, shape)
    if size == "min":  # maps may bottom out at 1x1 there: they must only never grow
        heights = [shapes[e["module"]][2] for e in info]
        assert heights == sorted(heights, reverse=True), heights


@pytest.mark.parametrize("name", ZOO)
def test_reset_classifier_and_pre_logits(name):
    torch.manual_seed(0)
    model = lightnets.create_model(name, num_classes=5).eval()
    x = small_input(model, batch=1)
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        model.reset_classifier(3)
        assert model(x).shape == (1, 3) and model.num_classes == 3
        model.reset_classifier(0)
        torch.testing.assert_close(model(x), pre)


@pytest.mark.parametrize("name", ZOO)
def test_one_channel_input_and_bad_input(name):
    with torch.device("meta"):
        model = lightnets.create_model(name, in_chans=1, num_classes=4).eval()
    h, w = model.min_input_size
    assert model(torch.empty(2, 1, h, w, device="meta")).shape == (2, 4)
    assert model.default_input_size[0] == 1
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.empty(2, 3, h, w, device="meta"))
    with pytest.raises(ValueError, match=r"\(N, 1, H, W\)"):
        model(torch.empty(1, h, w, device="meta"))
    with pytest.raises(ValueError, match="at least"):
        model(torch.empty(1, 1, h - 1, w, device="meta"))


@pytest.mark.parametrize("name", ZOO)
def test_complexity_matches_golden_table(name):
    counts = count_complexity(name)
    assert {"params": counts.params, "macs": counts.macs} == golden(name), (
        "architecture changed: update with `python -m lightnets.profile.model_info`")


@pytest.mark.parametrize("name", ZOO)
def test_complexity_matches_published_numbers(name):
    ref = reference(name)
    assert ref, f"{name} has no entry in reference/published.json"
    counts = golden(name)
    if ref["params"] is not None:
        assert counts["params"] == pytest.approx(ref["params"], rel=ref["params_tol"])
    if ref["macs"] is not None:
        assert counts["macs"] == pytest.approx(ref["macs"], rel=ref["macs_tol"])


# torch.export with a dynamic batch is tested for every model by the ONNX export it feeds
# (tests/export/test_export.py checks the file at batches 3 and 5, the traced one being 2)


@pytest.mark.parametrize("name", ZOO)
def test_model_info(name):
    info = lightnets.model_info(name)
    assert info.family and info.paper and info.task == "classification"
    assert info.params == golden(name)["params"]
    assert info.default_input_size[1] >= 224
