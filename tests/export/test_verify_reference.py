"""The export check measures a file against what eager fp32 can itself reach (issue 30, item 5):
a file more accurate than eager fp32 passes, a wrong file still fails, float64 is consulted only
beyond the tolerance, and a model that does not run in float64 is checked as before, with a
note."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightnets.data.digits_seg import write_pair_folder
from lightnets.export import VerificationError
from lightnets.export.fuse import fuse
from lightnets.export.verify import EAGER_ERROR_FACTOR, check, verify

INPUT = (3, 16, 16)


def ill_conditioned() -> nn.Module:
    """conv -> BatchNorm whose mean cancels a large bias: eager fp32 adds 1e4 to O(1) values and
    takes it away again (rounding at 1e-3), then divides by a standard deviation of 1e-2; the
    fused convolution never forms the large sum and is accurate to fp32's last digits."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                          nn.Conv2d(8, 4, 1))
    with torch.no_grad():
        model[0].bias.fill_(1e4)
        model[1].running_mean.fill_(1e4)
        model[1].running_var.fill_(1e-4)
    return model.eval()


def runner(model: nn.Module):
    return lambda x: model(x)


def test_a_file_as_accurate_as_eager_passes_with_both_errors_recorded():
    model = ill_conditioned()
    fused = fuse(model)  # what export writes: the large sum folded away
    verification = verify(model, runner(fused), INPUT, real=False)
    [random] = verification.comparisons
    # the plain rule would blame the file for eager's own rounding
    assert random.relative > verification.tolerance
    assert random.artefact_error < random.reference_error / 10
    assert verification.passed and check(verification) is verification
    assert "float64" in verification.verdict()
    recorded = verification.as_dict()["comparisons"][0]
    assert recorded["artefact_error"] == random.artefact_error
    assert recorded["reference_error"] == random.reference_error


def test_a_wrong_weight_still_fails_even_where_eager_is_inaccurate():
    model = ill_conditioned()
    wrong = fuse(model)
    with torch.no_grad():
        wrong[0].weight[0, 0, 1, 1] += 0.2 * wrong[0].weight.abs().max()
    verification = verify(model, runner(wrong), INPUT, real=False)
    [random] = verification.comparisons
    assert random.artefact_error > EAGER_ERROR_FACTOR * random.reference_error
    assert not verification.passed
    with pytest.raises(VerificationError, match="float64 reference it is off by"):
        check(verification, "the file")


def test_a_small_error_in_a_well_conditioned_model_fails():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 5, 1)).eval()
    wrong = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 5, 1)).eval()
    wrong.load_state_dict(model.state_dict())
    with torch.no_grad():
        wrong[2].bias[0] += 1e-3 * model(torch.randn(3, *INPUT)).abs().max()
    verification = verify(model, runner(wrong), INPUT, real=False)
    [random] = verification.comparisons
    assert random.reference_error < 1e-6  # eager fp32 is exact to its last digits here
    assert not verification.passed


class Float32Only(nn.Module):
    """Casts its input to float32 inside forward, so a float64 copy cannot run."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x.float())


def test_a_model_without_float64_is_checked_against_eager_alone_with_a_note():
    model = Float32Only().eval()
    off = verify(model, lambda x: model(x) * 1.01, INPUT, real=False)
    assert not off.passed and off.comparisons[0].artefact_error is None
    assert any(note.startswith("no float64 reference") for note in off.notes)


def test_float64_is_asked_only_beyond_the_tolerance():
    model = Float32Only().eval()  # would leave a note had float64 been tried
    same = verify(model, runner(model), INPUT, real=False)
    assert same.passed and not same.notes and same.comparisons[0].artefact_error is None


def test_an_artefact_that_fails_to_run_is_a_one_line_verification_error():
    model = ill_conditioned()

    def fixed_size(x: torch.Tensor) -> torch.Tensor:  # as a runtime refusing another size
        if x.shape[-1] != INPUT[-1]:
            raise RuntimeError("Got invalid dimensions for input\nindex: 3 Got: 56 Expected: 16")
        return model(x)

    assert verify(model, fixed_size, INPUT, real=False, dynamic_size=True).passed
    with pytest.raises(VerificationError, match=r"^the artefact failed to run on real 40x56 "
                       r"inputs of shape \(5, 3, 40, 56\): Got invalid dimensions for input$"):
        verify(model, fixed_size, INPUT, dynamic_size=True)


@pytest.mark.slow  # a segmenter trained for six steps, then exported
def test_the_issues_trained_segmenter_exports(tmp_path):
    # the issue's case: on real 56x72 inputs this run's eager logits (scale ~5e4) differed from
    # its correct ONNX file by 1.5e-3 of their scale, eager itself being 8.8e-4 off float64
    from lightnets.export import export_model, load_source
    from lightnets.train import TrainConfig, train

    result = train(TrainConfig(
        model="lraspp_mobilenet_v3_small", data=str(write_pair_folder(tmp_path / "pairs", 12, 4)),
        input_size=32, batch_size=4, epochs=2, limit_train_batches=3, limit_val_batches=1,
        workers=0, progress=False, runs_dir=str(tmp_path / "runs"), name="seg"))
    exported = export_model(load_source(checkpoint=result.last_checkpoint), "onnx",
                            tmp_path / "seg.onnx")
    verification = exported.verification
    assert verification.passed and exported.path.is_file()
    for c in verification.comparisons:  # where eager and file differ, float64 decided
        assert c.relative <= verification.tolerance or (
            c.artefact_error <= c.allowed(verification.tolerance))


def test_outputs_that_are_all_zero_leave_a_note_that_nothing_was_compared():
    model = nn.Sequential(nn.Conv2d(3, 2, 1), nn.ReLU()).eval()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every output below zero before the ReLU
    dead = verify(model, lambda x: model(x) * 1.01, INPUT, real=False)
    assert dead.passed  # a 1% change of zeros is no change ...
    assert any("all zero" in note for note in dead.notes)  # ... and the note says so
    alive = nn.Sequential(nn.Conv2d(3, 2, 1)).eval()
    checked = verify(alive, runner(alive), INPUT, real=False)
    assert checked.passed and not any("all zero" in note for note in checked.notes)
