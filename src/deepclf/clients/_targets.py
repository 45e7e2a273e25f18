"""Server targets as the clients take them: gRPC ``host:port`` (or ``grpc(s)://``), REST base URLs, and lists::

parse_grpc_target("grpcs://edge:8500")       # ("edge:8500", True): TLS
parse_rest_url("http://edge:8501/")          # "http://edge:8501"
as_targets("edge-1:8500,edge-2:8500")        # ["edge-1:8500", "edge-2:8500"]: round-robin
"""

from __future__ import annotations

from collections.abc import Sequence

from deepclf.errors import UsageError


def parse_grpc_target(target: str) -> tuple[str, bool | None]:
    """``grpc://host:port`` -> (``host:port``, False); ``grpcs://`` -> True (TLS); bare ``host:port`` -> None."""
    if not isinstance(target, str) or not target.strip():
        raise UsageError(f"a gRPC target must be 'host:port' (or grpc://host:port), got {target!r}")
    t = target.strip()
    for scheme, tls in (("grpc://", False), ("grpcs://", True)):
        if t.startswith(scheme):
            t = t[len(scheme) :].rstrip("/")
            if not t:
                raise UsageError(f"gRPC target {target!r} names no host:port")
            return t, tls
    if "://" in t:
        raise UsageError(f"gRPC target {target!r} has scheme {t.split('://')[0]!r}; expected grpc:// or grpcs://")
    return t, None


def parse_rest_url(url: str) -> str:
    """A REST base URL (``http://host:8501``, optionally with a path prefix) without its trailing slash."""
    if not isinstance(url, str) or not url.startswith(("http://", "https://")) or len(url.split("://", 1)[1]) == 0:
        raise UsageError(f"a REST base URL must start with http:// or https:// and name a host, got {url!r}")
    return url.rstrip("/")


def as_targets(targets: str | Sequence[str]) -> list[str]:
    """One target or several (round-robin); a comma-separated string counts as several."""
    if isinstance(targets, str):
        items = [t.strip() for t in targets.split(",") if t.strip()] if "," in targets else [targets]
    else:
        items = list(targets)
    if not items:
        raise UsageError("need at least one server target")
    return items
