"""Family test helpers: torchvision shape equality, stage sizes, GoogLeNet/Inception v3 checks."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

import lightnets
from lightnets.layers.inception import GoogLeNetAuxHead, InceptionV3AuxHead
from lightnets.testing import copy_by_order, randomise
from tests.conftest import check_aux_outputs


def assert_torchvision_shapes(ours: nn.Module, theirs: nn.Module, buffers: bool = True) -> None:
    """Same parameter shapes in the same order (and the same buffer shapes unless told not)."""
    assert [p.shape for p in ours.parameters()] == [p.shape for p in theirs.parameters()]
    if buffers:
        assert [b.shape for b in ours.buffers()] == [b.shape for b in theirs.buffers()]


def assert_meta_torchvision_shapes(name: str, buffers: bool = True, **kwargs) -> None:
    """Ours and torchvision's model of the same name, built with ``kwargs`` on the meta device."""
    with torch.device("meta"):
        ours = lightnets.create_model(name, **kwargs)
        theirs = getattr(torchvision.models, name)(**kwargs)
    assert_torchvision_shapes(ours, theirs, buffers)


def assert_reset_keeps_shapes(name: str) -> None:
    """After ``reset_classifier(10)`` ours has the shapes of torchvision's 10-class model."""
    with torch.device("meta"):
        ours = lightnets.create_model(name, num_classes=3)
        ours.reset_classifier(10)
        theirs = getattr(torchvision.models, name)(num_classes=10)
    assert_torchvision_shapes(ours, theirs, buffers=False)


def stage_sizes(model: nn.Module, size: int) -> list[int]:
    """The spatial size at each ``feature_info`` stage for a ``size`` x ``size`` meta input."""
    modules = dict(model.named_modules())
    sizes: list[int] = []
    hooks = [modules[e["module"]].register_forward_hook(
        lambda _m, _i, out: sizes.append(out.shape[-1])) for e in model.feature_info]
    model.forward_features(torch.empty(1, 3, size, size, device="meta"))  # no size check
    for hook in hooks:
        hook.remove()
    return sizes


# -- GoogLeNet and Inception v3 -------------------------------------------------------------------
class InceptionChecks:
    """The checks GoogLeNet and Inception v3 share; each family's test file subclasses this as
    ``Test...`` with its name and sizes (without the ``Test`` prefix it is not collected here)."""

    name: str
    function_size: int  # the input of the torchvision function check
    min_size: int  # the smallest input that works
    aux_count: int  # the auxiliary heads with aux_logits=True
    aux_weight: float
    aux_size: int  # an input the auxiliary heads accept

    @pytest.mark.parametrize("aux_logits", [False, True])
    def test_parameter_and_buffer_shapes_equal_torchvision(self, aux_logits):
        with torch.device("meta"):
            ours = lightnets.create_model(self.name, aux_logits=aux_logits)
            reference = getattr(torchvision.models, self.name)(aux_logits=aux_logits,
                                                               init_weights=True)
        assert_torchvision_shapes(ours, reference)

    @pytest.mark.slow
    def test_same_function_as_torchvision_with_its_weights(self):
        torch.manual_seed(0)
        reference = getattr(torchvision.models, self.name)(aux_logits=False,
                                                           init_weights=False).eval()
        randomise(reference)
        ours = lightnets.create_model(self.name).eval()
        copy_by_order(reference, ours)
        x = torch.randn(2, 3, self.function_size, self.function_size)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)

    def test_min_input_size_is_the_smallest_that_works(self):
        size = self.min_size
        with torch.device("meta"):
            model = lightnets.create_model(self.name).eval()
        assert model.min_input_size == (size, size)
        assert model.forward_features(torch.empty(1, 3, size, size, device="meta")).shape[-1] == 1
        with pytest.raises(RuntimeError):
            model.forward_features(torch.empty(1, 3, size - 1, size - 1, device="meta"))

    def test_no_aux_heads_by_default(self):
        with torch.device("meta"):
            model = lightnets.create_model(self.name)
        assert model.aux_head_names == []
        assert not any(isinstance(m, (GoogLeNetAuxHead, InceptionV3AuxHead))
                       for m in model.modules())

    @pytest.mark.slow
    def test_aux_outputs_in_training_mode_only(self):
        count, weight, size = self.aux_count, self.aux_weight, self.aux_size
        torch.manual_seed(0)
        model = lightnets.create_model(self.name, num_classes=6, aux_logits=True).train()
        assert model.aux_loss_weight == weight
        check_aux_outputs(model, torch.randn(2, 3, size, size), count, (2, 6))

    def test_reset_classifier_resets_aux_heads(self):
        count, size = self.aux_count, self.aux_size
        model = lightnets.create_model(self.name, num_classes=6, aux_logits=True).train()
        model.reset_classifier(3)
        x = torch.randn(2, 3, size, size)
        logits, aux = model(x, return_aux=True)
        assert logits.shape == (2, 3) and [a.shape for a in aux] == [(2, 3)] * count
        model.reset_classifier(0)
        logits, aux = model(x, return_aux=True)
        assert logits.shape == (2, model.num_features) and len(aux) == count
