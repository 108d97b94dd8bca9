"""The runtimes that phones and edge boards run, one module each, registered as export formats
(:mod:`lightnets.export.formats`). Each module imports its runtime's packages only when a file
is written or run, so that ``lightnets`` imports without them."""

from lightnets.export.runtimes import coreml, executorch_pte, litert  # noqa: F401, E402
