"""One served model as TF Serving's ``models.config`` describes it: name, base path, version policy and labels.

Both the server's configuration (``config.ServerConfig``) and the ``models.config`` parser (``modelconfig``) build
these; it depends on neither, so neither depends on the other::

    ModelConfig(name="flowers", base_path="models/flowers", policy="specific", versions=(1, 2),
                version_labels={"stable": 1, "canary": 2}).wanted([1, 2, 3])   # -> [1, 2]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from deepclf.errors import UsageError

POLICIES = ("latest", "all", "specific")


@dataclass(frozen=True)
class ModelConfig:
    """One served model: its name, base path (``<base>/<version>/``), version policy and labels."""

    name: str
    base_path: str
    policy: str = "latest"
    num_versions: int = 1
    versions: tuple[int, ...] = ()
    version_labels: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or "/" in self.name or ":" in self.name:
            raise UsageError(f"model name must be a non-empty string without '/' or ':', got {self.name!r}")
        if not self.base_path:
            raise UsageError(f"model {self.name!r} needs a base_path (the folder holding numeric versions)")
        if self.policy not in POLICIES:
            raise UsageError(f"model {self.name!r}: version policy must be one of {POLICIES}, got {self.policy!r}")
        if self.policy == "latest" and self.num_versions < 1:
            raise UsageError(f"model {self.name!r}: latest policy needs num_versions >= 1, got {self.num_versions}")
        if self.policy == "specific" and not self.versions:
            raise UsageError(f"model {self.name!r}: the specific version policy needs at least one version")
        for label, version in self.version_labels.items():
            if not label or not isinstance(version, int) or version < 0:
                raise UsageError(f"model {self.name!r}: bad version label {label!r} -> {version!r}")

    def wanted(self, available: Sequence[int]) -> list[int]:
        """Which of the versions found on disk this policy serves (sorted)."""
        found = sorted(set(available))
        if self.policy == "all":
            return found
        if self.policy == "specific":
            return [v for v in found if v in set(self.versions)]
        return found[-self.num_versions :]
