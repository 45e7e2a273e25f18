"""The images' pins: deployment/edge/constraints.txt and deployment/train/constraints.txt, checked offline.

Every distribution an image installs is pinned with ``==`` (the transitive requirements of
``deep-image-classification[<extra>]``, read from this venv's installed metadata), every pin satisfies
pyproject.toml, and each Dockerfile builds its wheels with the pins and installs them with ``--no-index``.
No Docker engine here (nor in CI), and no network: nothing is built or downloaded, the checks read the files and
``importlib.metadata``. ``tools/update_constraints.py`` regenerates the files (that needs the package index).
The USER line itself (uid 10001 = the manifests' runAsUser) is checked by test_edge.py and test_training.py.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

import pytest
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

from tests.deploy.conftest import REPO
from tests.scripts import load_script

tool = load_script("tools/update_constraints.py")  # its TARGETS name the files
PROJECT = canonicalize_name(tool.PROJECT)
EXTRAS = sorted(tool.TARGETS)


def parse_pins(text: str) -> dict[NormalizedName, Version]:
    """``{name: version}`` of a constraints file; AssertionError on anything but one plain ``name==version`` a line."""
    pins: dict[NormalizedName, Version] = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        try:
            req = Requirement(line)
        except InvalidRequirement as exc:
            raise AssertionError(f"line {number}: {line!r} is not a requirement ({exc})") from None
        assert not (req.url or req.extras or req.marker), f"line {number}: {line!r} is not a plain pin"
        specs = list(req.specifier)
        assert len(specs) == 1 and specs[0].operator == "==", f"line {number}: {line!r} is not pinned with =="
        assert "*" not in specs[0].version, f"line {number}: {line!r} is a wildcard, not a pin"
        name = canonicalize_name(req.name)
        assert name not in pins, f"line {number}: {req.name} is pinned twice"
        assert name != PROJECT, f"line {number}: the project itself is built from the context, not pinned"
        pins[name] = Version(specs[0].version)
    assert pins, "no pins"
    return pins


def resolved_python(constraints: str) -> str:
    """The Python the pins were resolved on, from the header line (``# Resolved on Python 3.11.7 (linux x86_64).``)."""
    lines = [line for line in constraints.splitlines() if line.startswith(tool.RESOLVED_PREFIX)]
    assert len(lines) == 1, "the header says once which Python the pins were resolved on"
    found = re.match(r"\d+\.\d+\.\d+\b", lines[0].removeprefix(tool.RESOLVED_PREFIX))
    assert found, lines[0]
    return found[0]


def required_closure(project: str, extras: set[str], python: str | None = None) -> set[NormalizedName]:
    """Every distribution ``project[extras]`` requires, transitively, per the installed metadata (project included).

    Markers are evaluated with each requested extra, for ``python`` (``"3.11.7"``: the images' Python, whatever
    runs the tests) or this interpreter; a dependency reached again with more extras is expanded again.
    """
    env = {} if python is None else {"python_full_version": python, "python_version": python.rsplit(".", 1)[0]}
    expanded: dict[NormalizedName, set[str]] = {}
    todo: list[tuple[NormalizedName, set[str]]] = [(canonicalize_name(project), set(extras))]
    while todo:
        name, wanted = todo.pop()
        if name in expanded and wanted <= expanded[name]:
            continue
        wanted = expanded.setdefault(name, set()) | wanted
        expanded[name] = wanted
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            raise AssertionError(
                f"{name} is required but not installed in this venv (make test installs .[all,dev])"
            ) from None
        for line in requires:
            req = Requirement(line)
            if req.marker is None or any(req.marker.evaluate({**env, "extra": extra}) for extra in wanted | {""}):
                todo.append((canonicalize_name(req.name), set(req.extras)))
    return set(expanded)


def project_requirements(extra: str) -> list[Requirement]:
    """pyproject.toml's requirements of ``project[extra]``: base dependencies and the extra, self-references expanded."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    reqs, todo, seen = [Requirement(d) for d in project["dependencies"]], [extra], set()
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for dep in project["optional-dependencies"][current]:
            req = Requirement(dep)
            if canonicalize_name(req.name) == PROJECT:
                todo.extend(req.extras)
            else:
                reqs.append(req)
    return reqs


def _constraints(extra: str) -> tuple[str, str]:
    path, dockerfile = tool.TARGETS[extra]
    return (REPO / path).read_text(encoding="utf-8"), (REPO / dockerfile).read_text(encoding="utf-8")


def _stages(dockerfile: str) -> list[str]:
    """The Dockerfile's build stages, each from its FROM line on (continuation lines joined)."""
    joined = re.sub(r"\\\n\s*", " ", dockerfile)
    lines = [line for line in joined.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    text = "\n".join(lines)
    return [m.group(0) for m in re.finditer(r"^FROM .*?(?=^FROM |\Z)", text, flags=re.M | re.S)]


# ------------------------------------------------------------------------------------------------------ the parser


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("numpy>=2.4\n", "not pinned with =="),
        ("numpy\n", "not pinned with =="),
        ("numpy==2.*\n", "wildcard"),
        ("numpy==2.4.6\nNumPy==2.4.6\n", "pinned twice"),
        ("ml_dtypes==0.6.0\nml-dtypes==0.6.0\n", "pinned twice"),
        ("numpy==2.4.6 ; python_version < '3.12'\n", "not a plain pin"),
        ("uvicorn[standard]==0.54.0\n", "not a plain pin"),
        ("deep-image-classification==0.1.0\n", "the project itself"),
        ("-r other.txt\n", "not a requirement"),
        ("# only comments\n", "no pins"),
    ],
)
def test_the_parser_rejects_what_is_not_one_pin_a_line(text, fragment):
    with pytest.raises(AssertionError, match=re.escape(fragment)):
        parse_pins(text)


def test_the_closure_follows_extras_and_markers():
    # httpx needs httpcore, which needs h11; the project's [tf] reaches [edge] through its self-reference
    assert {"httpx", "httpcore", "h11"} <= required_closure("httpx", set())
    edge = required_closure(tool.PROJECT, {"edge"})
    assert {"ai-edge-litert", "grpcio", "numpy", PROJECT} <= edge and "tensorflow" not in edge
    assert edge <= required_closure(tool.PROJECT, {"tf"}) and "tensorflow" in required_closure(tool.PROJECT, {"tf"})
    assert required_closure(tool.PROJECT, set()) == {PROJECT, "numpy", "pillow"}


# ------------------------------------------------------------------------------------------------ the pins


@pytest.mark.parametrize("extra", EXTRAS)
def test_every_required_distribution_is_pinned_and_nothing_else(extra):
    constraints, _ = _constraints(extra)
    pins = parse_pins(constraints)
    needed = required_closure(tool.PROJECT, {extra}, resolved_python(constraints)) - {PROJECT}
    regenerate = f"regenerate: python3.11 tools/update_constraints.py {extra}"
    assert not needed - set(pins), f"required but not pinned: {sorted(needed - set(pins))}; {regenerate}"
    assert not set(pins) - needed, f"pinned but not required: {sorted(set(pins) - needed)}; {regenerate}"


@pytest.mark.parametrize("extra", EXTRAS)
def test_pins_satisfy_the_projects_own_specifiers(extra):
    pins = parse_pins(_constraints(extra)[0])
    reqs = project_requirements(extra)
    assert {"numpy", "pillow"} <= {canonicalize_name(r.name) for r in reqs}
    for req in reqs:
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        name = canonicalize_name(req.name)
        assert name in pins, f"{req} (pyproject.toml, [{extra}]) is not pinned"
        assert req.specifier.contains(pins[name], prereleases=True), f"{name}=={pins[name]} breaks {req}"


@pytest.mark.parametrize("extra", EXTRAS)
def test_resolved_on_the_images_python(extra):
    constraints, dockerfile = _constraints(extra)
    # one base image for both stages, pinned to the patch release the pins were resolved on (the cp3XX wheels and
    # the python_version markers follow it); regenerate the pins when the tag moves
    froms = set(re.findall(r"^FROM (\S+)", dockerfile, flags=re.M))
    assert froms == {f"python:{resolved_python(constraints)}-slim"}, froms


# ------------------------------------------------------------------------------------------------ the Dockerfiles


@pytest.mark.parametrize("extra", EXTRAS)
def test_the_dockerfile_builds_with_the_pins_and_installs_offline(extra):
    path, dockerfile_path = tool.TARGETS[extra]
    _, dockerfile = _constraints(extra)
    build, runtime = _stages(dockerfile)
    # both stages copy the constraints file from the context, and the .dockerignore allow-list lets it in
    for stage in (build, runtime):
        copied = re.search(rf"^COPY {re.escape(path)} (\S+)$", stage, flags=re.M)
        assert copied, f"{path} is not copied into the stage:\n{stage}"
        assert f"-c {copied[1]} " in stage, f"the stage does not use {copied[1]}:\n{stage}"
    ignore = (REPO / f"{dockerfile_path}.dockerignore").read_text().splitlines()
    assert f"!{path}" in ignore, f"{dockerfile_path}.dockerignore keeps {path} out of the context"
    # build stage: the project and every dependency as wheels, at the pinned versions
    (wheel,) = re.findall(r"^RUN pip wheel .*$", build, flags=re.M)
    assert "--no-deps" not in wheel and "--wheel-dir /wheels" in wheel and f'".[{extra}]"' in wheel, wheel
    # runtime stage: one pip install, from /wheels only, then the wheels are removed
    (install,) = re.findall(r"^RUN pip install .*$", runtime, flags=re.M)
    assert re.search(r"\s--no-index\s", install) and "--find-links /wheels" in install, install
    assert f'"deep-image-classification[{extra}]"' in install and "rm -rf /wheels" in install, install
    assert not re.search(r"--(extra-)?index-url|--pre\b|--no-deps", install), install
    assert "COPY --from=build /wheels /wheels" in runtime
    # the server runs unprivileged: the last USER comes after the install and is not root
    users = re.findall(r"^USER (\S+)$", runtime, flags=re.M)
    assert users, "the runtime stage sets no USER (it would run as root)"
    assert users[-1].split(":")[0] not in {"0", "root"}, users[-1]
    assert runtime.index(install) < runtime.rindex(f"USER {users[-1]}")
    assert not re.search(r"^RUN .*\bpip\b", runtime[runtime.rindex("USER ") :], flags=re.M), "pip after USER"
