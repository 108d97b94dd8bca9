"""Binary segmentation: one output channel for two classes (``--binary``), its sigmoid
thresholded at the threshold recorded with the model (checkpoint and export sidecar), used by
eval and predict; mIoU over background and foreground; one-line refusals."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import lightnets
from lightnets.checkpoint import load_checkpoint
from lightnets.export.verify import compare
from lightnets.tasks.segmentation import evaluate_segmenter
from lightnets.train import TrainConfig, train


def cell_folder(root: Path) -> Path:
    """Pairs of 40x40 images with one bright square (class 1, 'cell') on a dark background,
    split into train/ and val/."""
    rng = np.random.default_rng(0)
    for split, count in (("train", 4), ("val", 2)):
        for kind in ("images", "masks"):
            (root / split / kind).mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 60, (40, 40, 3), dtype=np.uint8)
            mask = np.zeros((40, 40), np.uint8)
            y, x = rng.integers(2, 24, 2)
            mask[y:y + 14, x:x + 14] = 1
            image[mask == 1] += 150
            Image.fromarray(image).save(root / split / "images" / f"{i}.png")
            Image.fromarray(mask).save(root / split / "masks" / f"{i}.png")
    (root / "classes.txt").write_text("background\ncell\n")
    return root


def test_one_channel_is_thresholded_in_evaluation():
    z = torch.tensor([[[[-1.0, 0.5, 2.0, 3.0]]]])  # sigmoid 0.27, 0.62, 0.88, 0.95
    masks = torch.tensor([[[0, 0, 1, 1]]])
    loader = [(torch.zeros(1, 3, 1, 4), masks)]
    at_half = evaluate_segmenter(lambda x: z, loader, 2, threshold=0.5)
    assert at_half.confusion == [[1, 1], [0, 2]]
    at_high = evaluate_segmenter(lambda x: z, loader, 2, threshold=0.9)
    assert at_high.confusion == [[2, 0], [1, 1]]
    assert at_high.classes == ["0", "1"]
    # the loss is binary cross-entropy at the default threshold
    expected = torch.nn.functional.binary_cross_entropy_with_logits(z.flatten(),
                                                                    masks.flatten().float())
    assert at_half.loss == pytest.approx(float(expected), rel=1e-6)


def test_a_binary_segmenter_keeps_its_threshold():
    model = lightnets.create_model("lraspp_mobilenet_v3_small", num_classes=1, threshold=0.7)
    assert model.threshold == 0.7
    with torch.no_grad():
        assert model.eval()(torch.rand(1, 3, 40, 40)).shape == (1, 1, 40, 40)
    for bad in (0.0, 1.0, "high", True):
        with pytest.raises(ValueError, match="threshold must be a number in") as error:
            lightnets.create_model("lraspp_mobilenet_v3_small", num_classes=1, threshold=bad)
        assert "\n" not in str(error.value)


def test_binary_is_refused_where_it_does_not_fit(tmp_path, run_cli):
    status, _, err = run_cli("train", "--model", "mobilenet_v2_x0_35", "--binary", "--runs-dir",
                             str(tmp_path))
    assert status == 2 and "--binary is for segmenters" in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.slow
def test_binary_needs_two_classes(tmp_path, run_cli):
    pytest.importorskip("sklearn")  # digits-seg: 11 classes
    status, _, err = run_cli("train", "--model", "lraspp_mobilenet_v3_small", "--binary",
                             "--data", "digits-seg", "--runs-dir", str(tmp_path))
    assert status == 2 and "needs data of 2 classes" in err and "got 11" in err


@pytest.mark.slow
def test_train_eval_predict_export_with_the_recorded_threshold(tmp_path, run_cli, capsys):
    data = cell_folder(tmp_path / "cells")
    result = train(TrainConfig(model="lraspp_mobilenet_v3_small", data=str(data), binary=True,
                               loss="ce+dice", epochs=1, batch_size=2, input_size=40,
                               runs_dir=str(tmp_path / "runs"), name="cells", progress=False))
    capsys.readouterr()  # the run's own lines
    checkpoint = load_checkpoint(result.last_checkpoint)
    assert checkpoint.model_args["num_classes"] == 1 and checkpoint.model_args["threshold"] == 0.5
    assert checkpoint.class_names == ["background", "cell"]
    assert checkpoint.config["binary"] is True and checkpoint.config["loss"] == "ce+dice"
    last = str(result.last_checkpoint)
    status, out, err = run_cli("eval", "--checkpoint", last, "--json")
    assert status == 0, err
    eager = out
    status, out, err = run_cli("predict", "--checkpoint", last,
                               str(data / "val" / "images" / "0.png"), "--output",
                               str(tmp_path / "masks"))
    assert status == 0, err
    mask = np.asarray(Image.open(tmp_path / "masks" / "0.mask.png"))
    assert mask.shape == (40, 40) and set(np.unique(mask)) <= {0, 1}
    exported = tmp_path / "cells.onnx"
    status, _, err = run_cli("export", "--checkpoint", last, "--output", str(exported))
    assert status == 0, err
    sidecar = json.loads(Path(str(exported) + ".json").read_text())
    assert sidecar["model_args"]["threshold"] == 0.5 and sidecar["class_names"][1] == "cell"
    status, out, err = run_cli("eval", "--checkpoint", str(exported), "--json")
    assert status == 0, err
    assert json.loads(out)["miou"] == pytest.approx(json.loads(eager)["miou"], abs=1e-6)


def test_the_export_check_compares_a_binary_segmenters_decisions():
    # the arg-max of one channel always agrees: the check compares the logits' signs instead
    logits = torch.randn(2, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    assert compare(logits, logits, "random").top1_agreement == 1.0
    assert compare(logits, -logits, "random").top1_agreement == 0.0
