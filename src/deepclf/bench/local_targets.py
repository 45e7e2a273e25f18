"""Targets that run the model in this process: ``RunnerTarget`` (Keras, SavedModel or LiteRT through
``deepclf.runtime``), ``LocalClientTarget`` (LiteRT through ``deepclf.clients.LocalClient``, what an application
calls) and ``RawLiteRTTarget`` (the bare interpreter loop, the baseline that prices the wrapper)::

    t = RunnerTarget("tflite:models/flowers/1", "models/flowers/1", "tflite", variant="int8", threads=2)
    t = LocalClientTarget("local:models/flowers/1?send=bytes", "models/flowers/1", send="bytes")
    model_size_bytes("models/flowers/1", "tflite", "int8")     # the size column of reports
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from deepclf.bench.targets import Batch, Target
from deepclf.errors import ModelFormatError
from deepclf.manifest import INPUT_BYTES, OUTPUT_PROBABILITIES, SIGNATURE_BYTES, Manifest
from deepclf.variants import DEFAULT_VARIANT, TFLITE_FILES


def _dir_size(path: Path, names: Iterable[str] | None = None) -> int:
    files = [path / n for n in names] if names is not None else [path]
    total = 0
    for f in files:
        if f.is_file():
            total += f.stat().st_size
        elif f.is_dir():
            total += sum(p.stat().st_size for p in f.rglob("*") if p.is_file())
    return total


def model_size_bytes(path: str | os.PathLike[str], fmt: str, variant: str | None = None) -> int | None:
    """Bytes on disk of the model a target loads (the variant's .tflite, or saved_model.pb + variables/)."""
    p = Path(path)
    try:
        if p.is_file():
            return p.stat().st_size
        if fmt in ("tflite", "litert-raw"):
            fname = TFLITE_FILES.get(variant or DEFAULT_VARIANT)
            with contextlib.suppress(Exception):  # the fixed table is a fine fallback for a size column
                fname = Manifest.load(p).variant_file(variant or DEFAULT_VARIANT)
            return _dir_size(p, [fname]) if fname else None
        if fmt == "savedmodel":
            return _dir_size(p, ["saved_model.pb", "variables"])
        if fmt == "keras":
            kfiles = sorted(p.glob("*.keras"))
            return kfiles[0].stat().st_size if kfiles else None
    except OSError:
        return None
    return None


class RunnerTarget(Target):
    """An in-process model through ``deepclf.runtime.load_runner`` (Keras, SavedModel or LiteRT)."""

    def __init__(
        self,
        spec: str,
        path: str,
        fmt: str,
        *,
        variant: str | None = None,
        threads: int | None = None,
        send: str = "tensor",
        name: str | None = None,
    ) -> None:
        super().__init__(spec, name)
        self.path = path
        self.format = fmt
        self.variant = variant
        self.threads = threads
        self.send = send
        if fmt == "keras":
            self.kind = "reference"
        elif fmt == "tflite" and (variant or DEFAULT_VARIANT) != DEFAULT_VARIANT:
            self.kind = "quantized"
        else:
            self.kind = "float"
        self._runner: Any = None
        self._extra: dict[str, Any] = {}

    def _open(self) -> None:
        from deepclf.runtime import load_runner  # lazy: the TF runners import TensorFlow

        # One runner for every thread: runners are thread-safe (LiteRT keeps an interpreter per thread).
        runner = load_runner(self.path, format=self.format, variant=self.variant, num_threads=self.threads)
        self._runner = runner
        self.labels = list(runner.manifest.labels)
        self.input_size = tuple(runner.manifest.input.size)  # type: ignore[assignment]
        self._extra["model_file"] = str(runner.path)
        for attr in ("variant", "num_threads", "input_dtype"):
            val = getattr(runner, attr, None)
            if val is not None:
                self._extra[attr] = val

    def _close(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()

    def _predict(self, batch: Batch) -> np.ndarray:
        if self.send == "bytes":
            out = self._runner.run({INPUT_BYTES: np.asarray(batch.encoded, dtype=object)}, signature=SIGNATURE_BYTES)
            return np.asarray(out[OUTPUT_PROBABILITIES])
        return self._runner.predict(batch.tensor)

    def info(self) -> dict[str, Any]:
        info = {
            **super().info(),
            "format": self.format,
            "transport": "in-process",
            "path": self.path,
            "variant": self.variant or (DEFAULT_VARIANT if self.format == "tflite" else None),
            "threads": self.threads,
            "model_bytes": model_size_bytes(self._extra.get("model_file", self.path), self.format, self.variant),
        }
        if self.format == "tflite":
            # LiteRT applies its XNNPACK delegate to CPU models by default (int8 included, since TF 2.x).
            info["delegate"] = "XNNPACK (LiteRT default)"
        info.update(self._extra)
        return info


class LocalClientTarget(RunnerTarget):
    """A LiteRT model through ``deepclf.clients.LocalClient.predict``: the runner plus the client's model check and
    input naming, on the tensor (``serving_default``) or the encoded images (``predict_image_bytes``: decode and
    resize in process). What the performance goals compare with the bare interpreter."""

    def __init__(
        self,
        spec: str,
        path: str,
        *,
        variant: str | None = None,
        threads: int | None = None,
        send: str = "tensor",
        name: str | None = None,
    ) -> None:
        super().__init__(spec, path, "tflite", variant=variant, threads=threads, send=send, name=name)
        self._client: Any = None

    def _open(self) -> None:
        from deepclf.clients import LocalClient  # lazy: the clients package is only needed by this target

        # One client for every thread: its runner keeps an interpreter per thread.
        client = LocalClient(self.path, format="tflite", variant=self.variant, num_threads=self.threads)
        self._client = client
        self._runner = client.runner  # RunnerTarget.info reads the model file and threads from it
        self.labels = list(client.runner.manifest.labels)
        self.input_size = tuple(client.runner.manifest.input.size)  # type: ignore[assignment]
        self._extra["model_file"] = str(client.runner.path)
        for attr in ("variant", "num_threads", "input_dtype"):
            val = getattr(client.runner, attr, None)
            if val is not None:
                self._extra[attr] = val

    def _close(self) -> None:
        client, self._client, self._runner = self._client, None, None
        if client is not None:
            client.close()

    def _predict(self, batch: Batch) -> np.ndarray:
        if self.send == "bytes":
            inputs = {INPUT_BYTES: np.asarray(batch.encoded, dtype=object)}
            out = self._client.predict(inputs, signature=SIGNATURE_BYTES)
        else:
            out = self._client.predict(batch.tensor)  # one array: the float signature's single input
        return np.asarray(out[OUTPUT_PROBABILITIES])

    def info(self) -> dict[str, Any]:
        return {**super().info(), "format": "tflite", "transport": "in-process (LocalClient)"}


class RawLiteRTTarget(Target):
    """The bare LiteRT interpreter loop (``set_tensor``/``invoke``/``get_tensor``), to price ``deepclf.runtime``.

    Quantized inputs and outputs are (de)quantized with the tensor's scale and zero point. The output read is the
    probabilities: the one rank-2 output ``[N, C]`` (``classes`` is rank 1; tensor names inside a converted model
    are graph names like ``StatefulPartitionedCall:0``, so names cannot tell them apart).
    """

    kind = "float"

    def __init__(
        self, spec: str, path: str, *, variant: str | None = None, threads: int | None = None, name: str | None = None
    ) -> None:
        super().__init__(spec, name)
        self.path = path
        self.variant = variant
        self.threads = threads
        if (variant or DEFAULT_VARIANT) != DEFAULT_VARIANT:
            self.kind = "quantized"
        self._file: Path | None = None

    def _resolve(self) -> Path:
        p = Path(self.path)
        if p.is_file():
            return p
        if not p.is_dir():
            raise ModelFormatError(f"{self.spec}: no such model file or folder: {p}")
        try:
            fname = Manifest.load(p).variant_file(self.variant or DEFAULT_VARIANT)
        except ModelFormatError:
            fname = TFLITE_FILES.get(self.variant or DEFAULT_VARIANT, TFLITE_FILES[DEFAULT_VARIANT])
        f = p / fname
        if not f.is_file():
            raise ModelFormatError(f"{self.spec}: no {fname} in {p}; run `deepclf convert` to make the TFLite variants")
        return f

    def _load(self) -> Any:
        from ai_edge_litert.interpreter import Interpreter  # optional edge dependency

        interp = Interpreter(model_path=str(self._file), num_threads=self.threads)
        interp.allocate_tensors()
        inp = interp.get_input_details()[0]
        return {"interp": interp, "in": inp, "out": _probabilities_output(interp), "batch": int(inp["shape"][0])}

    def _open(self) -> None:
        self._file = self._resolve()
        try:
            m = Manifest.load(self._file)
            self.labels, self.input_size = list(m.labels), tuple(m.input.size)  # type: ignore[assignment]
        except ModelFormatError:
            pass
        state = self._load()
        self._local.obj = state
        if self.input_size is None:
            self.input_size = (int(state["in"]["shape"][1]), int(state["in"]["shape"][2]))

    def _close(self) -> None:
        self._local = threading.local()

    def _predict(self, batch: Batch) -> np.ndarray:
        s = self._per_thread(self._load)
        interp, inp = s["interp"], s["in"]
        x = batch.tensor
        if s["batch"] != x.shape[0]:
            interp.resize_tensor_input(inp["index"], list(x.shape))
            interp.allocate_tensors()
            s["batch"] = int(x.shape[0])
            s["in"] = inp = interp.get_input_details()[0]
            s["out"] = _probabilities_output(interp)
        if np.issubdtype(inp["dtype"], np.integer):
            scale, zero = inp["quantization"]
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max).astype(inp["dtype"])
        interp.set_tensor(inp["index"], x)
        interp.invoke()
        out = interp.get_tensor(s["out"]["index"])
        if np.issubdtype(out.dtype, np.integer):
            scale, zero = s["out"]["quantization"]
            out = (out.astype(np.float32) - zero) * scale
        return out

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "format": "tflite",
            "transport": "in-process (raw interpreter)",
            "path": self.path,
            "variant": self.variant or DEFAULT_VARIANT,
            "threads": self.threads,
            "delegate": "XNNPACK (LiteRT default)",
            "model_bytes": model_size_bytes(self.path, "tflite", self.variant),
        }


def _probabilities_output(interp: Any) -> dict[str, Any]:
    outs = interp.get_output_details()
    return next((o for o in outs if len(o["shape"]) == 2), outs[0])
