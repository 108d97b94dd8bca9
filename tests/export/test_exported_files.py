"""Exported files run through their sidecars: ``predict`` and ``eval`` take an ``.onnx`` or
``.pt2`` as they take a checkpoint, and a sidecar that contradicts its file is refused before any
image is labelled with it."""

from __future__ import annotations

import json
import shutil

import pytest
import torch

from lightnets.cli import main
from lightnets.export import export_model, from_checkpoint, predict
from lightnets.export.backends import backend_from_file
from tests.conftest import DIGITS_RUN
from tests.test_readme import digit_png


@pytest.fixture(scope="module")
def exported(digits_run, tmp_path_factory):
    """The tiny digits run as a dynamic-batch ONNX file and a batch-2 ``.pt2``, with digit
    images to classify."""
    folder = tmp_path_factory.mktemp("exported")
    source = from_checkpoint(digits_run / "last.pt")
    onnx = export_model(source, "onnx", folder / "model.onnx", real_inputs=False).path
    pt2 = export_model(source, "pt2", folder / "model.pt2", dynamic_batch=False, batch_size=2,
                       real_inputs=False).path
    images = []
    for digit in (0, 5, 7):
        digit_png(digit)(folder / f"digit_{digit}.png")
        images.append(str(folder / f"digit_{digit}.png"))
    return onnx, pt2, images


@DIGITS_RUN
def test_predict_and_eval_take_exported_files(digits_run, exported, capsys):
    onnx, pt2, images = exported
    reference = predict(digits_run / "last.pt", images, top_k=3)
    for path in (onnx, pt2):  # three images through a file made for batches of two, too
        ours = predict(path, images, top_k=3)
        assert [p.top[0][0] for p in ours] == [p.top[0][0] for p in reference]
        for got, want in zip(ours, reference):
            assert [c for c, _, _ in got.top] == [c for c, _, _ in want.top]
            assert got.top[0][2] == pytest.approx(want.top[0][2], abs=1e-4)
    evals = []
    for path in (digits_run / "last.pt", onnx):
        assert main(["eval", "--checkpoint", str(path), "--limit-batches", "1", "--json",
                     "--confusion", str(onnx.parent / "confusion.png")]) == 0
        evals.append(json.loads(capsys.readouterr().out))
    assert evals[0]["count"] == evals[1]["count"] == 256
    assert evals[1]["top1"] == pytest.approx(evals[0]["top1"], abs=1 / 256)
    assert main(["predict", "--checkpoint", str(pt2), "--json", *images]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 3


@DIGITS_RUN
@pytest.mark.parametrize("lie, message", [
    ({"input_size": [3, 32, 32], "preprocess": {"in_chans": 3}},
     "the file does not take a 1x3x32x32 input"),
    ({"class_names": ["a", "b", "c"]}, r"outputs of shape \(1, 10\), the sidecar names 3"),
    ({"preprocess": {"input_size": 40}}, "the preprocessing makes 1x40x40 images, the input "
     "size is 1x32x32"),
    ({"artefact": "other.onnx"}, "describes 'other.onnx', not 'lie.onnx'"),
])
def test_a_sidecar_that_contradicts_its_file_is_refused(exported, tmp_path, lie, message):
    onnx, _, _ = exported
    shutil.copy(onnx, tmp_path / "lie.onnx")
    sidecar = json.loads(onnx.with_name("model.onnx.json").read_text())
    sidecar["artefact"] = "lie.onnx"
    for key, value in lie.items():
        sidecar[key] = {**sidecar[key], **value} if isinstance(value, dict) else value
    (tmp_path / "lie.onnx.json").write_text(json.dumps(sidecar))
    with pytest.raises(ValueError, match=message):
        backend_from_file(tmp_path / "lie.onnx")
    assert backend_from_file(onnx)[0](torch.zeros(2, 1, 32, 32)).shape == (2, 10)
