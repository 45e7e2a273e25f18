"""The decoded form of a REST predict request, shared by the general parser (``rest``) and the numeric fast path
(``json_fast``), which both return it::

    RestRequest({"image": batch}, signature_name="", format=ROW, instances=2)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: TF Serving's two request formats: ``{"instances": [...]}`` (row) and ``{"inputs": ...}`` (columnar).
ROW = "row"
COLUMNAR = "columnar"


@dataclass
class RestRequest:
    """A decoded predict request: the tensors, the signature asked for ("" = default) and the format used."""

    inputs: dict[str, np.ndarray]
    signature_name: str = ""
    format: str = ROW
    instances: int | None = field(default=None)  # batch size of a row request
