"""Prediction: the training preprocessing applied to image files, and the backends agreeing."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from lightnets.checkpoint import load_checkpoint
from lightnets.cli import main
from lightnets.data import eval_transform
from lightnets.data.digits import digits_split
from lightnets.export import predict
from lightnets.export.predict import predict_runner
from tests.conftest import DIGITS_RUN
from tests.export.conftest import SIZE, relative_error


def digit_png(folder, index: int) -> tuple[str, torch.Tensor, int]:
    """A validation digit saved as an 8x8 grey PNG; returns the path, the tensor and label."""
    _, (images, labels) = digits_split()
    path = folder / f"digit{index}.png"
    Image.fromarray((images[index, 0].numpy() * 255).round().astype(np.uint8), "L").save(path)
    return str(path), images[index], int(labels[index])


@DIGITS_RUN
def test_predict_uses_the_training_preprocessing(digits_run, tmp_path, capsys):
    paths = [digit_png(tmp_path, i) for i in range(3)]
    assert main(["predict", "--checkpoint", str(digits_run), "--json", "--top-k", "3",
                 *[p for p, _, _ in paths]]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [r["image"] for r in results] == [p for p, _, _ in paths]
    for result in results:
        probabilities = [t["probability"] for t in result["top"]]
        assert len(probabilities) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1 + 1e-6
        assert all(t["class"] == str(t["index"]) for t in result["top"])
    # a digit read from a PNG is preprocessed as the same digit in training is
    state = load_checkpoint(digits_run)
    transform = eval_transform(state.preprocess)
    path, tensor, _ = paths[0]
    from_file = transform(Image.open(path).convert("L"))
    assert torch.allclose(from_file, transform(tensor), atol=0.02)
    assert main(["predict", "--checkpoint", str(digits_run), paths[1][0]]) == 0
    assert "digit1.png:" in capsys.readouterr().out
    assert len(predict(digits_run / "best.pt", [Image.open(path)], top_k=20)[0].top) == 10


@DIGITS_RUN
def test_predict_backends_agree(digits_run, tmp_path, capsys):
    images = [digit_png(tmp_path, i)[0] for i in range(4)]
    eager = predict(digits_run, images, top_k=3, device="cpu")
    exported = predict(digits_run, images, top_k=3, backend="onnxruntime")
    for ours, theirs in zip(eager, exported):
        assert [i for _, i, _ in ours.top] == [i for _, i, _ in theirs.top]
        assert [p for _, _, p in ours.top] == pytest.approx([p for _, _, p in theirs.top],
                                                            abs=1e-4)
    with pytest.raises(SystemExit):
        main(["predict", "--checkpoint", str(digits_run), "--backend", "tflite", images[0]])
    assert "invalid choice: 'tflite'" in capsys.readouterr().err


@pytest.mark.xdist_group("backends")
def test_predict_runner(model):
    preprocess = {"input_size": 32, "in_chans": 3}
    runner = predict_runner(model, "onnxruntime", preprocess)
    x = torch.randn(2, *SIZE)
    with torch.no_grad():
        assert relative_error(model(x), runner(x)) < 1e-4
    with pytest.raises(ValueError, match="runs on the CPU"):
        predict_runner(model, "onnxruntime", preprocess, "meta")
