"""The model zoo: one module per family, beside ``base`` (the shared interface and the
features-only trunk) and ``stages`` (building a trunk at an output stride). Importing this
package registers every model."""

import importlib
import pkgutil

from lightnets.models.base import Classifier, stage_info

for _module in pkgutil.iter_modules(__path__):
    if _module.name not in ("base", "stages"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Classifier", "stage_info"]
