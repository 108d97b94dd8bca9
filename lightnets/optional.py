"""Optional dependencies (ONNX, ONNX Runtime, OpenVINO, scikit-learn, matplotlib, ...), imported
on demand with a one-line error naming what is missing and the lightnets extra that installs it.

A command checks what it needs before it starts (:func:`require_all`); a by-product such as a
plot checks once whether it can be made (:func:`by_product`) and is left out, with one warning,
when it cannot, so the numbers are never lost for want of a picture.

Some packages report usage over the network unless told otherwise; lightnets sends nothing
anywhere, so it imports them declining (:func:`usage_reports_declined`).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import warnings
from collections.abc import Iterable, Iterator
from types import ModuleType

# import name -> (pip requirement, lightnets extra that brings it or None)
_PACKAGES = {
    "onnx": ("onnx", "export"),
    "onnxruntime": ("onnxruntime", "export"),
    "onnxscript": ("onnxscript", "export"),
    "openvino": ("openvino", "openvino"),
    "pnnx": ("pnnx", "ncnn"),
    "ncnn": ("ncnn", "ncnn"),
    "MNN": ("MNN", "mnn"),
    "_tools": ("MNN", "mnn"),  # MNN's converter extension module
    "safetensors": ("safetensors", "weights"),
    "sklearn": ("scikit-learn", "train"),
    "matplotlib": ("matplotlib", "train"),
    "timm": ("timm", None),
    "torch_pruning": ("torch-pruning", "prune"),
    "pycocotools": ("pycocotools", "detect"),
    "tensorboard": ("tensorboard", "tensorboard"),
    "yaml": ("pyyaml", "train"),  # in the detect extra too (YOLO data.yaml)
    "executorch": ("executorch", "executorch"),
    "torchao": ("torchao", "executorch"),  # PT2E quantization (--backend executorch, --qat)
    "litert_torch": ("litert-torch", "litert"),
    "ai_edge_litert": ("ai-edge-litert", "litert"),
    "coremltools": ("coremltools", "coreml"),
}


class MissingDependencyError(ValueError):
    """An optional package a feature needs is not installed."""


class MissingByProductWarning(UserWarning):
    """A by-product (a plot) is left out because an optional package is not installed."""


def install_hint(modules: Iterable[str]) -> str:
    """The pip command installing ``modules``: the lightnets extras that bring them, and the
    plain requirements of those no extra brings."""
    extras, plain = [], []
    for module in modules:
        requirement, extra = _PACKAGES.get(module.split(".")[0], (module.split(".")[0], None))
        if extra and extra not in extras:
            extras.append(extra)
        elif not extra and requirement not in plain:
            plain.append(requirement)
    parts = [f"'lightnets[{','.join(extras)}]'"] if extras else []
    return "pip install " + " ".join(parts + plain)


def missing(modules: Iterable[str]) -> list[str]:
    """Those of ``modules`` that cannot be imported, in order, without repeats."""
    return [module for module in dict.fromkeys(modules) if not available(module)]


def require_all(needs: Iterable[tuple[str, str]]) -> None:
    """Check every ``(module, purpose)`` at once; one :class:`MissingDependencyError` names all
    that are missing, what needs them and how to install them."""
    needs = list(needs)
    absent = missing(module for module, _ in needs)
    if absent:
        purposes = list(dict.fromkeys(purpose for module, purpose in needs if module in absent))
        names = list(dict.fromkeys(_PACKAGES.get(m.split(".")[0], (m.split(".")[0],))[0]
                                   for m in absent))
        verb = "is" if len(names) == 1 else "are"
        raise MissingDependencyError(f"{' and '.join(purposes)} needs {', '.join(names)}, which "
                                     f"{verb} not installed ({install_hint(absent)})")


def require(module: str, purpose: str) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` saying ``purpose`` needs it."""
    require_all([(module, purpose)])
    return importlib.import_module(module)


# packages that decide on their first import whether to report usage (OpenVINO: its converter's
# Google Analytics telemetry, through openvino-telemetry)
REPORTS_USAGE = ("openvino",)


@contextlib.contextmanager
def usage_reports_declined() -> Iterator[None]:
    """Decline OpenVINO's usage statistics for the block.

    Importing ``openvino`` sets up its converter's telemetry, which reports each conversion
    (``openvino.convert_model``) to Google Analytics and keeps a client id under ``~/intel``
    unless the user opted out; the consent is read when it is set up, and again by each
    conversion. openvino-telemetry treats a CI run (``CI=true``) as declined: the variable is
    set for the block only and restored after."""
    saved = os.environ.get("CI")
    os.environ["CI"] = "true"
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("CI", None)
        else:
            os.environ["CI"] = saved


def available(module: str) -> bool:
    """Whether ``module`` can be imported (without raising); imported declining usage reports
    where it would send them (:data:`REPORTS_USAGE`)."""
    declined = module.split(".")[0] in REPORTS_USAGE
    try:
        with usage_reports_declined() if declined else contextlib.nullcontext():
            importlib.import_module(module)
    except ImportError:
        return False
    return True


def by_product(module: str, what: str) -> bool:
    """Whether ``what`` (e.g. ``"curves.png"``) can be made; when ``module`` is missing, warn
    once that it is left out and how to get it, and return False."""
    if available(module):
        return True
    warnings.warn(f"{what} left out: {_PACKAGES.get(module, (module,))[0]} is not installed "
                  f"({install_hint([module])})", MissingByProductWarning, stacklevel=2)
    return False
