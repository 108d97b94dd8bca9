"""Optional dependencies (ONNX, ONNX Runtime, OpenVINO, scikit-learn, ...), imported on demand
with a one-line error naming what is missing and the lightnets extra that installs it."""

from __future__ import annotations

import importlib
from types import ModuleType

# import name -> (pip requirement, lightnets extra that brings it or None)
_PACKAGES = {
    "onnx": ("onnx", "export"),
    "onnxruntime": ("onnxruntime", "export"),
    "onnxscript": ("onnxscript", "export"),
    "openvino": ("openvino", "openvino"),
    "sklearn": ("scikit-learn", "train"),
    "torch_pruning": ("torch-pruning", "prune"),
}


class MissingDependencyError(ValueError):
    """An optional package a feature needs is not installed."""


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying ``purpose`` needs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        top = module.split(".")[0]
        requirement, extra = _PACKAGES.get(top, (top, None))
        how = f"pip install 'lightnets[{extra}]'" if extra else f"pip install {requirement}"
        raise MissingDependencyError(f"{purpose} needs {requirement}, which is not installed "
                                     f"({how})") from None


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without raising)."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True
