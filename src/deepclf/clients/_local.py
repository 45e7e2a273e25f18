"""``LocalClient``: the clients' methods over an in-process runner, so programs and benchmarks can swap in-process
and remote inference without changing a line but the constructor::

    client = LocalClient("models/flowers/1")            # or RestClient(url) / GrpcClient(target)
    client.classify(["rose.jpg"], model="flowers")[0].label

Errors are the remote clients' classes (``InvalidInput``, ``ModelNotFound``), mapped with
``deepclf.protocol.errors.from_exception``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from deepclf.clients._addressing import as_inputs
from deepclf.clients._classify import (
    SEND_TENSOR,
    check_send,
    check_top_k,
    classifications,
    classify_batches,
    image_list,
    probabilities_of,
)
from deepclf.clients._models import ModelMetadata, ModelStatus, VersionStatus
from deepclf.errors import UsageError
from deepclf.manifest import SIGNATURE_FLOAT, Manifest
from deepclf.protocol.errors import Internal, ModelNotFound, ServingError, from_exception
from deepclf.runtime.base import Runner
from deepclf.signatures import Classification
from deepclf.versions import version_of_path

T = TypeVar("T")


class LocalClient:
    """``predict``/``classify``/``metadata``/``status`` on a model loaded in this process.

    ``model_path`` and the options are ``deepclf.runtime.load_runner``'s (a version folder means LiteRT fp32), or
    pass a loaded ``runner``. ``model``/``version`` arguments are checked against the loaded model (its manifest
    name, its version folder), so code written for a server fails the same way on a wrong name; ``label`` and
    ``timeout`` are accepted and ignored (one local version; no network).
    """

    def __init__(
        self,
        model_path: str | os.PathLike[str] | None = None,
        *,
        format: str | None = None,  # load_runner's name
        variant: str | None = None,
        num_threads: int | None = None,
        runner: Runner | None = None,
    ) -> None:
        if (model_path is None) == (runner is None):
            raise UsageError("give a model_path or a loaded runner (exactly one)")
        if runner is None:
            from deepclf.runtime.loader import load_runner

            assert model_path is not None  # exactly one of the two, checked above
            runner = load_runner(model_path, format=format, variant=variant, num_threads=num_threads)
        self.runner = runner
        self.model_name = runner.manifest.name
        self.version = version_of_path(runner.path)  # None outside the <base>/<version>/ layout

    def _check(self, model: str | None, version: int | None) -> None:
        if model is not None and model != self.model_name:
            raise ModelNotFound(f"model {model!r} is not loaded here; this LocalClient serves {self.model_name!r}")
        if version is not None and self.version is not None and int(version) != self.version:
            raise ModelNotFound(f"model {self.model_name!r} has no version {version!r} here; loaded: {self.version}")

    def _run(self, inputs: Mapping[str, Any], signature: str) -> dict[str, np.ndarray]:
        try:
            return self.runner.run(inputs, signature)
        except ServingError:
            raise
        except Exception as exc:  # the runner's InvalidInputError/NotFoundError -> the remote clients' classes
            err = from_exception(exc)
            if isinstance(err, Internal):
                raise  # a bug, not a bad request: keep its traceback
            raise err from exc

    def predict(
        self,
        inputs: Mapping[str, Any] | np.ndarray,
        *,
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        signature: str = SIGNATURE_FLOAT,
        timeout: float | None = None,
    ) -> dict[str, np.ndarray]:
        """Run ``signature`` on ``inputs`` (name -> array, or one array for a single-input signature)."""
        self._check(model, version)
        named = as_inputs(inputs)
        if not isinstance(named, dict):
            spec = self.runner.signatures.get(signature)
            if spec is None or len(spec.inputs) != 1:
                return self._run({}, signature)  # the runner says what is wrong, in the usual words
            named = {next(iter(spec.inputs)): named}
        return self._run(named, signature)

    def classify(
        self,
        images: Any,
        *,
        model: str | None = None,
        version: int | None = None,
        label: str | None = None,
        top_k: int = 5,
        send: str = SEND_TENSOR,
        labels: Sequence[str] | None = None,
        timeout: float | None = None,
    ) -> list[Classification]:
        """As the remote clients' ``classify``; class names from the model's manifest unless ``labels`` is given."""
        self._check(model, version)
        send, k = check_send(send), check_top_k(top_k)
        names = list(labels) if labels is not None else list(self.runner.manifest.labels)
        results: list[Classification] = []
        for signature, inputs in classify_batches(image_list(images), send, self.runner.manifest.input.size):
            probs = probabilities_of(self._run(inputs, signature), len(next(iter(inputs.values()))))
            if len(names) != probs.shape[1]:
                raise UsageError(f"labels has {len(names)} names but the model scores {probs.shape[1]} classes")
            results += classifications(probs, names, k)
        return results

    def metadata(
        self,
        model: str | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        refresh: bool = False,
    ) -> ModelMetadata:
        """The loaded model's signatures (the same ``SignatureSpec``s a server's metadata gives)."""
        self._check(model, version)
        return ModelMetadata(self.model_name, self.version, dict(self.runner.signatures))

    def manifest(
        self,
        model: str | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
        refresh: bool = False,
    ) -> Manifest:
        """The loaded model's manifest (what the edge server's ``deepclf_manifest`` metadata returns)."""
        self._check(model, version)
        return self.runner.manifest

    def status(
        self,
        model: str | None = None,
        *,
        version: int | None = None,
        label: str | None = None,
        timeout: float | None = None,
    ) -> ModelStatus:
        """Always AVAILABLE: the model is loaded."""
        self._check(model, version)
        return ModelStatus(self.model_name, (VersionStatus(self.version or 0, "AVAILABLE"),))

    def wait_until_available(self, model: str | None = None, timeout: float = 30.0, **kw: Any) -> ModelStatus:
        """Returns at once (the model is loaded)."""
        return self.status(model, **kw)

    def close(self) -> None:
        """Release the runner."""
        self.runner.close()

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
