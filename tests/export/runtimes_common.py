"""What the phone-runtime tests share: a checkpoint exported to a format and checked, predict on
the file against the checkpoint, and a deliberately broken file caught by the check."""

from __future__ import annotations

import shutil

import pytest

from lightnets.export import artefact, export_model, load_source, predict
from lightnets.export.formats import FORMATS, format_of_file
from lightnets.export.verify import VerificationError, random_images
from tests.export.test_export import fake_checkpoint
from tests.test_readme import digit_png


def export_checkpoint(folder, format: str):
    """A SqueezeNet 1.1 checkpoint (1 channel, 40x40, three classes) exported to ``format``;
    returns the checkpoint, the export's result and three digit images."""
    checkpoint = fake_checkpoint(folder / "best.pt")
    result = export_model(load_source(checkpoint=checkpoint), format,
                          folder / ("model" + FORMATS[format].suffix))
    images = []
    for digit in (0, 5, 7):
        digit_png(digit)(folder / f"digit_{digit}.png")
        images.append(str(folder / f"digit_{digit}.png"))
    return checkpoint, result, images


def assert_predicts_like_the_checkpoint(checkpoint: str, path, images: list[str]) -> None:
    """``predict`` on the file (through its sidecar) gives the checkpoint's classes."""
    reference = predict(checkpoint, images, top_k=3)
    ours = predict(path, images, top_k=3)
    for got, want in zip(ours, reference, strict=True):
        assert [c for c, _, _ in got.top] == [c for c, _, _ in want.top]
        assert got.top[0][2] == pytest.approx(want.top[0][2], abs=1e-4)


def assert_broken_file_is_caught(checkpoint: str, path, tmp_path, monkeypatch) -> None:
    """The check, rerun on a copy of the file whose runtime's outputs are perturbed by 1%,
    fails and removes the copy."""
    copy = tmp_path / ("broken" + path.name[path.name.index("."):])
    shutil.copy(path, copy)
    format = format_of_file(copy).name
    source = load_source(checkpoint=checkpoint)
    # a 1% change of outputs that are all zero would change nothing
    assert source.model.eval()(random_images(source.input_size)).abs().min() > 0
    plan = artefact.plan_export(source, format, copy, True, 1, True, 18, 1e-4, True, None)
    real = artefact.artefact_runner
    monkeypatch.setattr(artefact, "artefact_runner",
                        lambda *a, **k: (lambda x: real(*a, **k)(x) * 1.01))
    with pytest.raises(VerificationError, match="does not match the eager model"):
        artefact.verify_artefact(source, source.model, None, plan)
    assert not copy.exists()

