"""Core ML (.mlpackage by coremltools): converted here; Core ML cannot run off Apple systems,
so the file's specification is checked instead of a run, and the sidecar says so."""

from __future__ import annotations

import pytest

from lightnets.export import artefact, export_model
from lightnets.export.formats import FORMATS, artefact_bytes
from lightnets.export.runtimes import coreml
from lightnets.export.verify import VerificationError
from tests.export.conftest import zoo_source

pytest.importorskip("coremltools", reason="coremltools is not installed (lightnets[coreml])")


@pytest.mark.slow
def test_coreml_export_checks_the_specification(tmp_path, monkeypatch):
    source = zoo_source("squeezenet1_1")
    result = export_model(source, "coreml", tmp_path / "m.mlpackage")
    assert result.path.is_dir() and result.sidecar.artefact_format == "coreml"
    assert result.sidecar.input_size == [1, *source.input_size]
    assert not result.sidecar.dynamic_batch and "coremltools" in result.sidecar.versions
    verification = result.sidecar.verification
    assert verification["passed"] and verification["comparisons"] == []
    assert verification["max_relative"] is None  # nothing was run
    assert "not run here" in verification["notes"][0]
    assert "specification only" in result.verification.verdict()
    assert artefact_bytes(result.path, FORMATS["coreml"]) > 10_000
    with pytest.raises(ValueError, match="cannot be run on this platform"):
        artefact.artefact_runner(result.path, "coreml")
    # a file whose output disagrees with the eager model's is refused and removed
    monkeypatch.setattr(coreml, "OUTPUT", "probabilities")
    plan = artefact.ExportPlan(result.path, "coreml", False, 1, False, False, True, 18, 1e-4,
                               True)
    with pytest.raises(VerificationError, match="outputs are"):
        artefact.verify_artefact(source, source.model, None, plan)
    assert not result.path.exists()
