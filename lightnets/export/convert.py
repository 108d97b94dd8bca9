"""Converting pretrained weights (torchvision, timm, a Hugging Face folder) into a lightnets
checkpoint: the model's name and the arguments that reproduce the source, its weights, the
source's preprocessing and class names, in one file that loads without knowing where it came
from (``lightnets convert``).

The written file is checked like an export: loaded again and run against the model it was
written from, on random and real images (:func:`lightnets.export.verify.verify`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lightnets.checkpoint import Checkpoint, save_checkpoint
from lightnets.data.transforms import preprocess_input_size
from lightnets.export.verify import Verification, check, verify
from lightnets.registry import create_model
from lightnets.weights import Pretrained, load_pretrained
from lightnets.tasks import task_for

SUFFIXES = (".safetensors", ".pt")


@dataclass
class Conversion:
    """The written file, what it was read as, and the check of the written file."""

    path: Path
    pretrained: Pretrained
    verification: Verification
    tensors: int


def convert(weights: str | Path, output: str | Path, model: str | None = None,
            source: str | None = None, strict: bool = True, tolerance: float = 1e-6,
            **kwargs) -> Conversion:
    """Load ``weights`` as the registered ``model`` (``kwargs``: ``num_classes``, ``in_chans``
    and constructor options, as for ``create_model``), write it to ``output`` (``.safetensors``
    or ``.pt``), load that back and check both give the same logits; the file is removed if
    they do not."""
    output = Path(output)
    if output.suffix not in SUFFIXES:
        raise ValueError(f"--output must end in {' or '.join(SUFFIXES)}, got {str(output)!r}")
    loaded = load_pretrained(model, weights, source, strict, **kwargs).eval()
    info = loaded.pretrained
    task = task_for(loaded)
    if not task.outputs_tensor:  # the check compares one output tensor element by element
        raise ValueError(f"{info.model_name} is a {task.model_noun}: convert checks logits, a "
                         f"{task.model_noun} gives {task.outputs}; load its file directly "
                         "(create_model(name, checkpoint_path=...), or --model with --weights)")
    state = loaded.state_dict()
    checkpoint = Checkpoint(model_name=info.model_name, model_args=info.model_args, model=state,
                            preprocess=info.preprocess, class_names=info.class_names)
    output.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, output)
    try:
        reloaded = create_model(info.model_name, checkpoint_path=output).eval()
        verification = check(verify(loaded, reloaded, preprocess_input_size(info.preprocess),
                                    info.preprocess, tolerance), f"the written {output.name}")
    except Exception:
        output.unlink(missing_ok=True)
        raise
    return Conversion(output, info, verification, len(state))
