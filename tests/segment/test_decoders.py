"""U-Net, PSPNet and FPN (lightnets/layers/unet.py, pspnet.py, fpn.py): on every backbone of the
zoo at sizes not divisible by 32, their options and errors, and segmentation_models_pytorch's
(smp's) parameter shapes, state dicts and ``save_pretrained`` folders."""

from __future__ import annotations

import json
import re
import warnings

import pytest
import torch
import torch.nn.functional as F

import lightnets
from lightnets.export.onnx import onnx_session, run_session
from lightnets.layers.pspnet import adaptive_average
from lightnets.registry import meta_model, peers_of
from lightnets.segment import create_segmenter
from lightnets.testing import TOLERANCE, randomise, relative_difference
from tests.conftest import zoo_params

DECODERS = ("unet", "pspnet", "fpn")
SMP_PAIRS = [name for name in lightnets.list_models(task="segmentation")
             if "smp" in peers_of(name)]


def odd_size(backbone: str) -> tuple[int, int]:
    """65x97, or odd sizes just above the backbone's smallest input."""
    height, width = meta_model(backbone).min_input_size
    return max(65, height + 1 | 1), max(97, width + 3 | 1)


@pytest.mark.slow  # three segmenters per backbone, 54 backbones
@pytest.mark.parametrize("backbone", zoo_params())
def test_every_decoder_on_every_backbone_keeps_odd_sizes(backbone):
    height, width = odd_size(backbone)
    for head in DECODERS:
        with torch.device("meta"):
            model = create_segmenter(head, backbone, num_classes=3).eval()
            out = model(torch.empty(2, 3, height, width))
        assert out.shape == (2, 3, height, width), head
        assert model.family.startswith({"unet": "U-Net", "pspnet": "PSPNet", "fpn": "FPN"}[head])


def test_unet_computes_odd_sizes_and_trains():
    torch.manual_seed(0)
    model = lightnets.create_model("unet_mobilenet_v2", num_classes=4).train()
    logits = model(torch.randn(2, 3, 33, 47))
    assert logits.shape == (2, 4, 33, 47) and torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_stages_read_and_light_options():
    with torch.device("meta"):
        vgg = lightnets.create_model("unet_vgg16_bn")
        psp = lightnets.create_model("pspnet_resnet50")
        fpn = lightnets.create_model("fpn_mobilenet_v2")
        full = lightnets.create_model("unet_mobilenet_v2")
        light = lightnets.create_model("unet_mobilenet_v2", separable=True,
                                       decoder_channels=(128, 64, 32, 16, 8))
    # VGG: the maps before each pool, then the last pool's (stride 32), as smp's encoder
    assert vgg.backbone.taps[-1] == "features.17" and vgg.backbone.reductions == [2, 4, 8, 16, 32]
    assert psp.backbone.taps == ["layer2"] and not hasattr(psp.backbone, "layer3")
    assert fpn.backbone.reductions == [4, 8, 16, 32]

    def decoder(model):
        return sum(p.numel() for p in model.head.parameters())

    assert decoder(light) < decoder(full) / 10


@pytest.mark.parametrize("head, options, message", [
    ("unet", {"decoder_channels": (64, 32)}, "decoder_channels must be 5 positive widths"),
    ("fpn", {"decoder_channels": 48}, "multiples of 32"),
    ("pspnet", {"separable": True}, "the pspnet head takes no separable"),
    ("unet", {"rates": (1, 2)}, "the unet head takes no rates"),
    ("fpn", {"low_level": 1}, "chooses the stages it reads"),
])
def test_bad_options_are_one_line_errors(head, options, message):
    with torch.device("meta"), pytest.raises(ValueError, match=re.escape(message)):
        create_segmenter(head, "resnet18", **options)


def test_pyramid_pooling_bins_equal_adaptive_pooling():
    x = torch.randn(2, 3, 13, 29)
    for bins in (1, 2, 3, 6):
        torch.testing.assert_close(adaptive_average(x, bins), F.adaptive_avg_pool2d(x, bins))


# -- segmentation_models_pytorch ----------------------------------------------------------------
smp = pytest.importorskip("segmentation_models_pytorch")


def smp_model(name: str, **kwargs) -> torch.nn.Module:
    peer = peers_of(name)["smp"]
    return getattr(smp, peer.name)(**{**peer.kwargs, **kwargs})


@pytest.mark.parametrize("name", SMP_PAIRS)
def test_smp_parameter_shapes_in_order(name):
    with torch.device("meta"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = smp_model(name)
    ignored = peers_of(name)["smp"].weights.ignored  # PSPNet: the stages smp keeps but never runs
    used = [tuple(p.shape) for key, p in theirs.named_parameters()
            if not any(re.search(pattern, key.replace("encoder.", "backbone.", 1))
                       for pattern in ignored)]
    assert used == [tuple(p.shape) for p in meta_model(name).parameters()]


def randomised_smp(name: str, x: torch.Tensor, **kwargs) -> torch.nn.Module:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = smp_model(name, **kwargs)
    randomise(theirs, x, weights="he", seed=0)
    return theirs.eval()


@pytest.mark.slow
@pytest.mark.parametrize("name", ["unet_resnet18", "pspnet_mobilenet_v2", "fpn_mobilenet_v2"])
def test_smp_state_dict_loads_with_equal_outputs(name, tmp_path, one_thread):
    x = torch.randn(2, 3, 64, 96)
    theirs = randomised_smp(name, x)
    torch.save(theirs.state_dict(), tmp_path / "smp.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = lightnets.create_model(name, checkpoint_path=tmp_path / "smp.pth").eval()
    assert ours.pretrained.source == "smp" and ours.num_classes == 21
    with torch.no_grad():
        assert relative_difference(ours(x), theirs(x))[0] < TOLERANCE


@pytest.mark.slow
def test_smp_folder_names_its_model_and_widths(tmp_path, one_thread):
    x = torch.randn(1, 3, 64, 64)
    theirs = randomised_smp("unet_resnet18", x, classes=3, decoder_channels=(64, 32, 32, 16, 8))
    theirs.save_pretrained(tmp_path / "smp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ours = lightnets.create_model(None, checkpoint_path=tmp_path / "smp").eval()
    assert ours.pretrained.model_name == "unet_resnet18" and ours.num_classes == 3
    assert ours.pretrained.model_args["decoder_channels"] == [64, 32, 32, 16, 8]
    with torch.no_grad():
        assert relative_difference(ours(x), theirs(x))[0] < TOLERANCE


def test_smp_folder_with_arguments_lightnets_lacks_is_refused(tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        smp.Unet("resnet18", encoder_weights=None, decoder_attention_type="scse",
                 classes=2).save_pretrained(tmp_path / "scse")
    with pytest.raises(ValueError, match="decoder_attention_type='scse' has no lightnets twin"):
        lightnets.create_model("unet_resnet18", checkpoint_path=tmp_path / "scse")


# -- the workflow -------------------------------------------------------------------------------
@pytest.mark.slow  # a training run, its evaluation, an ONNX export checked at two sizes, int8
def test_unet_trains_evaluates_and_exports_on_digits_seg(tmp_path, run_cli):
    runs = tmp_path / "runs"
    status, _, _ = run_cli("train", "--model", "unet_mobilenet_v2", "--epochs", "1",
                           "--batch-size", "8", "--input-size", "32", "--limit-train-batches",
                           "2", "--limit-val-batches", "1", "--no-progress", "--runs-dir",
                           str(runs), "--name", "unet", "--json")
    assert status == 0
    status, out, _ = run_cli("eval", "--checkpoint", str(runs / "unet" / "last.pt"), "--json",
                             "--limit-batches", "1", "--batch-size", "8")
    assert status == 0
    scores = json.loads(out)
    assert scores["count"] == 8 and 0 <= scores["miou"] <= scores["pixel_accuracy"] <= 1
    onnx = tmp_path / "unet.onnx"
    status, _, _ = run_cli("export", "--checkpoint", str(runs / "unet" / "last.pt"),
                           "--output", str(onnx))
    assert status == 0
    sidecar = json.loads((tmp_path / "unet.onnx.json").read_text())
    assert sidecar["dynamic_size"] and sidecar["dynamic_batch"]
    session = onnx_session(onnx, threads=1)
    model = lightnets.create_model(None, checkpoint_path=runs / "unet" / "last.pt").eval()
    # the trained 32x32 (whose deepest map is 1x1: traced there, torch.export would fix the
    # size) and another size, not divisible by 32
    for x in (torch.randn(1, 3, 32, 32), torch.randn(1, 3, 37, 53)):
        with torch.no_grad():
            assert relative_difference(run_session(session, x), model(x))[0] < TOLERANCE
    # int8 in ONNX Runtime, gated by the mIoU drop (any drop allowed: two steps of training)
    status, out, _ = run_cli("quantize", "--checkpoint", str(runs / "unet" / "last.pt"),
                             "--calib-data", "digits-seg", "--calib-size", "16", "--max-drop",
                             "100", "--output", str(tmp_path / "unet.int8.onnx"),
                             "--latency-batch", "1", "--json")
    report = json.loads(out)
    assert status == 0 and report["metric"] == "miou" and 0 <= report["reduced_miou"] <= 1
    assert 0 <= report["fp32_miou"] <= 1 and (tmp_path / "unet.int8.onnx").is_file()
