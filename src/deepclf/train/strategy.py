"""Pick the ``tf.distribute`` strategy so the same ``deepclf train`` scales from a laptop to several machines.

- ``TF_CONFIG`` set (a multi-worker cluster spec) -> ``MultiWorkerMirroredStrategy``;
- several GPUs visible -> ``MirroredStrategy`` (one replica per GPU);
- otherwise the default strategy: the one device (a GPU when one is present, else the CPU).
"""

from __future__ import annotations

import json
import os

from deepclf.errors import UsageError, require_tensorflow


def choose_strategy(name: str = "auto"):  # -> (tf.distribute.Strategy, str)
    """The strategy and a one-line description of it. ``name``: auto, default, mirrored, multiworker."""
    tf = require_tensorflow("choosing a distribution strategy")
    gpus = tf.config.list_physical_devices("GPU")
    if name == "auto":
        if os.environ.get("TF_CONFIG"):
            name = "multiworker"
        elif len(gpus) > 1:
            name = "mirrored"
        else:
            name = "default"
    if name == "multiworker":
        try:
            cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
        except json.JSONDecodeError as exc:
            raise UsageError(f"TF_CONFIG is not valid JSON: {exc}") from exc
        workers = len(cluster.get("worker", []))
        return tf.distribute.MultiWorkerMirroredStrategy(), f"MultiWorkerMirroredStrategy ({workers} workers)"
    if name == "mirrored":
        s = tf.distribute.MirroredStrategy()
        return s, f"MirroredStrategy ({s.num_replicas_in_sync} replicas)"
    if name == "default":
        device = f"GPU ({gpus[0].name})" if gpus else "CPU"
        return tf.distribute.get_strategy(), f"default strategy on one device: {device}"
    raise UsageError(f"unknown strategy {name!r}; expected auto, default, mirrored or multiworker")
