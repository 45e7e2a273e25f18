"""Scripts of this repository (benchmarks/, tools/, deployment/) loaded as modules for the tests: they are files
run with ``python path/to/script.py``, not part of a package::

    run = load_script("benchmarks/run.py")
    run.main([...])
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_script(relative_path: str) -> ModuleType:
    """The script at ``REPO/relative_path``, executed once as a module named after its path and registered in
    ``sys.modules`` (dataclasses and typing look a module up by name); later calls return the same module."""
    name = "script_" + relative_path.removesuffix(".py").replace("/", "_").replace("-", "_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, REPO / relative_path)
    assert spec is not None and spec.loader is not None, relative_path
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
