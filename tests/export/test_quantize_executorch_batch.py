"""ExecuTorch int8 files keep a dynamic batch where ExecuTorch runs it, else batch 1."""

from __future__ import annotations

import torch

from lightnets.export.runtimes import executorch_pte


def test_an_int8_pte_that_fails_at_another_batch_is_written_at_batch_1(tmp_path, monkeypatch):
    """ExecuTorch's int8 route keeps a dynamic batch where its file runs at a batch other than
    the traced one, and writes batch 1 where it does not (ShuffleNet V2 on the digits)."""
    written: list[bool] = []

    def quantize_pte(model, path, images, per_channel=True, dynamic_batch=True):
        written.append(dynamic_batch)
        return path

    def load_pte(path, threads=None):
        def run(x: torch.Tensor) -> torch.Tensor:
            if written[-1] and len(x) != 2:  # the dynamic file runs only its traced batch
                raise ValueError("ExecuTorch cannot run it: error 0x10")
            return x
        return run

    monkeypatch.setattr(executorch_pte, "quantize_pte", quantize_pte)
    monkeypatch.setattr(executorch_pte, "load_pte", load_pte)
    images = torch.randn(4, 1, 8, 8)
    executorch_pte.quantize_runnable_pte(torch.nn.Identity(), tmp_path / "m.pte", images)
    assert written == [True, False]
    written.clear()
    monkeypatch.setattr(executorch_pte, "load_pte", lambda path, threads=None: (lambda x: x))
    executorch_pte.quantize_runnable_pte(torch.nn.Identity(), tmp_path / "m.pte", images)
    assert written == [True]
