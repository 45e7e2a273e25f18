"""The manifest: what travels with every model (labels, input contract, format, quantization, source).

One JSON file, ``manifest.json``, sits beside every model we write: in a training run folder, in every TF Serving
version folder (``models/flowers/3/manifest.json``). Every runner, the server, the clients and the benchmarks read
the labels and the preprocessing contract from it, so the way an image becomes a tensor travels with the model
(as timm does with its pretrained configs) instead of being re-typed at each call site::

    m = Manifest.load("models/flowers/3")           # a folder or the file itself
    m.labels                                        # ['daisy', 'dandelion', 'roses', 'sunflowers', 'tulips']
    m.input.size                                    # (180, 180)
    m.variant_file("int8")                          # 'model_int8.tflite'
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepclf import __version__
from deepclf.errors import ModelFormatError
from deepclf.fsutil import atomic_write_json
from deepclf.variants import TFLITE_FILES, canonical_variant  # TFLITE_FILES re-exported: variant -> file name

MANIFEST_NAME = "manifest.json"
SCHEMA = "deepclf.manifest/1"


#: Names of the serving signatures and their tensors; requests key on these, so they never change.
SIGNATURE_FLOAT = "serving_default"
SIGNATURE_BYTES = "predict_image_bytes"
INPUT_FLOAT = "image"
INPUT_BYTES = "image_bytes"
OUTPUT_PROBABILITIES = "probabilities"
OUTPUT_CLASSES = "classes"
OUTPUT_LABELS = "labels"


#: The values of the declared input settings that ``deepclf.preprocessing`` (and its TF twin) implement. Anything
#: else is refused when an ``InputSpec`` is made (so when a manifest is loaded, from a file or a server's metadata):
#: serving it would silently feed the model pixels prepared differently from those it was trained on.
SUPPORTED_INPUT: dict[str, tuple[Any, ...]] = {
    "color_mode": ("rgb",),  # decode -> 3-channel RGB (grey replicated, alpha dropped)
    "resize": ("bilinear",),  # TF's bilinear kernel, half-pixel centres, no antialiasing
    "crop_to_aspect_ratio": (False,),  # the whole image is resized; no centre crop
    "dtype": ("float32",),  # the float signature's input; runners check float32
}


@dataclass(frozen=True)
class InputSpec:
    """The image contract of a model: what ``preprocessing.py`` must produce for it.

    ``dtype`` and ``value_range`` describe the float tensor the model's float signature takes (float32, 0..255:
    the model rescales inside). ``resize`` is the interpolation ``image_dataset_from_directory`` used in training.
    ``color_mode``, ``resize``, ``crop_to_aspect_ratio`` and ``dtype`` must be values this version implements
    (``SUPPORTED_INPUT``); others raise ``ModelFormatError``::

        InputSpec(resize="nearest")   # ModelFormatError: input.resize is 'nearest'; this version of deepclf ...
    """

    height: int = 180
    width: int = 180
    channels: int = 3
    dtype: str = "float32"
    value_range: tuple[float, float] = (0.0, 255.0)
    color_mode: str = "rgb"
    resize: str = "bilinear"
    crop_to_aspect_ratio: bool = False

    def __post_init__(self) -> None:
        for name, supported in SUPPORTED_INPUT.items():
            value = getattr(self, name)
            if value not in supported:
                raise ModelFormatError(
                    f"input.{name} is {value!r}; this version of deepclf implements only "
                    f"{' or '.join(repr(s) for s in supported)} (deepclf.preprocessing would prepare the images "
                    "differently from what the model expects)"
                )

    @property
    def size(self) -> tuple[int, int]:
        """(height, width)."""
        return (self.height, self.width)

    @property
    def shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of one image."""
        return (self.height, self.width, self.channels)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["value_range"] = list(self.value_range)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> InputSpec:
        known = {f.name for f in dataclasses.fields(cls)}
        kw = {k: v for k, v in d.items() if k in known}
        if "value_range" in kw:
            kw["value_range"] = tuple(float(v) for v in kw["value_range"])
        return cls(**kw)


@dataclass
class Manifest:
    """Everything a consumer needs to use a model without guessing.

    ``format`` is one of ``keras``, ``savedmodel``, ``tflite`` (a version folder holds a SavedModel and the TFLite
    variants, so its manifest says ``savedmodel`` and lists ``variants``). ``variants`` maps a variant name
    (``deepclf.variants``: fp32, fp16, dynamic, int8) to its file name and quantization parameters.
    """

    labels: list[str]
    input: InputSpec = field(default_factory=InputSpec)
    name: str = "flowers"
    format: str = "keras"
    architecture: str | None = None
    variants: dict[str, dict[str, Any]] = field(default_factory=dict)
    quantization: dict[str, Any] | None = None
    source: dict[str, Any] = field(default_factory=dict)
    created: str = field(default_factory=lambda: _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"))
    deepclf_version: str = __version__

    def __post_init__(self) -> None:
        if not self.labels:
            raise ModelFormatError("a manifest needs at least one label, got an empty list")
        if len(set(self.labels)) != len(self.labels):
            raise ModelFormatError(f"manifest labels must be unique, got {self.labels!r}")

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def variant_file(self, variant: str) -> str:
        """File name of a TFLite variant (``fp32`` -> ``model.tflite``), from the manifest or ``deepclf.variants``."""
        name = canonical_variant(variant)
        if name is None:
            raise ModelFormatError(f"unknown TFLite variant {variant!r}; expected one of {', '.join(TFLITE_FILES)}")
        if name in self.variants and "file" in self.variants[name]:
            return str(self.variants[name]["file"])
        return TFLITE_FILES[name]

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema": SCHEMA,
            "name": self.name,
            "labels": list(self.labels),
            "input": self.input.to_dict(),
            "format": self.format,
            "architecture": self.architecture,
            "variants": self.variants,
            "quantization": self.quantization,
            "source": self.source,
            "created": self.created,
            "deepclf_version": self.deepclf_version,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        if not isinstance(d, dict) or "labels" not in d:
            raise ModelFormatError(f"not a deepclf manifest (no 'labels' field): {str(d)[:120]!r}")
        return cls(
            labels=[str(x) for x in d["labels"]],
            input=InputSpec.from_dict(d.get("input", {})),
            name=d.get("name", "flowers"),
            format=d.get("format", "keras"),
            architecture=d.get("architecture"),
            variants=dict(d.get("variants") or {}),
            quantization=d.get("quantization"),
            source=dict(d.get("source") or {}),
            created=d.get("created", ""),
            deepclf_version=d.get("deepclf_version", ""),
        )

    def replace(self, **changes: Any) -> Manifest:
        """A copy with some fields changed (``m.replace(format="savedmodel")``)."""
        return dataclasses.replace(self, **changes)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically to ``path`` (a folder gets ``manifest.json`` inside it)."""
        path = Path(path)
        if path.is_dir() or path.suffix != ".json":
            path = path / MANIFEST_NAME
        return atomic_write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read a manifest from a file, or from ``manifest.json`` in a folder (or beside a model file)."""
        path = Path(path)
        candidates = [path] if path.suffix == ".json" else [path / MANIFEST_NAME, path.parent / MANIFEST_NAME]
        for c in candidates:
            if c.is_file():
                try:
                    return cls.from_dict(json.loads(c.read_text(encoding="utf-8")))
                except json.JSONDecodeError as exc:
                    raise ModelFormatError(f"{c} is not valid JSON: {exc}") from exc
                except ModelFormatError as exc:  # name the file: "models/flowers/3/manifest.json: input.resize ..."
                    raise ModelFormatError(f"{c}: {exc}") from exc
        raise ModelFormatError(
            f"no {MANIFEST_NAME} found for {path} (looked at {', '.join(str(c) for c in candidates)}); "
            "models written by `deepclf train` / `deepclf convert` always carry one"
        )
