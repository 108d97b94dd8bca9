"""A file passed as a checkpoint that is none is named for what it is, with what was expected,
in one line, never with PyTorch's advice to load it with ``weights_only=False``; a damaged
checkpoint names the part that is wrong."""

from __future__ import annotations

import json

import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from lightnets.checkpoint import describe_file, load_checkpoint, save_checkpoint
from lightnets.cli import main
from tests.conftest import DIGITS_RUN


def tiny_onnx(path) -> None:
    """A one-node ONNX model (Identity), as any exporter writes it."""
    tensor = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g", [tensor],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])])
    onnx.save(helper.make_model(graph, producer_name="pytorch"), path)


class Code:
    """Pickled by reference: a weights-only load refuses it."""


def write_files(folder) -> dict[str, str]:
    """file name -> the phrase naming what it is."""
    (folder / "random.pt").write_bytes(bytes(range(256)) * 8)
    (folder / "notes.pt").write_text("hello, I am text\n")
    (folder / "empty.pt").write_bytes(b"")
    (folder / "config.json").write_text(json.dumps({"epochs": 3}))
    tiny_onnx(folder / "model.onnx")
    tiny_onnx(folder / "model.int8.onnx")
    (folder / "model.int8.onnx.json").write_text(json.dumps(
        {"format": "lightnets.sidecar.v1", "artefact": "model.int8.onnx", "precision": "int8"}))
    example = (torch.randn(1, 2),)
    torch.export.save(torch.export.export(nn.Linear(2, 2), example), folder / "model.pt2")
    torch.jit.trace(nn.Linear(2, 2), example).save(str(folder / "model.torchscript"))
    torch.save({"format": "lightnets.checkpoint.v1", "payload": Code()}, folder / "code.pt")
    return {
        "random.pt": "not a PyTorch file (unknown binary content)",
        "notes.pt": "a text file, not a lightnets checkpoint",
        "empty.pt": "an empty file",
        "config.json": "a JSON file",
        "model.onnx": "an ONNX model (an exported model, which `lightnets predict` and "
                      "`lightnets eval` run)",
        "model.int8.onnx": "an int8 ONNX model",
        "model.int8.onnx.json": "the JSON sidecar of model.int8.onnx",
        "model.pt2": "a torch.export archive (.pt2, an exported model",
        "model.torchscript": "a TorchScript file (an exported model",
        "code.pt": "holding pickled Python objects, which a weights-only load refuses because "
                   "unpickling them could run code",
    }


@pytest.mark.filterwarnings("ignore:`torch.jit.trace:FutureWarning")
def test_what_a_file_is_and_what_was_expected(tmp_path, capsys):
    for name, phrase in write_files(tmp_path).items():
        with pytest.raises(ValueError) as error:
            load_checkpoint(tmp_path / name)
        message = str(error.value)
        assert f"cannot read checkpoint {str(tmp_path / name)!r}: it is" in message
        assert phrase in message, (name, message)
        assert "expected a .pt file written by `lightnets train`" in message
        assert "weights_only" not in message and "corrupted" not in message
    assert main(["export", "--checkpoint", str(tmp_path / "model.pt2")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "a torch.export archive" in err


def test_a_truncated_checkpoint_is_called_so(tmp_path):
    torch.save({"weights": torch.zeros(1000)}, tmp_path / "whole.pt")
    data = (tmp_path / "whole.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    assert describe_file(tmp_path / "cut.pt") == "a truncated or corrupt zip archive"


@DIGITS_RUN
@pytest.mark.parametrize("damage, message", [
    (lambda state: state["preprocess"].pop("mean"), "is damaged: its preprocess lacks mean"),
    (lambda state: state.update(class_names="0123456789"),
     "is damaged: its class_names is a str, expected a list"),
])
def test_a_damaged_checkpoint_names_the_part(digits_run, tmp_path, damage, message):
    state = torch.load(digits_run / "last.pt", weights_only=True)
    damage(state)
    save_checkpoint(state, tmp_path / "damaged.pt")
    with pytest.raises(ValueError, match=message):
        load_checkpoint(tmp_path / "damaged.pt")
