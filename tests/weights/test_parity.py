"""Peers' checkpoints give the peer's logits: every pair key for key on the meta device, every
renaming rule and peer option numerically on its smallest instance (the exhaustive numeric sweep
over every pair is ``benchmarks/weights_parity.py``)."""

from __future__ import annotations

import warnings

import pytest
import torch

import lightnets
from lightnets.registry import list_models, peers_of
from lightnets.testing import (FORMATS, TOLERANCE, input_for, peer_model, relative_difference,
                               twin_pairs, write_peer)
from lightnets.weights.load import as_source

timm = pytest.importorskip("timm")
import torchvision  # noqa: E402

# the issue's coverage: torchvision's and timm's twins whose checkpoints must load
COVERAGE = {
    "torchvision": ["alexnet", "vgg*", "googlenet", "inception_v3", "resnet*", "resnext*",
                    "squeezenet1_0", "squeezenet1_1", "mobilenet_v2*", "mobilenet_v3_large",
                    "mobilenet_v3_small", "shufflenet_v2*"],
    "timm": ["resnet*", "resnext*", "mobilenet_v1_x1_0", "mobilenet_v2_x0_35",
             "mobilenet_v2_x0_5", "mobilenet_v2_x0_75", "mobilenet_v2_x1_0",
             "mobilenet_v2_x1_4", "mobilenet_v3_large", "mobilenet_v3_small", "ghostnet_x1_0",
             "xception", "se_resnet50", "inception_v3", "vgg*"],
}
# one instance per set of rules, with each option and reshape: (model, library). VGG: timm's
# vgg11 has the features rules without BN and timm's head, torchvision's vgg11_bn those with BN
# and torchvision's head; Inception v3: both libraries' files use the same rules; ResNet: the
# bottleneck's third convolution is in se_resnet50's rules
RULES = [("alexnet", "torchvision"), ("vgg11_bn", "torchvision"), ("vgg11", "timm"),
         ("googlenet", "torchvision"), ("inception_v3", "torchvision"),
         ("resnet18", "torchvision"), ("resnet18", "timm"), ("se_resnet50", "timm"),
         ("squeezenet1_0", "torchvision"), ("squeezenet1_1", "torchvision"),
         ("mobilenet_v2_x0_35", "torchvision"), ("mobilenet_v2_x0_35", "timm"),
         ("mobilenet_v3_small", "torchvision"), ("mobilenet_v3_small", "timm"),
         ("shufflenet_v2_x0_5", "torchvision"), ("mobilenet_v1_x1_0", "timm"),
         ("ghostnet_x1_0", "timm"), ("xception", "timm")]
# an option's opposite: without it the logits must differ (the option is needed, and the
# randomised BatchNorm makes the difference visible)
WITHOUT = {"stem_pool": "padded", "bn_eps": 1e-3, "act_layer": "relu", "transform_input": False}


def pair_ids(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{name}-{library}" for name, library in pairs]


def test_every_twin_of_the_issue_loads():
    pairs = set(twin_pairs())
    for library, patterns in COVERAGE.items():
        for name in list_models(patterns):
            if library in peers_of(name):
                assert (name, library) in pairs, f"{library}'s {name} twin has no weights rules"
    expected = {(n, lib) for lib, patterns in COVERAGE.items() for n in list_models(patterns)
                if lib in peers_of(n)}
    assert len(expected) == 59 and expected == pairs  # 32 torchvision, 27 timm


@pytest.mark.parametrize("name, library", twin_pairs(), ids=pair_ids(twin_pairs()))
def test_every_pair_maps_key_for_key(name, library):
    peer = peers_of(name)[library]
    kwargs = {**peer.kwargs, **peer.weights.pretrained_kwargs}
    with torch.device("meta"):
        model = (timm.create_model(peer.name, **kwargs) if library == "timm" else
                 torchvision.models.get_model(peer.name, weights=None, **kwargs))
    candidate = as_source(name, library, peer.weights, model.state_dict(), {})
    assert candidate.fit.ok, candidate.fit.describe()
    assert candidate.num_classes == 1000 and candidate.in_chans == 3


@pytest.mark.parametrize("name, library", RULES, ids=pair_ids(RULES))
def test_loads_with_the_peers_logits(name, library, tmp_path):
    peer = peer_model(name, library)
    path = write_peer(peer, library, FORMATS[library][-1], tmp_path)
    x = input_for(name)
    with torch.no_grad():
        expected = peer(x)
        # the logits depend on the input: a tensor loaded into the wrong place would show
        assert relative_difference(peer(input_for(name, seed=3)), expected)[0] > 0.01
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # notes on the preprocessing assumed
            ours = lightnets.create_model(name, checkpoint_path=path).eval()
        relative, _ = relative_difference(ours(x), expected)
        assert relative <= TOLERANCE
        for option in WITHOUT.keys() & ours.pretrained.model_args:  # each one is needed
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                other = lightnets.create_model(name, checkpoint_path=path,
                                               **{option: WITHOUT[option]}).eval()
            assert relative_difference(other(x), expected)[0] > 100 * TOLERANCE, option

