"""Models trained in PyTorch on good images only (see docs/ARCHITECTURE.md, "Models").

Every model offers fit / predict / save / load / export_parts; ``ExportParts`` is what the
converter and the runtime consume.
"""

from edge_sdk.models.export_parts import ExportParts

__all__ = ["ExportParts"]
