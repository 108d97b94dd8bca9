"""What every phone/edge runtime's tests check (tests/export/test_runtimes_<runtime>.py): a
checkpoint exported to the format passes its check in the runtime, ``predict`` on the file
gives the checkpoint's classes, and a file that computes something else is refused and removed
with its side files and sidecar."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from lightnets.export import VerificationError, artefact, export_model, from_checkpoint, predict
from lightnets.export.formats import artefact_files, get_format
from lightnets.export.sidecar import sidecar_path
from tests.export.test_export import fake_checkpoint
from tests.test_readme import digit_png


def exported(format: str, folder: Path) -> tuple[Path, Path]:
    """A 3-class SqueezeNet 1.1 checkpoint (1x40x40 digits) and its file in ``format``."""
    torch.manual_seed(0)  # SqueezeNet's last ReLU can zero every logit of some initialisations
    checkpoint = Path(fake_checkpoint(folder / "best.pt"))
    result = export_model(from_checkpoint(checkpoint), format,
                          folder / ("model" + get_format(format).suffix))
    assert result.verification.passed and result.verification.worst.relative < 1e-4
    assert {c.inputs for c in result.verification.comparisons} == {"random", "real"}
    assert all(file.is_file() for file in artefact_files(result.path, get_format(format)))
    assert result.sidecar.artefact_format == format and result.sidecar.class_names
    return checkpoint, result.path


def check_predict_matches_checkpoint(checkpoint: Path, path: Path) -> None:
    """``predict`` on the exported file ranks the classes as the checkpoint does."""
    images = []
    for digit in (0, 1, 2):
        digit_png(digit)(checkpoint.parent / f"digit_{digit}.png")
        images.append(checkpoint.parent / f"digit_{digit}.png")
    reference = predict(checkpoint, images, top_k=3, device="cpu")
    ours = predict(path, images, top_k=3)
    for got, want in zip(ours, reference):
        assert [c for c, _, _ in got.top] == [c for c, _, _ in want.top]
        assert got.top[0][2] == pytest.approx(want.top[0][2], abs=1e-4)


def check_broken_file_is_refused(format: str, folder: Path, monkeypatch) -> None:
    """A runner whose outputs are 1% off fails the check; the file, its side files and its
    sidecar are gone."""
    real_runner = artefact.artefact_runner
    monkeypatch.setattr(artefact, "artefact_runner",
                        lambda *a, **k: (lambda x: real_runner(*a, **k)(x) * 1.01))
    path = folder / ("broken" + get_format(format).suffix)
    torch.manual_seed(0)  # logits all zero after SqueezeNet's last ReLU would pass x 1.01
    with pytest.raises(VerificationError, match="does not match the eager model"):
        export_model(from_checkpoint(fake_checkpoint(folder / "best.pt")), format, path,
                     real_inputs=False)
    files = artefact_files(path, get_format(format))
    assert len(files) == 1 + len(get_format(format).side_suffixes)
    assert not any(file.exists() for file in files) and not sidecar_path(path).exists()
