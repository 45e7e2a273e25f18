"""Pick the ``tf.distribute`` strategy so the same ``deepclf train`` scales from a laptop to several machines.

- ``TF_CONFIG`` set (a multi-worker cluster spec) -> ``MultiWorkerMirroredStrategy``;
- several GPUs visible -> ``MirroredStrategy`` (one replica per GPU);
- otherwise the default strategy: the one device (a GPU when one is present, else the CPU).

Multi-worker training has three rules that this module enforces (TensorFlow's multi-worker guide):

1. The strategy is created before any other TensorFlow op (collective ops are configured at program start-up), so
   ``choose_strategy`` must be the first TensorFlow call of a training process.
2. Every worker runs the same program; only the chief (``chief`` task, or ``worker`` 0 when the cluster has no
   ``chief``) writes the run folder. ``cluster_role`` tells which one this process is, from ``TF_CONFIG`` alone,
   without importing TensorFlow, so the caller can pick its output folder before the strategy exists.
3. A worker whose peers never come up must not hang: TensorFlow waits for them forever (and swallows SIGTERM), so
   the start-up handshake runs under a watchdog process that ends this one with a clear message after
   ``peer_timeout`` seconds::

       role = cluster_role()                      # TF-free: ClusterRole(task_type='worker', task_index=1, ...)
       dist = choose_strategy("auto", peer_timeout=120)
       with dist.strategy.scope(): ...
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from deepclf.errors import UsageError, require_tensorflow

STRATEGIES = ("auto", "default", "mirrored", "multiworker")
# How a worker that gave up waiting for its peers ends: killed by its watchdog (subprocess returncode -9; 137 in a
# shell), after the watchdog printed why.
PEER_TIMEOUT_EXIT = -9
DEFAULT_PEER_TIMEOUT = 120.0


@dataclass(frozen=True)
class ClusterRole:
    """This process's place in a ``TF_CONFIG`` cluster; a lone process is ``ClusterRole.single()``."""

    task_type: str | None
    task_index: int
    workers: int  # processes that train: the chief (if any) plus the workers
    peers: tuple[str, ...] = ()  # the other training processes' host:port
    has_chief: bool = False  # the cluster names a "chief" task (else worker 0 is the chief)

    @classmethod
    def single(cls) -> ClusterRole:
        return cls(None, 0, 1)

    @property
    def multi_worker(self) -> bool:
        return self.task_type is not None

    @property
    def is_chief(self) -> bool:
        """True for the process that writes the run folder."""
        return self.task_type in (None, "chief") or (
            self.task_type == "worker" and self.task_index == 0 and not self.has_chief
        )

    @property
    def name(self) -> str:
        return "single process" if self.task_type is None else f"{self.task_type} {self.task_index}"


def cluster_role(strategy: str = "auto", env: Mapping[str, str] | None = None) -> ClusterRole:
    """Read ``TF_CONFIG`` (without TensorFlow) and say which training process this is.

    ``TF_CONFIG`` is used only when the strategy is ``auto`` or ``multiworker``; ``multiworker`` without it is an
    error. A malformed ``TF_CONFIG`` is refused with what was wrong and what is expected::

        TF_CONFIG='{"cluster": {"worker": ["h0:2222", "h1:2222"]}, "task": {"type": "worker", "index": 1}}'
        cluster_role()  # -> ClusterRole(task_type='worker', task_index=1, workers=2, peers=('h0:2222',))
    """
    if strategy not in STRATEGIES:
        raise UsageError(f"unknown strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}")
    env = os.environ if env is None else env
    raw = env.get("TF_CONFIG", "").strip()
    if strategy not in ("auto", "multiworker") or not raw:
        if strategy == "multiworker":
            raise UsageError("--strategy multiworker needs TF_CONFIG (a cluster spec) in the environment")
        return ClusterRole.single()
    expected = (
        'expected {"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": N}} '
        '(an optional "chief" list of one)'
    )
    try:
        spec = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise UsageError(f"TF_CONFIG is not valid JSON ({exc}); {expected}") from None
    cluster, task = (spec.get("cluster"), spec.get("task")) if isinstance(spec, dict) else (None, None)
    if not isinstance(cluster, dict) or not isinstance(task, dict):
        raise UsageError(f"TF_CONFIG {raw!r} lacks a 'cluster' or 'task' object; {expected}")
    training = [*_hosts(cluster, "chief", raw, expected), *_hosts(cluster, "worker", raw, expected)]
    task_type, index = task.get("type"), task.get("index", 0)
    if task_type not in ("chief", "worker"):
        raise UsageError(
            f"TF_CONFIG task type {task_type!r} cannot train here; expected 'chief' or 'worker' "
            "(parameter servers and evaluators are not used by MultiWorkerMirroredStrategy)"
        )
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(cluster.get(task_type, [])):
        raise UsageError(
            f"TF_CONFIG task index {index!r} is not an index into cluster[{task_type!r}] ({cluster.get(task_type, [])})"
        )
    me = cluster[task_type][index]
    return ClusterRole(
        task_type, index, len(training), tuple(h for h in training if h != me), bool(cluster.get("chief"))
    )


def _hosts(cluster: dict[str, Any], kind: str, raw: str, expected: str) -> list[str]:
    hosts = cluster.get(kind, [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) and ":" in h for h in hosts):
        raise UsageError(
            f"TF_CONFIG cluster[{kind!r}] must be a list of 'host:port' strings, got {hosts!r}; {expected}"
        )
    return hosts


@dataclass
class Distribution:
    """The chosen strategy, a one-line description for logs, and this process's role in the cluster."""

    strategy: Any  # tf.distribute.Strategy
    description: str
    role: ClusterRole
    replicas: int


def choose_strategy(
    name: str = "auto",
    *,
    peer_timeout: float = DEFAULT_PEER_TIMEOUT,
    discard_on_timeout: Sequence[str | os.PathLike[str]] = (),
    role: ClusterRole | None = None,
) -> Distribution:
    """The strategy for ``name`` (auto, default, mirrored, multiworker). Must be the first TensorFlow op.

    For multi-worker training this also waits until every peer has joined (one collective all-reduce), at most
    ``peer_timeout`` seconds; past that a watchdog removes the ``discard_on_timeout`` folders (what this process
    wrote so far), prints which peers it waited for and kills the process (exit status ``PEER_TIMEOUT_EXIT``,
    137 in a shell). A hard kill is the only way out: TensorFlow blocks in C++ holding the GIL while it waits for the
    cluster, and ignores SIGTERM meanwhile. ``role``: this process's ``cluster_role(name)``, when the caller has it.
    """
    role = role if role is not None else cluster_role(name)
    tf = require_tensorflow("choosing a distribution strategy")
    if role.multi_worker:
        message = (
            f"{role.name} of {role.workers}: the other workers ({', '.join(role.peers)}) did not join within "
            f"{peer_timeout:g} s; start them with the same TF_CONFIG cluster (task index set per worker), check "
            "that the addresses resolve and the ports are reachable, or raise --peer-timeout"
        )
        with _Watchdog(peer_timeout, message, discard_on_timeout):
            strategy = tf.distribute.MultiWorkerMirroredStrategy()
            # Strategy creation returns before every peer is there; an all-reduce completes only when all are.
            strategy.reduce(tf.distribute.ReduceOp.SUM, strategy.run(lambda: tf.constant(1)), axis=None)
        return Distribution(
            strategy,
            f"MultiWorkerMirroredStrategy ({role.workers} workers, this is {role.name})",
            role,
            strategy.num_replicas_in_sync,
        )
    gpus = tf.config.list_physical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        s = tf.distribute.MirroredStrategy()
        return Distribution(s, f"MirroredStrategy ({s.num_replicas_in_sync} replicas)", role, s.num_replicas_in_sync)
    device = f"GPU ({gpus[0].name})" if gpus else "CPU"
    return Distribution(tf.distribute.get_strategy(), f"default strategy on one device: {device}", role, 1)


# The watchdog is a separate process because the thread that waits for the cluster holds the GIL inside
# TensorFlow's C++ code: a Python timer thread or signal handler in this process would never get to run.
_WATCHDOG = """
import os, select, shutil, signal, sys
pid, seconds, message, *paths = sys.argv[1:]
done, _, _ = select.select([sys.stdin], [], [], float(seconds))
if not done:  # the parent neither finished nor died (either closes the pipe) within the time
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)
    sys.stderr.write("error: " + message + "\\n")
    sys.stderr.flush()
    os.kill(int(pid), signal.SIGKILL)
"""


class _Watchdog:
    """Within the block, kill this process with ``message`` (and remove ``cleanup`` folders) after ``seconds``."""

    def __init__(self, seconds: float, message: str, cleanup: Sequence[str | os.PathLike[str]] = ()) -> None:
        self._argv = [
            sys.executable,
            "-c",
            _WATCHDOG,
            str(os.getpid()),
            f"{seconds:g}",
            message,
            *(os.fspath(p) for p in cleanup),
        ]

    def __enter__(self) -> _Watchdog:
        sys.stderr.flush()
        self._proc = subprocess.Popen(self._argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._proc.stdin is not None
        self._proc.stdin.close()  # "done": the watchdog exits at once
        self._proc.wait()
