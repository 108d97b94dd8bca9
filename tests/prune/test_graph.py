"""The dependency graph on the zoo: every model prunes to a valid, cheaper network (meta device),
and pruning removes exactly the chosen channels (real weights, a representative subset; every
model: benchmarks/prune_zoo_check.py)."""

from __future__ import annotations

import pytest
import torch

import lightnets
from lightnets.profile import count_complexity
from lightnets.profile.model_info import golden
from lightnets.prune.allocate import select_channels
from lightnets.prune.graph import PruningGraph
from lightnets.prune.pruner import prune_model
from lightnets.prune.verify import removal_error
from lightnets.registry import meta_model
from tests.conftest import zoo_params
from tests.export.conftest import randomized

# ShuffleNet V1 with groups > 1: every channel meets a grouped convolution or a shuffle
UNPRUNABLE = {name for name in lightnets.list_models("shufflenet_v1_g[2348]_*")}


@pytest.mark.parametrize("name", zoo_params())
def test_every_model_prunes_to_a_valid_cheaper_network(name):
    """10% of the prunable channels (the first of each group, by position) on the meta device:
    the forward still runs, at the right output shape, with fewer MACs, and the metadata the
    head and the backbone read follows the new widths."""
    model = meta_model(name)
    graph = PruningGraph(model)
    if name in UNPRUNABLE:
        assert not graph.groups and set(graph.skipped.values()) == {
            "passes through a channel shuffle", "enters or leaves a grouped convolution"}
        return
    assert graph.groups, graph.skipped
    scores = {group: torch.arange(graph.channels(group), dtype=torch.float)
              for group in graph.groups}
    graph.prune(select_channels(scores, 0.1, "uniform"))
    assert count_complexity(model).macs < golden(name)["macs"]
    x = torch.empty(2, *model.default_input_size, device="meta")
    features = model.forward_features(x)
    assert model(x).shape == (2, 1000)
    assert features.shape[1] == model.num_features == model.feature_info[-1]["num_chs"]


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v3_small", "shufflenet_v2_x0_5",
                                  "shufflenet_v1_g1_x0_25", "googlenet", "squeezenet1_1",
                                  "alexnet"])
def test_pruning_removes_exactly_the_chosen_channels(name):
    """Residual groups, squeeze-excite, ShuffleNet V2's split / concat / shuffle, concatenated
    branches with auxiliary heads, SqueezeNet's convolutional classifier, AlexNet's flatten."""
    extra = {"aux_logits": True} if name == "googlenet" else {}
    torch.manual_seed(0)
    model = randomized(lightnets.create_model(name, num_classes=5, **extra))
    x = torch.randn(2, 3, *model.min_input_size)
    assert removal_error(model, x) < 1e-5
    if extra:  # the auxiliary heads read the pruned stages
        model.training = True
        assert [aux.shape for aux in model(x, return_aux=True)[1]] == [(2, 5), (2, 5)]


def test_ghost_modules_follow_their_pruned_width():
    torch.manual_seed(0)
    model = randomized(lightnets.create_model("ghostnet_x1_0", width_mult=0.5, num_classes=5))
    assert removal_error(model, torch.randn(2, 3, 32, 32)) < 1e-5
    ghost = model.features[2].ghost1
    assert ghost.out_channels == ghost.primary.conv.out_channels * 2 < 72


def test_grouped_convolutions_keep_their_channels():
    model = meta_model("resnext50_32x4d")
    graph = PruningGraph(model)
    assert graph.skipped["layer1.0.conv1.conv"] == "enters or leaves a grouped convolution"
    assert "layer1.0.downsample.conv" in graph.groups  # the residual widths still prune


def test_a_model_with_nothing_to_prune_says_why():
    model = lightnets.create_model("shufflenet_v1_g3_x0_25", num_classes=5)
    with pytest.raises(ValueError, match="no channels that can be pruned .*channel shuffle"):
        prune_model(model, ratio=0.2)


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return randomized(lightnets.create_model("mobilenet_v2_x0_25", num_classes=5, in_chans=1))


def test_prune_model_meets_the_macs_target():
    model, size = tiny_model(), (1, 32, 32)
    original = count_complexity(model, size).macs
    step = prune_model(model, "l1", target_macs=original // 2, input_size=size, round_to=1)
    assert step.macs_before == original
    assert 0.45 * original <= step.macs_after == count_complexity(model, size).macs <= original // 2
    assert model(torch.randn(2, 1, 32, 32)).shape == (2, 5)


@pytest.mark.parametrize("method", ["bn-scale", "taylor"])
def test_every_method_prunes_the_ratio_asked(method):
    model = tiny_model()
    batches = [(torch.randn(8, 1, 32, 32), torch.randint(0, 5, (8,)))]
    step = prune_model(model, method, ratio=0.3, input_size=(1, 32, 32),
                       batches=batches if method == "taylor" else None, round_to=1)
    assert 0.25 * step.channels_prunable <= step.channels_removed <= 0.3 * step.channels_prunable
    assert step.params_after == sum(p.numel() for p in model.parameters()) < step.params_before
    assert all(p.grad is None for p in model.parameters())  # taylor leaves no gradients behind
