"""Run a deepclf model in any format behind one interface (TF-free for LiteRT).

    from deepclf.runtime import load_runner
    with load_runner("models/flowers/3", variant="int8", num_threads=2) as r:
        print(r.classify(["rose.jpg"])[0].label)

Importing this package never imports TensorFlow; only the Keras and SavedModel runners do, when loaded.
"""

from deepclf.runtime.base import (
    FORMATS,
    Classification,
    Runner,
    SignatureSpec,
    TensorSpec,
    softmax,
    standard_signatures,
)
from deepclf.runtime.loader import load_runner, resolve_model_path

__all__ = [
    "FORMATS",
    "Classification",
    "Runner",
    "SignatureSpec",
    "TensorSpec",
    "load_runner",
    "resolve_model_path",
    "softmax",
    "standard_signatures",
]
