"""The TFLite variants of a model version: one name for each, one table, used by every layer. TF-free.

A variant is what ``deepclf convert --variants`` writes, what ``load_runner(..., variant=)`` loads, what
``deepclf serve --format`` serves, what a bench spec's ``tflite:DIR?variant=`` measures and what a version's
``manifest.json`` lists under ``variants``. All of them take the names below::

    VARIANTS["int8"].file             # 'model_int8.tflite'
    VARIANTS["int8"].input_dtype      # 'uint8': the runtime quantizes pixels with the tensor's scale/zero point
    parse_variant("tflite-int8")      # 'int8' (the runner-format spelling is accepted wherever users type one)
    variant_of_file("model_fp16.tflite")   # 'fp16'
    VARIANTS["int8"].runner_format    # 'tflite-int8': Runner.format, metrics' format label, /monitoring

``Runner.format`` keeps the ``tflite-<variant>`` spelling because it also names the engine (``keras``,
``savedmodel``, ``tflite-generic``) and is a Prometheus label value dashboards already group by; it is derived
from this table, never written out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

from deepclf.errors import UsageError

__all__ = [
    "DEFAULT_VARIANT",
    "RUNNER_FORMAT_PREFIX",
    "TFLITE_FILES",
    "VARIANTS",
    "VARIANT_NAMES",
    "Variant",
    "canonical_variant",
    "parse_variant",
    "variant_arg",
    "variant_of_file",
]

#: ``Runner.format`` of a LiteRT runner is this prefix plus the variant name (``tflite-int8``).
RUNNER_FORMAT_PREFIX = "tflite-"


@dataclass(frozen=True)
class Variant:
    """One TFLite variant: its name, file in a version folder, what is quantized and the input tensor's dtype."""

    name: str
    file: str
    description: str
    weights: str
    activations: str
    input_dtype: str  # also the output dtype: the integer model is integer at both ends

    @property
    def runner_format(self) -> str:
        """``Runner.format`` of a LiteRT runner over this variant (``tflite-int8``)."""
        return RUNNER_FORMAT_PREFIX + self.name

    def quantization(self) -> dict[str, str]:
        """What is stored how, as recorded in the manifest's ``variants`` map (``weights``/``activations``/``io``)."""
        return {"weights": self.weights, "activations": self.activations, "io": self.input_dtype}


#: Every variant, in the order convert writes them and listings show them. ``model.tflite`` is the file name TF
#: Serving's ``--prefer_tflite_model`` looks for, so the fp32 variant takes it.
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant(
            "fp32",
            "model.tflite",
            "float32 throughout; the reference the others are checked against",
            weights="float32",
            activations="float32",
            input_dtype="float32",
        ),
        Variant(
            "fp16",
            "model_fp16.tflite",
            "weights stored as float16, dequantized at load; float32 compute",
            weights="float16",
            activations="float32",
            input_dtype="float32",
        ),
        Variant(
            "dynamic",
            "model_dynamic.tflite",
            "weights int8 (per channel), activations quantized on the fly",
            weights="int8",
            activations="float32 (int8 on the fly)",
            input_dtype="float32",
        ),
        Variant(
            "int8",
            "model_int8.tflite",
            "everything int8, uint8 input and output; calibrated on real images",
            weights="int8",
            activations="int8",
            input_dtype="uint8",
        ),
    )
}

VARIANT_NAMES: tuple[str, ...] = tuple(VARIANTS)

#: What a version folder means when no variant is named.
DEFAULT_VARIANT = "fp32"

#: Variant name -> file name (``{"fp32": "model.tflite", ...}``).
TFLITE_FILES: dict[str, str] = {v.name: v.file for v in VARIANTS.values()}

_BY_FILE = {v.file: v.name for v in VARIANTS.values()}


def canonical_variant(name: str) -> str | None:
    """The canonical variant name for ``name`` (``int8`` or ``tflite-int8`` -> ``int8``), ``None`` if unknown."""
    if not isinstance(name, str):
        return None
    if name in VARIANTS:
        return name
    # "tflite-int8" is Runner.format and what the server reports; users copy it back into flags and specs.
    if name.startswith(RUNNER_FORMAT_PREFIX) and name[len(RUNNER_FORMAT_PREFIX) :] in VARIANTS:
        return name[len(RUNNER_FORMAT_PREFIX) :]
    return None


def parse_variant(name: str, *, what: str = "TFLite variant") -> str:
    """``canonical_variant``, or a ``UsageError`` naming ``what`` and the accepted names.

    >>> parse_variant("int8"), parse_variant("tflite-fp16")
    ('int8', 'fp16')
    """
    canonical = canonical_variant(name)
    if canonical is None:
        raise UsageError(f"unknown {what} {name!r}; expected one of {', '.join(VARIANT_NAMES)}")
    return canonical


def variant_arg(text: str) -> str:
    """An argparse ``type`` for variant flags: the canonical name, so ``choices`` shows and checks only those.

    ``p.add_argument("--format", type=variant_arg, choices=VARIANT_NAMES)`` accepts ``int8`` and ``tflite-int8``;
    anything else is passed through unchanged for ``choices`` to refuse with argparse's usual message.
    """
    return canonical_variant(text) or text


def variant_of_file(filename: str) -> str | None:
    """The variant whose standard file name is ``filename`` (``model_int8.tflite`` -> ``int8``), else ``None``."""
    return _BY_FILE.get(filename)
