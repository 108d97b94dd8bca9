"""Knowledge distillation: the loss on its own and training from a teacher checkpoint."""

from __future__ import annotations

import math

import torch

from lightnets.cli import main
from lightnets.train import step, train
from lightnets.train.distill import distillation_loss
from tests.conftest import DIGITS_RUN, make_image_tree
from tests.train.conftest import tiny_config


def test_distillation_loss_is_zero_when_student_matches_and_scales_with_t_squared():
    torch.manual_seed(0)
    teacher = torch.randn(8, 10)
    assert distillation_loss(teacher, teacher, 4.0).abs() < 1e-6
    student = torch.randn(8, 10)
    for temperature in (1.0, 3.0):
        soft_teacher = (teacher / temperature).softmax(1)
        kl = (soft_teacher * (soft_teacher.log() - (student / temperature).log_softmax(1))).sum(1)
        assert torch.allclose(distillation_loss(student, teacher, temperature),
                              kl.mean() * temperature ** 2, atol=1e-5)


@DIGITS_RUN
def test_teacher_must_match_the_student_data(digits_run, tmp_path, capsys):
    data = make_image_tree(tmp_path / "shapes", per_class=4)
    assert main(["train", "--data", str(data), "--teacher", str(digits_run), "--input-size", "32",
                 "--batch-size", "4",
                 "--runs-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "teacher" in err and "trained for 10 classes, the data has 3" in err


@DIGITS_RUN
def test_distillation_from_a_teacher_checkpoint(digits_run, tmp_path, monkeypatch):
    seen = []
    real = step.distillation_loss

    def spy(student, teacher, temperature):
        seen.append((student.shape, teacher.shape, temperature))
        return real(student, teacher, temperature)

    monkeypatch.setattr(step, "distillation_loss", spy)
    result = train(tiny_config(tmp_path, name="student", epochs=1, model="mobilenet_v2_x0_35",
                               teacher=str(digits_run), distill_temperature=2.0))
    assert len(seen) == 3 and seen[0] == (torch.Size([32, 10]), torch.Size([32, 10]), 2.0)
    assert math.isfinite(result.history[0]["train_loss"])
