"""lightnets: classic and lightweight convolutional networks.

Building blocks (:mod:`lightnets.layers`), a model zoo faithful to the papers
(:mod:`lightnets.models`), segmenters and detectors on any of its backbones
(:mod:`lightnets.segment`, :mod:`lightnets.detect`),
honest measurement (:mod:`lightnets.profile`), and the whole workflow from training to
deployment.
"""

__version__ = "0.2.0"

from lightnets import features  # noqa: E402,F401
from lightnets import models as _models  # noqa: E402,F401  (importing registers the zoo)
from lightnets import weights  # noqa: E402,F401  (importing lets create_model load files)
from lightnets.profile import model_info, summary  # noqa: E402
from lightnets.registry import create_model, list_models, register_model  # noqa: E402
from lightnets.segment import create_segmenter  # noqa: E402  (importing registers segmenters)
from lightnets.detect import create_detector  # noqa: E402  (importing registers detectors)

__all__ = ["__version__", "create_detector", "create_model", "create_segmenter", "features",
           "list_models", "model_info", "register_model", "summary", "weights"]
