"""The runtimes that phones and edge boards run, one module each, registered as export formats
(:mod:`lightnets.export.formats`). Each module imports its runtime's packages only when a file
is written or run, so that ``lightnets`` imports without them."""

# TorchScript and .pt2 first, so that the table lists PyTorch's own formats before the runtimes
import lightnets.export.torch_formats  # noqa: F401
from lightnets.export.runtimes import ncnn_pnnx  # noqa: F401
from lightnets.export.runtimes import mnn_file  # noqa: F401
from lightnets.export.runtimes import openvino_ir  # noqa: F401
from lightnets.export.runtimes import coreml, executorch_pte, litert  # noqa: F401
