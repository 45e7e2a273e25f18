"""Which model versions are loaded, and swapping them without failing a request: the ``ModelManager``.

It scans every model's base path for version folders (``deepclf.versions``' rules: ASCII-digit names in int64
range; hidden folders such as the temporary one ``deepclf convert`` publishes through, files and odd names like
``²`` are ignored, never fatal), loads what the version policy asks for,
and on every poll (``--file_system_poll_wait_seconds``) loads new versions and unloads removed or superseded ones.

A swap never fails a request: the new version is loaded first, then the reference is switched, and the old one is
unloaded only after the requests holding it have finished (each request holds its version through ``acquire``)::

    manager = ModelManager(models, loader=load_version, poll_seconds=1.0)
    manager.load_initial()                                   # raises if a model has no loadable version
    manager.start()                                          # background polling
    with manager.acquire("flowers", version=None, label=None) as served:
        served.runner.run({"image": batch})
    manager.close()

Like TF Serving's availability-preserving policy, a version that is no longer wanted stays loaded while none of
the wanted versions could be loaded (a broken new version does not take the model down).

A version that fails to load (anything its loader raises: a corrupt ``.tflite``, a permission error, a folder that
vanished mid-poll) is reported in its status (``END`` with the error) and retried by later polls with exponential
backoff: first after ``retry_seconds`` (default: the poll interval), then twice as long each time, at most
``MAX_RETRY_SECONDS``; at once when its folder's mtime changes (a re-publish). The log says when the next attempt
is due. One bad version or model never stops the poll from loading and serving the others::

    ModelManager(models, loader=load_version, poll_seconds=1.0)     # retries after 1, 2, 4, ... 300 s
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deepclf.errors import ModelFormatError, UsageError
from deepclf.protocol import errors as E
from deepclf.protocol.messages import ModelVersionState
from deepclf.versions import list_versions, skipped_folders, version_numbers

log = logging.getLogger("deepclf.serving")

START = ModelVersionState.Value("START")
LOADING = ModelVersionState.Value("LOADING")
AVAILABLE = ModelVersionState.Value("AVAILABLE")
UNLOADING = ModelVersionState.Value("UNLOADING")
END = ModelVersionState.Value("END")

#: How long an unload waits for in-flight requests before closing the runner anyway.
DRAIN_TIMEOUT_S = 60.0
#: The longest wait between two load attempts of a failing version (the backoff doubles up to this).
MAX_RETRY_SECONDS = 300.0
#: The first retry delay when polling is off (``poll_seconds=0``: only explicit ``poll_once`` calls retry).
DEFAULT_RETRY_SECONDS = 1.0


@dataclass
class ServedVersion:
    """One loaded version: its runner and how many requests are using it right now."""

    model: str
    version: int
    path: Path
    runner: Any
    format: str
    inflight: int = 0

    @property
    def signatures(self) -> dict[str, Any]:
        signatures: dict[str, Any] = self.runner.signatures  # a Runner's, or a runner_wrapper's (duck-typed)
        return signatures


@dataclass
class VersionStatus:
    """A version's lifecycle state (``ModelVersionStatus.State``) and the error that ended it, if any."""

    version: int
    state: int
    error_code: E.Code = E.Code.OK
    error_message: str = ""
    mtime: float = 0.0  # of the version folder when a load failed: a change means "retry now"
    failures: int = 0  # failed load attempts in a row (sets the backoff)
    retry_at: float = 0.0  # time.monotonic() after which a failed version is loaded again


@dataclass
class _Model:
    config: Any  # ModelConfig
    live: dict[int, ServedVersion] = field(default_factory=dict)
    status: dict[int, VersionStatus] = field(default_factory=dict)


class ModelManager:
    """Loads, serves, swaps and unloads the versions of every configured model (thread-safe)."""

    def __init__(
        self,
        models: Sequence[Any],
        *,
        loader: Callable[[Path], Any],
        poll_seconds: float = 1.0,
        describe_format: Callable[[Any], str] = lambda r: str(getattr(r, "format", "?")),
        on_change: Callable[[], None] | None = None,
        retry_seconds: float | None = None,
        max_retry_seconds: float = MAX_RETRY_SECONDS,
    ) -> None:
        self._models = {m.name: _Model(m) for m in models}
        self._loader = loader
        self._describe = describe_format
        self._on_change = on_change
        self.poll_seconds = poll_seconds
        # Failed loads: first retry after retry_seconds (default: one poll), doubling up to max_retry_seconds.
        self.retry_seconds = retry_seconds if retry_seconds is not None else (poll_seconds or DEFAULT_RETRY_SECONDS)
        self.max_retry_seconds = max(max_retry_seconds, self.retry_seconds)
        # What known_versions answers: rebuilt (under _lock) whenever a model or version appears or goes, and read
        # without a lock (one reference read), since metrics ask for it on every request.
        self._known: Mapping[str, frozenset[int]] = {}
        self._refresh_known()
        self._lock = threading.Condition()
        self._poll_lock = threading.Lock()  # one scan at a time (initial load vs. the poll thread)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------------------------

    #: How often ``load_initial`` repeats what it is waiting for in the log.
    WAIT_LOG_SECONDS = 30.0

    def load_initial(self, wait_seconds: float | None = 0.0) -> None:
        """Scan and load every model once; raise ``ModelFormatError`` naming what failed if one has no version.

        ``wait_seconds``: with polling on, how long to wait for a base path that does not exist yet or holds no
        version folder yet (storage mounted late, a model still being copied), polling every ``poll_seconds`` and
        saying so in the log, as TF Serving waits; ``None``: for ever (TF Serving's behaviour), 0: not at all.
        Versions that are there but fail to load are not waited for (their loader's retries apply).
        """
        deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
        logged = 0.0
        while True:
            waiting = self._not_there_yet()
            if not waiting:
                break
            timed_out = deadline is not None and time.monotonic() >= deadline
            if self.poll_seconds <= 0 or timed_out:
                name, base, missing = waiting[0]
                if missing:
                    raise ModelFormatError(
                        f"model {name!r}: base path {base} is not a folder (expected <base>/<version>/ folders)"
                        + (f"; waited {wait_seconds:g} s for it" if timed_out and wait_seconds else "")
                    )
                break  # no version folders: reported below with what was found
            if time.monotonic() >= logged:
                for name, base, missing in waiting:
                    log.warning(
                        "model %r: %s; waiting for it (polling every %g s, as TF Serving; "
                        "--file_system_poll_wait_seconds=0 fails at once instead)",
                        name,
                        f"base path {base} does not exist"
                        if missing
                        else f"no versions found under base path {base} (version folders are numbers, e.g. {base}/1/)",
                        self.poll_seconds,
                    )
                logged = time.monotonic() + self.WAIT_LOG_SECONDS
            if self._stop.wait(self.poll_seconds):
                raise ModelFormatError("stopped while waiting for the models' base paths")
        self.poll_once()
        problems = []
        for name, m in self._models.items():
            if not m.live:
                found = version_numbers(m.config.base_path)
                errors = [f"version {s.version}: {s.error_message}" for s in m.status.values() if s.error_message]
                skipped = skipped_folders(m.config.base_path)
                problems.append(
                    f"model {name!r}: no version could be loaded from {m.config.base_path} "
                    f"(version folders found: {found or 'none'}; policy {m.config.policy}"
                    + (f"; ignored folders (not ASCII-digit names): {skipped}" if skipped else "")
                    + (f"; {'; '.join(errors)}" if errors else "")
                    + ")"
                )
        if problems:
            raise ModelFormatError("; ".join(problems))

    def _not_there_yet(self) -> list[tuple[str, Path, bool]]:
        """Models whose base path is missing (``True``) or holds no version folder (``False``)."""
        out = []
        for m in self._models.values():
            base = Path(m.config.base_path)
            if not base.is_dir():
                out.append((m.config.name, base, True))
            elif not version_numbers(base):
                out.append((m.config.name, base, False))
        return out

    def start(self) -> None:
        """Poll the base paths every ``poll_seconds`` in a background thread (no-op when polling is off)."""
        if self.poll_seconds <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._poll_loop, name="deepclf-model-poll", daemon=True)
        self._thread.start()

    def _poll_loop(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # a failed scan must not stop future scans
                log.exception("model poll failed; retrying in %.1f s", self.poll_seconds)

    def close(self, timeout: float = DRAIN_TIMEOUT_S) -> None:
        """Stop polling, then unload every version once its in-flight requests are done."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._poll_lock:
            for m in self._models.values():
                for version in sorted(m.live):
                    self._unload(m, version, timeout)

    def check_labels(self, models: Sequence[Any], *, allow_unavailable: bool = False) -> None:
        """Raise ``FailedPrecondition`` when a label of ``models`` may not be assigned, as TF Serving checks it
        (server_core.cc ``UpdateModelVersionLabelMap``, at start-up and on every config reload):

        a label may name only a version that is AVAILABLE now; with ``allow_unavailable``
        (``--allow_version_labels_for_unavailable_models``) also any version when the label is new or already names
        that version, but an existing label still cannot move to a version that is not AVAILABLE (a version swap
        must not send the label's requests to a version still loading). At start-up nothing is AVAILABLE yet, so
        labels in the first config need the flag, as in TF Serving. A label naming a version that is not loaded
        answers its requests NOT_FOUND until it is.
        """
        for mc in models:
            if not mc.version_labels:
                continue
            with self._lock:
                current = self._models.get(mc.name)
                available = {v for v, st in current.status.items() if st.state == AVAILABLE} if current else set()
                existing = dict(current.config.version_labels) if current is not None else {}
            for label, version in mc.version_labels.items():
                if version in available:
                    continue
                if allow_unavailable and existing.get(label, version) == version:
                    continue
                hint = (
                    f" (label {label!r} names version {existing[label]} now: move it once version {version} is "
                    "AVAILABLE)"
                    if allow_unavailable
                    else f" (label {label!r}; start with --allow_version_labels_for_unavailable_models to assign new "
                    "labels to versions not loaded yet, or add the label by a config reload once the version is "
                    "AVAILABLE)"
                )
                raise E.FailedPrecondition(
                    f"Request to assign label to version {version} of model {mc.name}, which is not currently "
                    f"available for inference{hint}; available versions: {sorted(available)}"
                )

    def reconfigure(self, models: Sequence[Any]) -> None:
        """Serve ``models`` from now on (a reloaded ``models.config``), without a restart.

        Removed models stop taking new requests at once (``ModelNotFound``, 404) and are unloaded once their
        in-flight requests finish; new models are loaded; kept models get the new policy and labels (versions the
        policy no longer wants are unloaded, new ones loaded) by the scan that follows.
        """
        names = [m.name for m in models]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise UsageError(f"model names must be unique; repeated: {dupes}")
        with self._poll_lock:
            with self._lock:
                removed = [m for name, m in self._models.items() if name not in names]
                updated: dict[str, _Model] = {}
                for mc in models:
                    m = self._models.get(mc.name)
                    if m is None:
                        m = _Model(mc)
                    else:
                        m.config = mc
                    updated[mc.name] = m
                self._models = updated  # from here on, requests for a removed model get NOT_FOUND
                self._refresh_known()
            for m in removed:
                for version in sorted(m.live):
                    self._unload(m, version, DRAIN_TIMEOUT_S)
            if removed:
                self._changed()
        log.info(
            "models config applied: serving %s%s",
            names,
            f"; removed {[m.config.name for m in removed]}" if removed else "",
        )
        self.poll_once()

    # -- scanning, loading, unloading -----------------------------------------------------------------------

    def poll_once(self) -> None:
        """One scan of every base path: load wanted versions that are not loaded, unload the unwanted ones.

        A model whose scan fails (an unreadable base path, ...) is logged and skipped: the others are still scanned.
        """
        with self._poll_lock:
            for m in list(self._models.values()):
                try:
                    self._poll_model(m)
                except Exception:  # one model's trouble must not stop the others' scan
                    log.exception(
                        "model %r: scanning %s failed; keeping what is loaded", m.config.name, m.config.base_path
                    )

    def _poll_model(self, m: _Model) -> None:
        base = Path(m.config.base_path)
        if not base.is_dir():
            log.warning("model %r: base path %s is missing; keeping what is loaded", m.config.name, base)
            return
        folders = dict(list_versions(base))  # the folder of each version: "007" is version 7
        wanted = m.config.wanted(sorted(folders))
        for v in wanted:
            if v not in m.live and self._should_load(m, v, folders[v]):
                self._load(m, v, folders[v])  # never raises: a failure is the version's status
        keep_old = bool(wanted) and not any(v in m.live for v in wanted)
        if not keep_old:
            for v in sorted(set(m.live) - set(wanted)):
                self._unload(m, v, DRAIN_TIMEOUT_S)

    def _should_load(self, m: _Model, version: int, path: Path) -> bool:
        st = m.status.get(version)
        if st is None or st.state != END or not st.error_message:
            return True
        # A failed version: at once when its folder changed (re-published), else when its backoff has passed.
        return self._mtime(path) != st.mtime or time.monotonic() >= st.retry_at

    def _backoff(self, failures: int) -> float:
        """Seconds before the next attempt after ``failures`` failed ones in a row: 1x, 2x, 4x ... the first, capped."""
        return float(min(self.retry_seconds * 2.0 ** min(failures - 1, 60), self.max_retry_seconds))

    @staticmethod
    def _mtime(path: Path) -> float:
        try:
            return path.stat().st_mtime
        except OSError:
            return 0.0

    def _refresh_known(self) -> None:
        # Callers hold _lock (or are the constructor); readers get the old or the new mapping, never a half-built one.
        self._known = {name: frozenset(m.status) for name, m in self._models.items()}

    def _changed(self) -> None:
        """Tell ``on_change`` (gauges); its failure is logged, never a failed load or poll."""
        if self._on_change is None:
            return
        try:
            self._on_change()
        except Exception:  # a listener's bug must not stop loading
            log.exception("model change listener failed")

    def _set(self, m: _Model, status: VersionStatus) -> None:
        with self._lock:
            known = status.version in m.status
            m.status[status.version] = status
            if not known:
                self._refresh_known()
        self._changed()

    def _load(self, m: _Model, version: int, path: Path) -> None:
        previous = m.status.get(version)
        failures = previous.failures if previous is not None and previous.state == END else 0
        self._set(m, VersionStatus(version, LOADING, failures=failures))
        t0 = time.perf_counter()
        runner: Any = None
        try:
            runner = self._loader(path)
            served = ServedVersion(m.config.name, version, path, runner, self._describe(runner))
        except Exception as exc:  # noqa: BLE001 - a broken version is reported in its status, not fatal
            if runner is not None:  # loaded, then failed to describe itself: do not leak its interpreter
                with contextlib.suppress(Exception):
                    runner.close()
            err = E.from_exception(exc)
            failures += 1
            wait = self._backoff(failures)
            log.error(
                "model %r version %d failed to load (attempt %d): %s; next attempt in %.1f s, or at once when %s changes",
                m.config.name,
                version,
                failures,
                err.message,
                wait,
                path,
            )
            self._set(
                m,
                VersionStatus(
                    version,
                    END,
                    err.code,
                    err.message or type(exc).__name__,  # an error message is what marks a failed load
                    self._mtime(path),
                    failures,
                    time.monotonic() + wait,
                ),
            )
            return
        with self._lock:
            m.live[version] = served  # from here on, "latest" requests get the new version
            m.status[version] = VersionStatus(version, AVAILABLE)
        self._changed()
        if failures:
            log.info("model %r version %d loaded after %d failed attempts", m.config.name, version, failures)
        log.info(
            "model %r version %d AVAILABLE (%s, loaded in %.2f s)",
            m.config.name,
            version,
            served.format,
            time.perf_counter() - t0,
        )

    def _unload(self, m: _Model, version: int, timeout: float) -> None:
        with self._lock:
            served = m.live.pop(version, None)
            if served is None:
                return
            m.status[version] = VersionStatus(version, UNLOADING)
            # New requests can no longer find it; wait for the ones that hold it.
            deadline = time.monotonic() + timeout
            while served.inflight > 0:
                left = deadline - time.monotonic()
                if left <= 0:
                    log.warning(
                        "model %r version %d: %d requests still running after %.0f s; unloading anyway",
                        m.config.name,
                        version,
                        served.inflight,
                        timeout,
                    )
                    break
                self._lock.wait(left)
            m.status[version] = VersionStatus(version, END)
        with contextlib.suppress(Exception):
            served.runner.close()
        self._changed()
        log.info("model %r version %d unloaded", m.config.name, version)

    # -- requests --------------------------------------------------------------------------------------------

    def _find(self, name: str, version: int | None, label: str | None) -> ServedVersion:
        m = self._models.get(name)
        if m is None:
            what = f"Specific({name}, {version})" if version is not None else f"Latest({name})"
            raise E.ModelNotFound(f"Servable not found for request: {what}")  # TF Serving's words, no more
        if label is not None:
            labels = dict(m.config.version_labels)
            if label not in labels:  # TF Serving: INVALID_ARGUMENT (400), not NOT_FOUND
                raise E.InvalidInput(f"Unrecognized servable version label: {label}")
            version = labels[label]
        if version is None:
            if not m.live:
                raise E.ModelNotFound(f"Servable not found for request: Latest({name})")
            return m.live[max(m.live)]
        served = m.live.get(version)
        if served is None:
            raise E.ModelNotFound(f"Servable not found for request: Specific({name}, {version})")
        return served

    @contextlib.contextmanager
    def acquire(self, name: str, version: int | None = None, label: str | None = None) -> Iterator[ServedVersion]:
        """Hold a version for the length of a request (it is not unloaded before the block ends)."""
        with self._lock:
            served = self._find(name, version, label)
            served.inflight += 1
        try:
            yield served
        finally:
            with self._lock:
                served.inflight -= 1
                if served.inflight == 0:
                    self._lock.notify_all()

    def statuses(self, name: str, version: int | None = None, label: str | None = None) -> list[VersionStatus]:
        """What ``GetModelStatus`` reports: every version seen, or the one asked for (``ModelNotFound`` else).

        ``label`` is ignored, as TF Serving's GetModelStatus ignores ``version_label``: a status request by label
        answers every version.
        """
        del label
        with self._lock:
            m = self._models.get(name)
            if m is None or not m.status:
                raise E.ModelNotFound(f"Could not find any versions of model {name}")
            if version is not None:
                st = m.status.get(version)
                if st is None:
                    raise E.ModelNotFound(f"Could not find version {version} of model {name}")
                return [st]
            return [m.status[v] for v in sorted(m.status, reverse=True)]  # newest first, as TF Serving lists them

    def names(self) -> list[str]:
        return sorted(self._models)

    def known_versions(self) -> Mapping[str, frozenset[int]]:
        """Every served model and the versions it has a status for (loading, available, failed, unloaded):
        ``{"flowers": frozenset({1, 2})}``. Lock-free and allocation-free (a snapshot rebuilt on changes), for
        ``ServerMetrics(known_models=manager.known_versions)``, which asks on every request. Do not mutate it."""
        return self._known

    def ready(self) -> bool:
        """True when every model has at least one AVAILABLE version."""
        with self._lock:
            return all(m.live for m in self._models.values())

    def summary(self) -> dict[str, list[int]]:
        """Loaded versions per model: ``{"flowers": [1, 2]}``."""
        with self._lock:
            return {name: sorted(m.live) for name, m in self._models.items()}

    def formats(self) -> dict[str, dict[int, str]]:
        with self._lock:
            return {name: {v: s.format for v, s in m.live.items()} for name, m in self._models.items()}
