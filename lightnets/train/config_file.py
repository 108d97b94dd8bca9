"""``lightnets train --config FILE``: the settings of a run read from a YAML or JSON file with
the keys of :class:`~lightnets.train.config.TrainConfig`, the same keys as the ``config.json``
every run writes, so a run is repeated from its own folder (command-line options override the
file). Unknown keys and values of the wrong type are refused in one line, before any work."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path
from typing import Any

from lightnets.optional import MissingDependencyError, require
from lightnets.train.config import TrainConfig

# what a run's config.json records beside its configuration (loop.write_run_files): facts of
# the run, derived again when it is repeated
RECORDED = ("num_classes", "class_names", "world_size", "preprocess", "task", "train_images",
            "val_images")
# config.json records the autocast that ran by its dtype's name
AMP_NAMES = {"bfloat16": "bf16", "float16": "fp16"}


def read_config_file(path: str | Path) -> dict[str, Any]:
    """The :class:`TrainConfig` fields a YAML (``.yaml``, ``.yml``) or JSON file sets. A run's
    own ``config.json`` gives its configuration without its folder ``name``, so the repeat
    goes to a new folder."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ValueError(f"config file {str(path)!r} not found")
    try:
        if path.suffix.lower() in (".yaml", ".yml"):
            values = require("yaml", "--config with a YAML file").safe_load(path.read_text())
        else:
            values = json.loads(path.read_text())
    except MissingDependencyError:
        raise
    except Exception as error:  # noqa: BLE001 - OSError, JSON's and YAML's own errors
        raise ValueError(f"cannot read config file {str(path)!r}: "
                         f"{str(error).splitlines()[0]}") from None
    if not isinstance(values, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of TrainConfig keys, "
                         f"got a {type(values).__name__}")
    if any(key in values for key in RECORDED):  # a run's own record
        values = {key: value for key, value in values.items()
                  if key not in RECORDED and key != "name"}
        values["amp"] = AMP_NAMES.get(values.get("amp"), values.get("amp"))
    check_fields(values, str(path))
    return values


def check_fields(values: dict[str, Any], where: str) -> None:
    """One line naming the unknown keys, or the first value whose type does not fit."""
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise ValueError(f"config file {where!r} has unknown key(s) {', '.join(unknown)}; the "
                         "keys are TrainConfig's (those of a run's config.json)")
    hints = typing.get_type_hints(TrainConfig)
    for name, value in values.items():
        allowed = accepted_types(hints[name])
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            names = " or ".join(t.__name__ for t in allowed if t is not type(None))
            raise ValueError(f"config file {where!r}: {name} must be {names}, got {value!r}")


def accepted_types(hint: Any) -> tuple[type, ...]:
    """The plain types a field's annotation admits (an int where a float is asked)."""
    union = typing.get_origin(hint) in (typing.Union, types.UnionType)
    options = typing.get_args(hint) if union else (hint,)
    plain = tuple(typing.get_origin(option) or option for option in options)
    return plain + ((int,) if float in plain else ())
