"""The interface, counts and parity of every registered segmenter (the classifiers' whole-zoo
tests, tests/models/test_zoo.py, do not see them)."""

from __future__ import annotations

import pytest
import torch

import lightnets
from lightnets.profile import count_complexity
from lightnets.profile.counter import MacCounter
from lightnets.profile.model_info import golden, reference
from lightnets.registry import meta_model, peers_of, task_of
from tests.conftest import assert_takes_any_backbone, zoo_params

SEGMENTERS = zoo_params(task="segmentation")
TORCHVISION = ["fcn_resnet50", "fcn_resnet101", "deeplabv3_resnet50", "deeplabv3_resnet101",
               "deeplabv3_mobilenet_v3_large", "lraspp_mobilenet_v3_large"]
LIGHT = ["lraspp_ghostnet_x1_0", "lraspp_shufflenet_v2_x1_0", "deeplabv3plus_mobilenet_v2"]


def test_the_registry_lists_models_by_task():
    names = lightnets.list_models(task="segmentation")
    assert set(TORCHVISION) <= set(names) and len(names) >= 12
    assert not set(names) & set(lightnets.list_models(task="classification"))
    every_task = [name for task in ("classification", "segmentation", "detection")
                  for name in lightnets.list_models(task=task)]
    assert sorted(every_task) == lightnets.list_models()
    with pytest.raises(ValueError, match="unknown task"):
        lightnets.list_models(task="keypoints")


@pytest.mark.parametrize("name", SEGMENTERS)
def test_interface_counts_and_published_numbers(name):
    model = meta_model(name)
    assert model.task == task_of(name) == "segmentation"
    assert model.default_input_size == (3, 520, 520) and model.num_classes == 21
    assert model.family and model.paper
    assert model(torch.empty(1, 3, 97, 131, device="meta")).shape == (1, 21, 97, 131)
    counts = count_complexity(model)  # at 520x520
    assert {"params": counts.params, "macs": counts.macs} == golden(name), (
        "architecture changed: update with `python -m lightnets.profile.model_info`")
    ref = reference(name)
    if name not in TORCHVISION:
        assert not ref, "only torchvision publishes numbers for these pairs"
        return
    assert peers_of(name)["torchvision"].name == name
    assert counts.params == ref["params"] and ref["miou"] > 50
    if ref["macs"] is not None:
        assert counts.macs == pytest.approx(ref["macs"], rel=ref["macs_tol"])
    else:  # torchvision counts its auxiliary head, run here only with return_aux in training
        with torch.no_grad(), MacCounter() as counter:
            model.train()(torch.empty(2, 3, 520, 520, device="meta"), return_aux=True)
        assert counter.macs / 2 == pytest.approx(ref["macs_with_aux"], rel=ref["macs_tol"])
        assert counter.macs / 2 > counts.macs


def test_model_info():
    info = lightnets.model_info("lraspp_mobilenet_v3_large")
    assert info.task == "segmentation" and info.default_input_size == (3, 520, 520)
    assert info.params == 3_221_538 and info.reference["miou"] == 57.9
    assert info.family == "LR-ASPP (MobileNetV3)" and "Howard" in info.paper


def test_the_heads_by_name_take_any_backbone():
    """``create_model("unet", backbone=...)`` is the registered pair where there is one (smp's
    center block on VGG included), and any other classifier of the zoo where there is not."""
    for head, pair in [("unet", "unet_vgg16_bn"), ("fpn", "fpn_ghostnet_x1_0"),
                       ("lraspp", "lraspp_shufflenet_v2_x1_0")]:
        assert_takes_any_backbone(head, pair, pair.removeprefix(head + "_"))
    assert meta_model("pspnet", backbone="squeezenet1_1").family == "PSPNet (SqueezeNet)"
    assert meta_model("unet").family == "U-Net (MobileNetV2)"


@pytest.mark.slow
def test_train_any_backbone_under_a_head_by_name(tmp_path, run_cli):
    """``--model pspnet --backbone NAME`` trains PSPNet on that classifier; the checkpoint
    records the backbone, so evaluation rebuilds the same network."""
    from lightnets.checkpoint import load_checkpoint

    status, printed, _ = run_cli("train", "--model", "pspnet", "--backbone", "squeezenet1_1",
                                 "--epochs", "1", "--batch-size", "4", "--limit-train-batches",
                                 "1", "--limit-val-batches", "1", "--no-progress",
                                 "--runs-dir", str(tmp_path))
    assert status == 0 and "training pspnet with backbone squeezenet1_1" in printed
    last = tmp_path / "pspnet_squeezenet1_1-digits-seg" / "last.pt"
    checkpoint = load_checkpoint(last)
    assert checkpoint.model_name == "pspnet" and checkpoint.model_args["backbone"] == \
        "squeezenet1_1"
    assert checkpoint.build_model().family == "PSPNet (SqueezeNet)"
    status, printed, _ = run_cli("eval", "--checkpoint", str(last), "--limit-batches", "1")
    assert status == 0 and "mIoU" in printed
    status, _, err = run_cli("train", "--model", "unet_resnet18", "--backbone", "resnet34")
    assert status != 0 and "or a segmentation head by name" in err


@pytest.mark.parametrize("name", LIGHT)
def test_light_segmenters_train(name):
    torch.manual_seed(0)
    model = lightnets.create_model(name, num_classes=3).train()
    logits = model(torch.randn(2, 3, 64, 48))
    assert logits.shape == (2, 3, 64, 48) and torch.isfinite(logits).all()
    logits.logsumexp(1).mean().backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing, f"parameters without gradient: {missing[:5]}"


def test_exports_with_dynamic_batch_and_size():
    torch.manual_seed(0)
    model = lightnets.create_model("lraspp_mobilenet_v3_small", num_classes=3).eval()
    dims = {0: torch.export.Dim("batch", max=64), 2: torch.export.Dim("height", min=32, max=1024),
            3: torch.export.Dim("width", min=32, max=1024)}
    with torch.no_grad():
        program = torch.export.export(model, (torch.randn(2, 3, 64, 64),), dynamic_shapes=(dims,))
        x = torch.randn(3, 3, 96, 72)
        torch.testing.assert_close(program.module()(x), model(x), rtol=1e-4, atol=1e-4)
