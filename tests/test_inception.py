"""Inception blocks (v1 and v3), GoogLeNet and Inception v3: shapes, torchvision equivalence,
the paper form of GoogLeNet and the auxiliary classifiers."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

import lightnets
from lightnets.layers.inception import (
    GoogLeNetAuxHead,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    InceptionModule,
    InceptionV3AuxHead,
)
from lightnets.models.googlenet import GoogLeNet
from lightnets.profile import count_complexity

TORCHVISION = {"googlenet": torchvision.models.googlenet,
               "inception_v3": torchvision.models.inception_v3}


def randomise(module: nn.Module) -> None:
    """Non-trivial weights and BN statistics, so that a mismatch cannot hide behind identity BN."""
    torch.manual_seed(0)
    with torch.no_grad():
        for param in module.parameters():
            param.normal_(0, 0.1)
        for name, buffer in module.named_buffers():
            if name.endswith("running_mean"):
                buffer.normal_(0, 0.1)
            elif name.endswith("running_var"):
                buffer.uniform_(0.002, 0.5)  # small variances make BN's eps matter


def copy_by_order(source: nn.Module, target: nn.Module) -> None:
    """Load ``source``'s parameters and buffers into ``target`` position by position."""
    pairs = [*zip(source.parameters(), target.parameters()),
             *zip(source.buffers(), target.buffers())]
    assert len(pairs) == len(list(source.parameters())) + len(list(source.buffers()))
    with torch.no_grad():
        for src, dst in pairs:
            dst.copy_(src)


# -- blocks -------------------------------------------------------------------------------------
@pytest.mark.parametrize("kernel", [3, 5])
def test_inception_module_shapes_and_gradients(kernel):
    block = InceptionModule(16, 8, 4, 12, 2, 6, 5, large_kernel_size=kernel)
    x = torch.randn(2, 16, 7, 9, requires_grad=True)
    out = block(x)
    assert out.shape == (2, 8 + 12 + 6 + 5, 7, 9) and block.out_channels == 31
    assert block.branches["conv5x5"][1].conv.kernel_size == (kernel, kernel)
    out.sum().backward()
    assert x.grad is not None and all(p.grad is not None for p in block.parameters())


@pytest.mark.parametrize("kernel", [0, 4, -3])
def test_inception_module_rejects_even_kernels(kernel):
    with pytest.raises(ValueError, match="large_kernel_size"):
        InceptionModule(16, 8, 4, 12, 2, 6, 5, large_kernel_size=kernel)


def test_inception_module_without_norm_has_biased_convs():
    block = InceptionModule(16, 8, 4, 12, 2, 6, 5, norm_layer=None)
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 6 and all(c.bias is not None for c in convs)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in block.modules())


@pytest.mark.parametrize(("block", "in_size", "out_size"), [
    (InceptionA(32, pool_channels=16), 9, 9),
    (InceptionB(32), 9, 4),               # unpadded 3x3/2: 35 -> 17 at full size
    (InceptionC(32, mid_channels=8), 6, 6),
    (InceptionD(32), 9, 4),               # 17 -> 8 at full size
    (InceptionE(32), 3, 3),
], ids=["A", "B", "C", "D", "E"])
def test_inception_v3_block_shapes_and_gradients(block, in_size, out_size):
    x = torch.randn(2, 32, in_size, in_size, requires_grad=True)
    out = block(x)
    assert out.shape == (2, block.out_channels, out_size, out_size)
    out.square().mean().backward()
    assert x.grad is not None and all(p.grad is not None for p in block.parameters())


def test_inception_v3_block_widths():
    assert InceptionA(192, 32).out_channels == 256
    assert InceptionB(288).out_channels == 768
    assert InceptionC(768, 128).out_channels == 768
    assert InceptionD(768).out_channels == 1280
    assert InceptionE(1280).out_channels == 2048


def test_inception_c_factorises_into_1xn_and_nx1():
    block = InceptionC(32, mid_channels=8, kernel_size=7)
    kernels = [m.kernel_size for m in block.branches["conv7x7"].modules()
               if isinstance(m, nn.Conv2d)]
    assert kernels == [(1, 1), (1, 7), (7, 1)]
    kernels = [m.kernel_size for m in block.branches["double7x7"].modules()
               if isinstance(m, nn.Conv2d)]
    assert kernels == [(1, 1), (7, 1), (1, 7), (7, 1), (1, 7)]


def test_blocks_use_release_batchnorm_eps():
    norms = [m for m in InceptionE(32).modules() if isinstance(m, nn.BatchNorm2d)]
    assert norms and all(n.eps == 1e-3 for n in norms)


# -- torchvision equivalence ----------------------------------------------------------------------
@pytest.mark.parametrize("aux_logits", [False, True])
@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_parameter_and_buffer_shapes_equal_torchvision(name, aux_logits):
    with torch.device("meta"):
        ours = lightnets.create_model(name, aux_logits=aux_logits)
        reference = TORCHVISION[name](aux_logits=aux_logits, init_weights=True)
    assert [p.shape for p in ours.parameters()] == [p.shape for p in reference.parameters()]
    assert [b.shape for b in ours.buffers()] == [b.shape for b in reference.buffers()]


@pytest.mark.parametrize(("name", "size"), [("googlenet", 37), ("inception_v3", 87)])
def test_same_function_as_torchvision_with_its_weights(name, size):
    reference = TORCHVISION[name](aux_logits=False, init_weights=False).eval()
    randomise(reference)
    ours = lightnets.create_model(name).eval()
    copy_by_order(reference, ours)
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)


def test_aux_heads_compute_torchvision_functions():
    from torchvision.models.googlenet import InceptionAux as GoogLeNetAux
    from torchvision.models.inception import InceptionAux as InceptionV3Aux

    for ours, reference, channels, grid in [
            (GoogLeNetAuxHead(512, 10), GoogLeNetAux(512, 10), 512, 14),
            (InceptionV3AuxHead(768, 10), InceptionV3Aux(768, 10), 768, 17)]:
        reference.eval()
        randomise(reference)
        copy_by_order(reference, ours.eval())
        x = torch.randn(2, channels, grid, grid)
        with torch.no_grad():
            torch.testing.assert_close(ours(x), reference(x), rtol=1e-4, atol=1e-4)


# -- complexity -----------------------------------------------------------------------------------
def test_default_complexity_is_torchvision():
    googlenet, inception = count_complexity("googlenet"), count_complexity("inception_v3")
    assert googlenet.params == 6_624_904 and round(googlenet.macs / 1e6) == 1498
    assert inception.params == 23_834_568 and round(inception.macs / 1e6) == 5713
    assert inception.input_size == (3, 299, 299)
    with torch.device("meta"):
        aux = lightnets.create_model("inception_v3", aux_logits=True)
    assert sum(p.numel() for p in aux.parameters()) == 27_161_264


def test_googlenet_paper_form():
    """5x5 kernels as in the paper: ~6.8M params, ~1.5G MACs (Table 1; see the module docstring
    for the first row's discrepancy)."""
    with torch.device("meta"):
        with_bn = GoogLeNet(large_kernel_size=5)
        plain = GoogLeNet(large_kernel_size=5, norm_layer=None)
    counts, plain_counts = count_complexity(with_bn), count_complexity(plain)
    assert (counts.params, counts.macs) == (7_005_832, 1_582_671_872)
    assert (plain_counts.params, plain_counts.macs) == (6_998_552, 1_582_671_872)
    assert counts.params == pytest.approx(6.8e6, rel=0.035)
    assert counts.macs == pytest.approx(1.5e9, rel=0.06)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in plain.modules())
    weights = sum(p.numel() for n, p in plain.named_parameters() if n.endswith("weight"))
    assert weights == pytest.approx(6.8e6, rel=0.03)


@pytest.mark.parametrize(("name", "size"), [("googlenet", 15), ("inception_v3", 75)])
def test_min_input_size_is_the_smallest_that_works(name, size):
    with torch.device("meta"):
        model = lightnets.create_model(name).eval()
    assert model.min_input_size == (size, size)
    assert model.forward_features(torch.empty(1, 3, size, size, device="meta")).shape[-1] == 1
    with pytest.raises(RuntimeError):
        model.forward_features(torch.empty(1, 3, size - 1, size - 1, device="meta"))


# -- auxiliary classifiers ------------------------------------------------------------------------
AUX_CASES = [("googlenet", 2, 0.3, 32), ("inception_v3", 1, 0.4, 75)]


@pytest.mark.parametrize("name", ["googlenet", "inception_v3"])
def test_no_aux_heads_by_default(name):
    with torch.device("meta"):
        model = lightnets.create_model(name)
    assert model.aux_head_names == []
    assert not any(isinstance(m, (GoogLeNetAuxHead, InceptionV3AuxHead)) for m in model.modules())


@pytest.mark.parametrize(("name", "count", "weight", "size"), AUX_CASES)
def test_aux_outputs_in_training_mode_only(name, count, weight, size):
    torch.manual_seed(0)
    model = lightnets.create_model(name, num_classes=6, aux_logits=True).train()
    assert model.aux_loss_weight == weight
    x = torch.randn(2, 3, size, size)
    assert model(x).shape == (2, 6)  # plain call: logits alone, even when training
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (2, 6) and len(aux) == count
    assert all(a.shape == (2, 6) for a in aux)
    loss = logits.logsumexp(1).sum() + weight * sum(a.logsumexp(1).sum() for a in aux)
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"
    assert all(p.grad is not None for n in model.aux_head_names
               for p in getattr(model, n).parameters())

    model.eval()
    with torch.no_grad():
        plain = model(x)
        logits, aux = model(x, return_aux=True)
    assert aux == []
    torch.testing.assert_close(logits, plain)


@pytest.mark.parametrize(("name", "count", "weight", "size"), AUX_CASES)
def test_reset_classifier_resets_aux_heads(name, count, weight, size):
    model = lightnets.create_model(name, num_classes=6, aux_logits=True).train()
    model.reset_classifier(3)
    x = torch.randn(2, 3, size, size)
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (2, 3) and [a.shape for a in aux] == [(2, 3)] * count
    model.reset_classifier(0)
    logits, aux = model(x, return_aux=True)
    assert logits.shape == (2, model.num_features) and len(aux) == count


def test_inception_v3_aux_head_small_grid():
    """Below 17x17 the fixed 5x5/3 pool is replaced by an adaptive one; at 17x17 and above it is
    the reference's pooling."""
    head = InceptionV3AuxHead(8, 4).eval()
    with torch.no_grad():
        assert head(torch.randn(2, 8, 3, 3)).shape == (2, 4)
        x = torch.randn(2, 8, 20, 20)
        pooled = head.conv5x5(head.conv1x1(F.avg_pool2d(x, 5, 3)))
        expected = head.fc(pooled.mean((2, 3)))
        torch.testing.assert_close(head(x), expected)


def test_googlenet_aux_taps_and_order():
    with torch.device("meta"):
        model = lightnets.create_model("googlenet", aux_logits=True)
    assert model.aux_taps == {"inception4a": ["aux1"], "inception4d": ["aux2"]}
    assert model.aux1.conv.in_channels == 512 and model.aux2.conv.in_channels == 528
    assert model.aux1.drop.p == 0.7 and model.head_drop.p == 0.2
