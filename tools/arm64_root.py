"""An arm64 Debian bookworm root (what Raspberry Pi OS 64-bit is built on), run on an x86 host through qemu-user
and binfmt_misc, for ``make test-arm64`` (docs/arm64.md)::

    python3 tools/arm64_root.py build                      # set up emulation, build the cached root (idempotent)
    python3 tools/arm64_root.py run [--device pi5] -- CMD   # one command in a throwaway copy of the root
    python3 tools/arm64_root.py shell                      # an interactive shell there
    python3 tools/arm64_root.py info                       # where the cache is, what it holds
    python3 tools/arm64_root.py clean                      # delete the cache (the next build starts over)

Needs root (debootstrap, chroot and mounts); what it lacks it installs with apt-get (qemu-user-static,
binfmt-support, debootstrap). Standard library only, so it runs before any venv exists.

The cache (``$DEEPCLF_ARM64_CACHE``, else ``${XDG_CACHE_HOME:-~/.cache}/deepclf/arm64-bookworm``) holds one root:
``debootstrap --variant=minbase`` of bookworm for arm64, plus ``/opt/edge``, a venv holding what
``pip install '.[edge]'`` pulled in (the project itself uninstalled again) and the test runner. Each is rebuilt
when what it was made from changes (the debootstrap line; the ``[edge]`` and test requirements in
pyproject.toml). Nothing ever writes to the cached root after it is built: every ``Session`` runs on an overlay
(the root as its read-only lower layer, a fresh upper layer per session), in a private mount namespace held by
one ``sh`` process, so the mounts vanish with it, whatever happens to the caller.

The emulated device. The root sees a Raspberry Pi's CPU as the board's kernel shows it: qemu emulates the core
(``QEMU_CPU``, so the auxiliary vector's HWCAPs are the core's), and a generated ``/proc/cpuinfo`` and
``/sys/devices/system/cpu`` say what the board's kernel says (cores, MIDR, caches). LiteRT's CPU detection
(the cpuinfo library, inside XNNPACK) reads exactly these; what it finds decides whether XNNPACK runs at all:

* no ``/sys`` (a bare chroot): cpuinfo cannot read the possible/present CPU lists, fails ("Error in cpuinfo:
  failed to parse both lists of possible and present processors"), and LiteRT runs without the XNNPACK
  delegate: other kernels, other numbers (a device without /sys mounted would do the same);
* the host's ``/sys`` with qemu-user 7.2's ``/proc/cpuinfo``, which is the host's x86 text (no MIDR, no
  "CPU architecture" line): cpuinfo knows neither the core nor the architecture, so it reserves no L2 entry, then
  writes one because the host's sysfs says L2 is per core: a segmentation fault. An artefact of emulation: a
  Linux arm64 kernel always prints "CPU architecture: 8" and the MIDR fields;
* the device's ``/proc/cpuinfo`` and ``/sys`` (``--device pi4``/``pi5``, the default ``pi4``): cpuinfo sees the
  board's cores, XNNPACK is applied, as on the board.
"""

from __future__ import annotations

import argparse
import configparser
import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import platform
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tomllib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

SUITE = "bookworm"
ARCH = "arm64"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
#: What the root is debootstrapped with: Python and venv, as on Raspberry Pi OS Lite (which ships python3-pip
#: too; the venv brings its own pip, so the root does without it: fewer packages to configure under emulation).
INCLUDE = ("python3", "python3-venv", "ca-certificates")
#: The host packages this needs, by the command that shows each is there.
HOST_PACKAGES = {
    "debootstrap": "debootstrap",
    "qemu-aarch64-static": "qemu-user-static",
    "update-binfmts": "binfmt-support",
}
#: The test runner and the few libraries the edge tests use beyond [edge], taken from the [dev] extra by name
#: ([dev] as a whole pulls TensorFlow through tensorflow-serving-api).
TEST_PACKAGES = ("pytest", "pytest-timeout", "pytest-asyncio", "requests")
VENV = "/opt/edge"
PATH_IN_ROOT = f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
STAMP = ".deepclf-root.json"
#: Where the host's CA bundle goes in a session (pip inside needs it when the host's pip does).
HOST_CA_IN_ROOT = "/etc/ssl/deepclf-host-ca.pem"


class SetupError(RuntimeError):
    """Emulation or the root cannot be set up; the message says why and what to do."""


def log(msg: str) -> None:
    print(f"[arm64] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ devices


@dataclasses.dataclass(frozen=True)
class Device:
    """A board as its kernel describes it to user space (``/proc/cpuinfo``, ``/sys/devices/system/cpu``) and
    the core qemu emulates for it. ``l2_shared``: one L2 for all cores (Cortex-A72 clusters) or one per core."""

    title: str
    qemu_cpu: str
    cores: int
    midr: tuple[int, int, int, int]  # implementer, variant, part, revision
    features: str
    model: str
    revision: str
    l1d_kb: int
    l1i_kb: int
    l2_kb: int
    l2_shared: bool
    l3_kb: int
    max_khz: int
    min_khz: int

    def proc_cpuinfo(self) -> str:
        impl, variant, part, rev = self.midr
        block = (
            "processor\t: {i}\nBogoMIPS\t: 108.00\nFeatures\t: {f}\nCPU implementer\t: 0x{impl:02x}\n"
            "CPU architecture: 8\nCPU variant\t: 0x{variant:x}\nCPU part\t: 0x{part:03x}\nCPU revision\t: {rev}\n\n"
        )
        text = "".join(
            block.format(i=i, f=self.features, impl=impl, variant=variant, part=part, rev=rev)
            for i in range(self.cores)
        )
        return text + f"Revision\t: {self.revision}\nSerial\t\t: 10000000deadbeef\nModel\t\t: {self.model}\n"

    def write_sysfs(self, sys_root: Path) -> None:
        """The ``devices/system/cpu`` part of sysfs (the only part anything here reads) under ``sys_root``."""
        cpu = sys_root / "devices" / "system" / "cpu"
        last = self.cores - 1
        for name, text in (("possible", f"0-{last}"), ("present", f"0-{last}"), ("online", f"0-{last}")):
            _write(cpu / name, text)
        _write(cpu / "kernel_max", str(last))
        caches = [
            (1, "Data", self.l1d_kb, False),
            (1, "Instruction", self.l1i_kb, False),
            (2, "Unified", self.l2_kb, self.l2_shared),
        ]
        if self.l3_kb:
            caches.append((3, "Unified", self.l3_kb, True))
        for i in range(self.cores):
            d = cpu / f"cpu{i}"
            for name, text in (
                ("topology/core_id", str(i)),
                ("topology/physical_package_id", "0"),
                ("topology/cluster_id", "0"),
                ("topology/core_siblings_list", f"0-{last}"),
                ("topology/cluster_cpus_list", f"0-{last}"),
                ("topology/thread_siblings_list", str(i)),
                ("cpufreq/cpuinfo_max_freq", str(self.max_khz)),
                ("cpufreq/cpuinfo_min_freq", str(self.min_khz)),
            ):
                _write(d / name, text)
            for index, (level, kind, kb, shared) in enumerate(caches):
                c = d / "cache" / f"index{index}"
                _write(c / "level", str(level))
                _write(c / "type", kind)
                _write(c / "size", f"{kb}K")
                _write(c / "coherency_line_size", "64")
                _write(c / "shared_cpu_list", f"0-{last}" if shared else str(i))


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + ("" if text.endswith("\n") else "\n"))


#: The boards the root can pretend to be. Figures from the boards' /proc/cpuinfo and Arm's manuals:
#: Raspberry Pi 4 (BCM2711): 4x Cortex-A72 r0p3, 32 KiB L1D / 48 KiB L1I per core, 1 MiB shared L2, no crypto;
#: Raspberry Pi 5 (BCM2712): 4x Cortex-A76 r4p1, 64/64 KiB L1, 512 KiB L2 per core, 2 MiB shared L3,
#: dot product and half-precision arithmetic.
DEVICES: dict[str, Device] = {
    "pi4": Device(
        "Raspberry Pi 4 (4x Cortex-A72)",
        "cortex-a72",
        4,
        (0x41, 0x0, 0xD08, 3),
        "fp asimd evtstrm crc32 cpuid",
        "Raspberry Pi 4 Model B Rev 1.4",
        "d03114",
        32,
        48,
        1024,
        True,
        0,
        1800000,
        600000,
    ),
    "pi5": Device(
        "Raspberry Pi 5 (4x Cortex-A76)",
        "cortex-a76",
        4,
        (0x41, 0x4, 0xD0B, 1),
        "fp asimd evtstrm aes pmull sha1 sha2 crc32 atomics fphp asimdhp cpuid asimdrdm lrcpc dcpop asimddp",
        "Raspberry Pi 5 Model B Rev 1.0",
        "d04170",
        64,
        64,
        512,
        False,
        2048,
        2400000,
        1500000,
    ),
}
#: ``none``: a bare chroot (qemu's default core, no /sys, qemu's /proc/cpuinfo); ``host-sys``: the host's /sys
#: bound in as well (crashes LiteRT, see the module docstring). Neither is what a board runs; both exist to show it.
BARE_DEVICES = ("none", "host-sys")
DEFAULT_DEVICE = "pi4"


# -------------------------------------------------------------------------------------------- the cache


def default_cache_dir() -> Path:
    env = os.environ.get("DEEPCLF_ARM64_CACHE", "").strip()
    if env:
        return Path(env).expanduser().resolve()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return (base / "deepclf" / f"{ARCH}-{SUITE}").resolve()


def pyproject_requirements(pyproject: Path = REPO / "pyproject.toml") -> tuple[list[str], list[str]]:
    """(the [edge] requirements, the test packages' requirements picked from [dev]) as pyproject.toml writes them."""
    extras = tomllib.loads(pyproject.read_text())["project"]["optional-dependencies"]
    dev = {_req_name(r): r for r in extras["dev"]}
    missing = [p for p in TEST_PACKAGES if p not in dev]
    if missing:
        raise SetupError(f"pyproject.toml's [dev] extra has no {', '.join(missing)} (needed in the arm64 root)")
    return list(extras["edge"]), [dev[p] for p in TEST_PACKAGES]


def _req_name(req: str) -> str:
    name = req
    for sep in "<>=!~;[ ":
        name = name.split(sep, 1)[0]
    return name.strip().lower().replace("_", "-")


def _key(*parts: object) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def base_key(mirror: str) -> str:
    del mirror  # the same packages whichever mirror serves them
    return _key("base-v1", SUITE, ARCH, "minbase", INCLUDE)


def deps_key(edge: list[str], test: list[str]) -> str:
    return _key("deps-v1", edge, test)


@dataclasses.dataclass
class Cache:
    """The cache folder: ``root/`` (the arm64 root, stamped with what it was built from), ``sessions/`` (upper
    layers of running sessions), ``logs/`` (the last build's logs), ``.lock``."""

    path: Path

    @property
    def root(self) -> Path:
        return self.path / "root"

    @property
    def stamp_path(self) -> Path:
        return self.root / STAMP

    def stamp(self) -> dict:
        try:
            return json.loads(self.stamp_path.read_text())
        except (OSError, ValueError):
            return {}

    def write_stamp(self, doc: dict) -> None:
        tmp = self.stamp_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True) + "\n")
        tmp.replace(self.stamp_path)

    @contextlib.contextmanager
    def lock(self, exclusive: bool) -> Iterator[None]:
        """Builds hold it exclusively, sessions shared: a root is never rebuilt under a running session."""
        self.path.mkdir(parents=True, exist_ok=True)
        with open(self.path / ".lock", "a+") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            try:
                yield
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)

    def ready(self) -> str | None:
        """None when the root is built and current; else why not."""
        doc = self.stamp()
        if not doc:
            return f"no arm64 root in {self.path} (run: python3 tools/arm64_root.py build)"
        if doc.get("base") != base_key(mirror_url()):
            return "the root was built from another debootstrap line (run: python3 tools/arm64_root.py build)"
        if doc.get("deps") != deps_key(*pyproject_requirements()):
            return "pyproject.toml's [edge] or test requirements changed (run: python3 tools/arm64_root.py build)"
        return None


def mirror_url() -> str:
    return os.environ.get("DEEPCLF_DEBIAN_MIRROR", "").strip() or DEFAULT_MIRROR


# ------------------------------------------------------------------------------------- host preconditions


def native_arm64() -> bool:
    return platform.machine().lower() in ("aarch64", "arm64")


def run_host(
    argv: Sequence[str], *, log_path: Path | None = None, timeout: float | None = None, what: str = ""
) -> None:
    """Runs a host command; its output goes to ``log_path`` (or is captured) and is quoted when it fails."""
    what = what or shlex.join(argv)
    if log_path is not None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "w") as out:
            code = subprocess.run(argv, stdout=out, stderr=subprocess.STDOUT, timeout=timeout, check=False).returncode
        tail = log_path.read_text(errors="replace")[-3000:]
    else:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
        code, tail = proc.returncode, (proc.stdout + proc.stderr)[-3000:]
    if code != 0:
        where = f" (log: {log_path})" if log_path else ""
        raise SetupError(f"{what} failed with exit code {code}{where}:\n{tail}")


def check_host() -> None:
    """Root, Linux, the commands this needs (installed with apt-get when missing), and binfmt_misc with qemu's
    aarch64 handler registered (not needed on an arm64 host)."""
    if sys.platform != "linux":
        raise SetupError(f"the arm64 root needs Linux (chroot, mount namespaces, binfmt_misc); this is {sys.platform}")
    if os.geteuid() != 0:
        raise SetupError(
            "the arm64 root needs root (debootstrap, chroot and mounts): run `make test-arm64` as root "
            "(CI runs as root), e.g. with sudo"
        )
    for tool in ("unshare", "nsenter", "chroot", "mount"):
        if shutil.which(tool) is None:
            raise SetupError(f"`{tool}` is missing (util-linux / coreutils): install it first")
    missing = sorted({pkg for cmd, pkg in HOST_PACKAGES.items() if shutil.which(cmd) is None and not _in_sbin(cmd)})
    if native_arm64():
        missing = [p for p in missing if p == "debootstrap"]
    if missing:
        if shutil.which("apt-get") is None:
            raise SetupError(f"missing host packages {', '.join(missing)} and no apt-get to install them")
        log(f"installing {' '.join(missing)} with apt-get")
        apt = ["apt-get", "-o", "DPkg::Lock::Timeout=600", "-y", "-q", "--no-install-recommends", "install", *missing]
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        proc = subprocess.run(apt, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:  # maybe the package lists are stale or absent
            run_host(["apt-get", "-o", "DPkg::Lock::Timeout=600", "update", "-q"], what="apt-get update")
            proc = subprocess.run(apt, capture_output=True, text=True, env=env, check=False)
        if proc.returncode != 0:
            raise SetupError(f"apt-get install {' '.join(missing)} failed:\n{(proc.stdout + proc.stderr)[-3000:]}")
    if not native_arm64():
        ensure_binfmt()


def _in_sbin(cmd: str) -> bool:
    return any(Path(d, cmd).exists() for d in ("/usr/sbin", "/sbin", "/usr/bin", "/usr/local/bin"))


BINFMT = Path("/proc/sys/fs/binfmt_misc")


def ensure_binfmt() -> None:
    """binfmt_misc mounted and qemu's aarch64 handler registered with the F flag (the kernel opens the
    interpreter at registration, so it works inside a chroot that does not contain it)."""
    if not (BINFMT / "status").exists():
        proc = subprocess.run(
            ["mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT)], capture_output=True, text=True, check=False
        )
        if proc.returncode != 0 or not (BINFMT / "status").exists():
            raise SetupError(
                f"binfmt_misc is not available ({BINFMT} could not be mounted: {proc.stderr.strip() or 'no status'}); "
                "arm64 binaries cannot run on this x86 host. In a container, run it privileged or register "
                "qemu-user-static's handlers on the host"
            )
    entry = BINFMT / "qemu-aarch64"
    if not entry.exists() or "enabled" not in entry.read_text():
        proc = subprocess.run(
            ["update-binfmts", "--enable", "qemu-aarch64"], capture_output=True, text=True, check=False
        )
        if not entry.exists():
            raise SetupError(
                "qemu's aarch64 handler is not registered with binfmt_misc "
                f"(update-binfmts --enable qemu-aarch64: {(proc.stdout + proc.stderr).strip() or 'no output'})"
            )
    text = entry.read_text()
    if "enabled" not in text.splitlines()[0]:
        raise SetupError(f"qemu's aarch64 binfmt handler is disabled: {entry}")
    flags = next((line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("flags:")), "")
    if "F" not in flags:
        raise SetupError(
            f"qemu's aarch64 binfmt handler lacks the F (fix binary) flag ({flags!r}): it would need qemu inside "
            "the root. Re-register it from qemu-user-static (update-binfmts --import qemu-aarch64)"
        )


# ---------------------------------------------------------------------------------------------- sessions


def _host_pip_settings() -> tuple[dict[str, str], Path | None]:
    """The host's pip settings a pip in the root needs too: an http(s) index or mirror, trusted hosts, proxies,
    the timeout, and the CA bundle (a host behind a TLS-inspecting proxy trusts its CA; the root must too).
    ``file://`` indexes and find-links are the host's own folders and stay behind."""
    env: dict[str, str] = {}
    ca: str | None = (
        os.environ.get("PIP_CERT") or os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("SSL_CERT_FILE")
    )
    files = [Path("/etc/pip.conf"), Path("/etc/xdg/pip/pip.conf")]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    files += [Path(xdg) / "pip" / "pip.conf", Path.home() / ".pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    settings: dict[str, str] = {}
    for f in files:
        parser = configparser.ConfigParser()
        with contextlib.suppress(OSError, configparser.Error):
            parser.read(f)
            for section in ("global", "install"):
                if parser.has_section(section):
                    settings.update(parser.items(section))
    for key in ("index-url", "extra-index-url", "trusted-host", "default-timeout", "proxy"):
        value = os.environ.get("PIP_" + key.upper().replace("-", "_")) or settings.get(key)
        if not value:
            continue
        if key.endswith("index-url"):
            value = " ".join(u for u in value.split() if u.startswith(("http://", "https://")))
            if not value:
                continue
        env["PIP_" + key.upper().replace("-", "_")] = value
    ca = ca or settings.get("cert")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        if os.environ.get(var):
            env[var] = os.environ[var]
    ca_path = Path(ca) if ca and Path(ca).is_file() else None
    if ca_path is not None:
        env["PIP_CERT"] = HOST_CA_IN_ROOT
    return env, ca_path


class Session:
    """One use of the root: a private mount namespace, held by a ``sh`` that lives as long as this object (and
    dies with this process), in which the root is mounted (as an overlay with a fresh upper layer, unless
    ``writable``: then the root itself, for building it) with /proc and a /dev/shm. Each command then runs in a
    namespace of its own inside that one, where the device's /proc/cpuinfo and /sys are mounted (``device``: the
    session's default, or any other per command)::

        with Session(Cache(default_cache_dir())) as s:
            s.put(Path("models"), "/root/models")
            print(s.run(["python3", "-c", "import platform; print(platform.machine())"]).stdout)  # aarch64
    """

    def __init__(self, cache: Cache, *, device: str = DEFAULT_DEVICE, writable: bool = False) -> None:
        if device not in DEVICES and device not in BARE_DEVICES:
            raise SetupError(f"unknown device {device!r}: one of {', '.join([*DEVICES, *BARE_DEVICES])}")
        self.cache, self.device, self.writable = cache, device, writable
        self.holder: subprocess.Popen[str] | None = None
        self._lock: contextlib.ExitStack | None = None
        self.pip_env, self.host_ca = _host_pip_settings()

    # -- life cycle

    def __enter__(self) -> Session:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        self._lock = contextlib.ExitStack()
        if not self.writable:
            self._lock.enter_context(self.cache.lock(exclusive=False))
        sessions = self.cache.path / "sessions"
        sessions.mkdir(parents=True, exist_ok=True)
        self.dir = Path(tempfile.mkdtemp(prefix="s-", dir=sessions))
        if self.writable:
            self.merged = self.cache.root
            mounts = []
        else:
            for d in ("upper", "work", "merged"):
                (self.dir / d).mkdir()
            self.merged = self.dir / "merged"
            opts = f"lowerdir={self.cache.root},upperdir={self.dir / 'upper'},workdir={self.dir / 'work'}"
            mounts = [f"mount -t overlay overlay -o {shlex.quote(opts)} {shlex.quote(str(self.merged))}"]
        m = shlex.quote(str(self.merged))
        mounts += [f"mount -t proc proc {m}/proc", f"mount -t tmpfs -o mode=1777 tmpfs {m}/dev/shm"]
        for name, dev in DEVICES.items():
            (self.dir / "devices" / name).mkdir(parents=True)
            (self.dir / "devices" / name / "cpuinfo").write_text(dev.proc_cpuinfo())
            dev.write_sysfs(self.dir / "devices" / name / "sys")
        # The holder: mounts, says so, then waits while its parent (this process) lives.
        script = " && ".join(mounts) + f" && echo ready && while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done"
        self.holder = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "--", "sh", "-c", script],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        assert self.holder.stdout is not None
        line = self.holder.stdout.readline()
        if line.strip() != "ready":
            err = self.holder.stderr.read() if self.holder.stderr else ""
            self.close()
            raise SetupError(f"could not mount the arm64 root ({script}): {err.strip() or line!r}")
        self._copy_host_files()

    def close(self) -> None:
        if self.holder is not None:
            ns = self._ns_inode()
            if self.holder.poll() is None:
                self.holder.send_signal(signal.SIGTERM)
                try:
                    self.holder.wait(10)
                except subprocess.TimeoutExpired:
                    self.holder.kill()
                    self.holder.wait(10)
            if ns:
                self._kill_namespace(ns)
            self.holder = None
        if getattr(self, "dir", None) is not None and self.dir.exists():
            if any(
                str(self.dir) in line.split(" ")[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
            ):
                log(f"leaving {self.dir}: something is mounted under it in this namespace")
            else:
                shutil.rmtree(self.dir, ignore_errors=True)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def _ns_inode(self) -> str:
        if self.holder is None:
            return ""
        try:
            return os.readlink(f"/proc/{self.holder.pid}/ns/mnt")
        except OSError:
            return ""

    def _kill_namespace(self, ns: str) -> None:
        """SIGKILL whatever this session started that still runs in its namespace (a server a test left)."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if os.readlink(entry / "ns" / "mnt") == ns:
                    os.kill(int(entry.name), signal.SIGKILL)

    def _copy_host_files(self) -> None:
        """resolv.conf and hosts (pip inside resolves names like the host), and the host's CA bundle."""
        self.put(Path("/etc/resolv.conf"), "/etc/resolv.conf")
        self.put(Path("/etc/hosts"), "/etc/hosts")
        if self.host_ca is not None:
            self.put(self.host_ca, HOST_CA_IN_ROOT)

    # -- using it

    @property
    def ns(self) -> list[str]:
        assert self.holder is not None, "session not started"
        return ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt", "--"]

    def host_path(self, path_in_root: str) -> Path:
        """The host's view of a path inside the root (through the holder's namespace), to read results."""
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root{self.merged}") / path_in_root.lstrip("/")

    def put(self, src: Path, dest_in_root: str) -> None:
        """Copies a host file or folder into the root (the host's cp, inside the namespace: fast)."""
        dest = f"{self.merged}/{dest_in_root.lstrip('/')}"
        proc = subprocess.run(
            [
                *self.ns,
                "sh",
                "-c",
                'mkdir -p "$(dirname "$2")" && rm -rf "$2" && cp -a "$1" "$2"',
                "sh",
                str(src.resolve()),  # entering the namespace moves the working directory to /
                dest,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if proc.returncode != 0:
            raise SetupError(f"copying {src} into the root failed: {proc.stderr.strip()}")

    def device_mounts(self, device: str) -> list[str]:
        """The mounts that make the root look like ``device`` (made per command, in a namespace of its own)."""
        m = shlex.quote(str(self.merged))
        if device in DEVICES:
            d = self.dir / "devices" / device
            return [
                f"mount --bind {shlex.quote(str(d / 'sys'))} {m}/sys",
                f"mount --bind {shlex.quote(str(d / 'cpuinfo'))} {m}/proc/cpuinfo",
            ]
        if device == "host-sys":
            return [f"mount --rbind /sys {m}/sys"]
        if device == "none":
            return []
        raise SetupError(f"unknown device {device!r}: one of {', '.join([*DEVICES, *BARE_DEVICES])}")

    def command(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/root",
        device: str | None = None,
        user: str | None = None,
        read_only: bool = False,
    ) -> list[str]:
        """The host command that runs ``argv`` in the root as ``device`` (default: the session's), in a clean
        environment: PATH with the venv first, HOME, a UTF-8 locale, the device's QEMU_CPU, the host's pip
        settings, then ``env``. Each command gets its own mount namespace (inside the session's) for the device's
        /sys and /proc/cpuinfo; unshare, sh, chroot and env each exec the next, so the command's pid is the
        emulated process's. ``user``: run as that user of the root (``chroot --userspec``); ``read_only``: the
        whole root read-only but a fresh /tmp (what systemd's ProtectSystem=strict and PrivateTmp=yes give)."""
        device = device or self.device
        full = {"PATH": PATH_IN_ROOT, "HOME": "/root", "LANG": "C.UTF-8", "TERM": os.environ.get("TERM", "dumb")}
        if device in DEVICES:
            full["QEMU_CPU"] = DEVICES[device].qemu_cpu
        full.update(self.pip_env)
        full.update(env or {})
        mounts = self.device_mounts(device)
        if read_only:
            m = shlex.quote(str(self.merged))
            mounts += [f"mount -o remount,bind,ro {m}", f"mount -t tmpfs -o mode=1777 tmpfs {m}/tmp"]
        script = " && ".join([*mounts, 'exec "$@"'])
        return [
            *self.ns,
            "unshare",
            "--mount",
            "--propagation",
            "private",
            "--",
            "sh",
            "-c",
            script,
            "sh",
            "chroot",
            *([f"--userspec={user}:{user}"] if user else []),
            str(self.merged),
            "/usr/bin/env",
            "-i",
            f"--chdir={cwd}",
            *(f"{k}={v}" for k, v in full.items()),
            *argv,
        ]

    def run(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/root",
        timeout: float | None = None,
        check: bool = False,
        capture: bool = True,
        device: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            self.command(argv, env=env, cwd=cwd, device=device),
            capture_output=capture,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            out = ((proc.stdout or "") + (proc.stderr or ""))[-4000:]
            raise SetupError(f"in the arm64 root, {shlex.join(argv)} failed with exit code {proc.returncode}:\n{out}")
        return proc

    def popen(
        self,
        argv: Sequence[str],
        *,
        env: dict[str, str] | None = None,
        cwd: str = "/root",
        device: str | None = None,
        user: str | None = None,
        read_only: bool = False,
        **kw: Any,
    ) -> subprocess.Popen:
        """A long-running command (a server); its pid is the emulated process's."""
        command = self.command(argv, env=env, cwd=cwd, device=device, user=user, read_only=read_only)
        return subprocess.Popen(command, **kw)


# -------------------------------------------------------------------------------------------------- build


def checkout_files(repo: Path = REPO) -> list[str]:
    """The checkout's files as a copy of it would hold them: tracked and untracked-but-not-ignored (what
    ``make test`` sees), without the venvs, caches and build output."""
    if (repo / ".git").exists() and shutil.which("git"):
        proc = subprocess.run(
            ["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            capture_output=True,
            check=False,
        )
        if proc.returncode == 0:
            return sorted({p for p in proc.stdout.decode().split("\0") if p and (repo / p).is_file()})
    skip = {
        ".git",
        ".venv",
        ".venv-peers",
        "build",
        "dist",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        "__pycache__",
    }
    out = []
    for dirpath, dirnames, filenames in os.walk(repo):
        dirnames[:] = [d for d in dirnames if d not in skip and not d.endswith(".egg-info")]
        out += [str(Path(dirpath, f).relative_to(repo)) for f in filenames if not f.endswith(".pyc")]
    return sorted(out)


def copy_checkout(dest: Path, repo: Path = REPO) -> Path:
    """A copy of the checkout in ``dest`` (host side), for ``pip install '.[edge]'`` in the root."""
    for rel in checkout_files(repo):
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(repo / rel, target)
    return dest


def du_mb(session: Session, path_in_root: str) -> float:
    proc = session.run(["du", "-sk", path_in_root], check=True)
    return int(proc.stdout.split()[0]) / 1024


def build(cache: Cache, *, force: bool = False) -> dict:
    """Builds what is missing or stale: the debootstrapped root, then the venv with the dependencies. Returns the
    stamp (what was built from what, the [edge] install size, timings)."""
    check_host()
    edge, test = pyproject_requirements()
    with cache.lock(exclusive=True):
        doc = {} if force else cache.stamp()
        logs = cache.path / "logs"
        if doc.get("base") != base_key(mirror_url()) or not (cache.root / "usr" / "bin" / "python3").exists():
            doc = _debootstrap(cache, logs)
        if doc.get("deps") != deps_key(edge, test):
            doc = _install_deps(cache, doc, edge, test, logs)
        return doc


def _debootstrap(cache: Cache, logs: Path) -> dict:
    new = cache.path / "root.new"
    for stale in (new, cache.path / "root.old"):
        if stale.exists():
            _remove_tree(stale)
    t0 = time.monotonic()
    log(f"debootstrap {SUITE} {ARCH} into {cache.root} (a few minutes: the packages are configured under emulation)")
    # In its own mount namespace: debootstrap mounts /proc and /sys in the target, and an interrupted run would
    # otherwise leave them mounted on the host.
    argv = [
        "unshare",
        "--mount",
        "--propagation",
        "private",
        "--",
        "debootstrap",
        f"--arch={ARCH}",
        "--variant=minbase",
        f"--include={','.join(INCLUDE)}",
        SUITE,
        str(new),
        mirror_url(),
    ]
    run_host(argv, log_path=logs / "debootstrap.log", what="debootstrap")
    for deb in (new / "var" / "cache" / "apt" / "archives").glob("*.deb"):
        deb.unlink()
    if cache.root.exists():
        cache.root.rename(cache.path / "root.old")
    new.rename(cache.root)
    if (cache.path / "root.old").exists():
        _remove_tree(cache.path / "root.old")
    doc = {"base": base_key(mirror_url()), "debootstrap_s": round(time.monotonic() - t0, 1)}
    cache.write_stamp(doc)
    log(f"debootstrap done in {doc['debootstrap_s']:.0f} s")
    return doc


def _remove_tree(path: Path) -> None:
    """Removes a root folder, refusing if anything is mounted under it (it would delete what is mounted)."""
    mounted = [
        line.split(" ")[4]
        for line in Path("/proc/self/mountinfo").read_text().splitlines()
        if line.split(" ")[4].startswith(str(path))
    ]
    if mounted:
        raise SetupError(f"not removing {path}: mounted under it: {', '.join(mounted)} (unmount them first)")
    shutil.rmtree(path)


def _install_deps(cache: Cache, doc: dict, edge: list[str], test: list[str], logs: Path) -> dict:
    """``/opt/edge``: a fresh venv (measured), ``pip install '.[edge]'`` from a copy of the checkout (measured),
    the project uninstalled again (each run installs it anew), then the test packages."""
    t0 = time.monotonic()
    log("creating /opt/edge and installing the [edge] dependencies in the root (a minute or two)")
    with Session(cache, device=DEFAULT_DEVICE, writable=True) as s:
        s.run(["rm", "-rf", VENV, "/root/deepclf-src"], check=True)
        s.run(["python3", "-m", "venv", VENV], check=True)
        fresh = du_mb(s, VENV)
        with tempfile.TemporaryDirectory() as tmp:
            copy_checkout(Path(tmp) / "src")
            s.put(Path(tmp) / "src", "/root/deepclf-src")
        t1 = time.monotonic()
        proc = s.run([f"{VENV}/bin/pip", "install", "--disable-pip-version-check", ".[edge]"], cwd="/root/deepclf-src")
        _save_log(logs / "pip-edge.log", proc)
        if proc.returncode != 0:
            raise SetupError(
                f"pip install '.[edge]' failed in the arm64 root (log: {logs / 'pip-edge.log'}):\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}"
            )
        install_s = time.monotonic() - t1
        with_edge = du_mb(s, VENV)
        sizes = s.run(
            ["sh", "-c", f"du -sk {VENV}/lib/python3*/site-packages/* | sort -rn | head -12"], check=True
        ).stdout
        freeze = s.run([f"{VENV}/bin/pip", "freeze", "--all"], check=True).stdout.split()
        s.run([f"{VENV}/bin/pip", "uninstall", "-y", "-q", "deep-image-classification"], check=True)
        s.run(["rm", "-rf", "/root/deepclf-src"], check=True)
        proc = s.run([f"{VENV}/bin/pip", "install", "--disable-pip-version-check", *test])
        _save_log(logs / "pip-test.log", proc)
        if proc.returncode != 0:
            raise SetupError(f"pip install of the test packages failed in the arm64 root:\n{proc.stderr[-3000:]}")
        py = s.run([f"{VENV}/bin/python", "-c", "import platform; print(platform.python_version())"], check=True)
    doc = dict(doc)
    doc.update(
        deps=deps_key(edge, test),
        deps_s=round(time.monotonic() - t0, 1),
        python=py.stdout.strip(),
        edge_install={
            "fresh_venv_mb": round(fresh, 1),
            "with_edge_mb": round(with_edge, 1),
            "added_mb": round(with_edge - fresh, 1),
            "pip_install_s": round(install_s, 1),
            "largest_kb": [line.replace(f"{VENV}/lib/", "") for line in sizes.splitlines()],
            "freeze": freeze,
        },
    )
    cache.write_stamp(doc)
    log(
        f"[edge] in the arm64 root: +{with_edge - fresh:.0f} MB over a fresh venv ({fresh:.0f} MB), "
        f"pip install {install_s:.0f} s; dependencies done in {doc['deps_s']:.0f} s"
    )
    return doc


def _save_log(path: Path, proc: subprocess.CompletedProcess[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text((proc.stdout or "") + (proc.stderr or ""))


# ---------------------------------------------------------------------------------------------------- CLI


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", type=Path, default=None, help="the cache folder (default: %(default)s)")
    sub = parser.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="set up emulation and build the cached root (idempotent)")
    b.add_argument("--force", action="store_true", help="rebuild everything")
    for name in ("run", "shell"):
        p = sub.add_parser(name, help=f"{name} in a throwaway overlay of the root")
        p.add_argument("--device", default=DEFAULT_DEVICE, choices=[*DEVICES, *BARE_DEVICES])
        if name == "run":
            p.add_argument("argv", nargs=argparse.REMAINDER)
    sub.add_parser("info", help="the cache's folder and stamp")
    sub.add_parser("clean", help="delete the cache")
    args = parser.parse_args(argv)
    cache = Cache(args.cache.resolve() if args.cache else default_cache_dir())
    try:
        if args.cmd == "build":
            t0 = time.monotonic()
            doc = build(cache, force=args.force)
            log(f"root ready in {cache.root} ({time.monotonic() - t0:.0f} s); Python {doc.get('python')}")
        elif args.cmd == "info":
            print(
                json.dumps(
                    {"cache": str(cache.path), "ready": cache.ready() or "yes", "stamp": cache.stamp()}, indent=2
                )
            )
        elif args.cmd == "clean":
            with cache.lock(exclusive=True):
                if cache.path.exists():
                    for child in cache.path.iterdir():
                        if child.name != ".lock":
                            _remove_tree(child) if child.is_dir() else child.unlink()
            log(f"removed {cache.path}")
        else:
            check_host()
            why = cache.ready()
            if why:
                raise SetupError(why)
            command = (
                list(args.argv[1:] if args.argv[:1] == ["--"] else args.argv) if args.cmd == "run" else ["bash", "-l"]
            )
            if not command:
                parser.error("run: give a command after --")
            with Session(cache, device=args.device) as s:
                return subprocess.run(s.command(command), check=False).returncode
    except SetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
