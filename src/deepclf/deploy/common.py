"""Pieces every generated Kubernetes bundle shares: names, labels, security contexts, volumes and storage.

Each function returns plain data for ``yamltext.dump`` (never text), so a generator composes them::

    labels = standard_labels("deepclf-edge", component="model-server", name="deepclf-edge-server", version="0.1.0")
    pod = {"securityContext": pod_security_context(10001), "containers": [
        {"name": "server", "securityContext": container_security_context(), ...}]}
    pvc = claim("deepclf-edge-models", labels, StorageOptions(access_mode="ReadWriteMany"), size="1Gi",
                why="The models folder ...")
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from deepclf.deploy.yamltext import Comment
from deepclf.errors import UsageError

#: Access modes a claim can ask for, and what each means for the pods that mount it.
ACCESS_MODES = ("ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce")

#: A Kubernetes object name that is also a DNS label (Services, and pods' host names, must be).
_DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_IMAGE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$")
_QUANTITY = re.compile(r"^[1-9][0-9]*(Ki|Mi|Gi|Ti)$")


def check_name(field: str, value: str, max_len: int) -> None:
    """Raise ``UsageError`` unless ``value`` is a DNS-1035 label of at most ``max_len`` characters.

    ``max_len`` leaves room for the suffixes a generator adds (``-headless``, ``-<index>``): every derived name must
    stay within Kubernetes' 63-character label limit.
    """
    if not isinstance(value, str) or len(value) > max_len or not _DNS_LABEL.match(value):
        raise UsageError(
            f"{field} must be a Kubernetes DNS label (lower-case letters, digits and '-', starting with a letter, "
            f"at most {max_len} characters so derived names fit), got {value!r}"
        )


def check_image(field: str, value: str) -> None:
    """Raise ``UsageError`` unless ``value`` looks like a Docker image reference (``repo/name:tag``)."""
    if not isinstance(value, str) or not _IMAGE.match(value):
        raise UsageError(
            f"{field} must be a Docker image reference like 'registry.example.com/deepclf-edge:0.1.0', got {value!r}"
        )


def check_positive(field: str, value: object, *, minimum: int = 1, maximum: int | None = None) -> None:
    """Raise ``UsageError`` unless ``value`` is an int in ``minimum..maximum``."""
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or value < minimum
        or (maximum is not None and value > maximum)
    ):
        bound = f"in {minimum}..{maximum}" if maximum is not None else f">= {minimum}"
        raise UsageError(f"{field} must be an integer {bound}, got {value!r}")


def check_port(field: str, value: object) -> None:
    """Raise ``UsageError`` unless ``value`` is a TCP port number."""
    check_positive(field, value, minimum=1, maximum=65535)


@dataclass(frozen=True)
class StorageOptions:
    """How claims are provisioned: the access mode, the storage class (None: the cluster's default).

    ``ReadWriteMany`` (NFS, EFS, Filestore, Azure Files, CephFS): every pod on every node mounts the claim, so the
    autoscaler and the scheduler are free; the servers still mount it read-only. ``ReadOnlyMany``: the same for
    readers, but the volume must come filled (a snapshot or a pre-provisioned volume), since no pod may write it.
    ``ReadWriteOnce`` (the only mode of most block storage: EBS, PD, Azure Disk): one node at a time, so the
    generators keep every pod that mounts the claim on one node (required pod affinity); that caps a server at
    one node's capacity.
    """

    access_mode: str = "ReadWriteMany"
    storage_class: str | None = None

    def __post_init__(self) -> None:
        if self.access_mode not in ACCESS_MODES:
            raise UsageError(f"access mode must be one of {', '.join(ACCESS_MODES)}, got {self.access_mode!r}")
        if self.storage_class is not None and not re.match(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$", self.storage_class):
            raise UsageError(
                f"storage class must be a Kubernetes object name (lower-case, digits, '-', '.'), "
                f"got {self.storage_class!r}"
            )

    @property
    def single_node(self) -> bool:
        """Whether every pod mounting a claim must share one node."""
        return self.access_mode == "ReadWriteOnce"


def check_quantity(field: str, value: str) -> None:
    """Raise ``UsageError`` unless ``value`` is a binary-suffixed size such as ``5Gi``."""
    if not isinstance(value, str) or not _QUANTITY.match(value):
        raise UsageError(f"{field} must be a size such as '1Gi' or '512Mi', got {value!r}")


def standard_labels(instance: str, *, component: str, name: str, version: str) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels every object of a bundle carries."""
    return {
        "app.kubernetes.io/name": name,
        "app.kubernetes.io/instance": instance,
        "app.kubernetes.io/component": component,
        "app.kubernetes.io/part-of": "deepclf",
        "app.kubernetes.io/version": version,
    }


def selector_of(labels: Mapping[str, str]) -> dict[str, str]:
    """The stable subset of ``standard_labels`` that selectors use (a Deployment's selector can never change)."""
    return {k: labels[k] for k in ("app.kubernetes.io/name", "app.kubernetes.io/instance")}


def image_tag(image: str) -> str:
    """The tag of ``image`` as a label value (``unpinned`` when there is none or it is not a valid label value)."""
    last = image.split("@", 1)[0].rsplit("/", 1)[-1]
    tag = last.rsplit(":", 1)[1] if ":" in last else ""
    return tag if re.match(r"^[A-Za-z0-9]([A-Za-z0-9._-]{0,61}[A-Za-z0-9])?$", tag) else "unpinned"


def metadata(name: str, labels: Mapping[str, str]) -> dict[str, object]:
    """``metadata`` of a namespaced object (the namespace comes from kubectl's context or ``-n``)."""
    return {"name": name, "labels": dict(labels)}


def pod_security_context(uid: int) -> dict[str, object]:
    """Pod-level: never root, one fixed uid/gid, volumes group-owned by that gid, the runtime's seccomp profile.

    ``fsGroup`` makes volumes that support ownership changes (most block storage) readable and writable by the
    group; ``OnRootMismatch`` skips the recursive chown when the volume's root already has the right owner, so a
    large models or runs volume does not slow every pod start.
    """
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "fsGroupChangePolicy": "OnRootMismatch",
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, object]:
    """Container-level: no privilege escalation, no capabilities, a read-only root filesystem (writes go to /tmp)."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"]},
    }


#: Where every container mounts ``tmp_volume()``; also the training pods' HOME (Keras and matplotlib caches).
TMP_DIR = "/tmp"  # noqa: S108 - a path inside the pod, on its own emptyDir (tmp_volume), not the host's /tmp


def tmp_volume(size: str = "256Mi") -> dict[str, object]:
    """An ``emptyDir`` for /tmp: the root filesystem is read-only, and Python, TensorFlow and gRPC use /tmp."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": size}}


def tmp_mount() -> dict[str, str]:
    """A container's mount of ``tmp_volume()`` at ``TMP_DIR``."""
    return {"name": "tmp", "mountPath": TMP_DIR}


def claim(
    name: str, labels: Mapping[str, str], storage: StorageOptions, *, size: str, why: str
) -> dict[object, object]:
    """A PersistentVolumeClaim, with ``why`` (what it holds, who writes it) as its comment."""
    spec: dict[object, object] = {"accessModes": [storage.access_mode]}
    if storage.storage_class is not None:
        spec["storageClassName"] = storage.storage_class
    spec["resources"] = {"requests": {"storage": size}}
    mode_note = {
        "ReadWriteMany": "ReadWriteMany: pods on any node mount it (NFS, EFS, Filestore, Azure Files, CephFS...).",
        "ReadOnlyMany": "ReadOnlyMany: pods on any node mount it read-only; it must come filled (from a snapshot or "
        "a pre-provisioned volume), since no pod can write it.",
        "ReadWriteOnce": "ReadWriteOnce: one node at a time, so every pod mounting it is kept on one node "
        "(required pod affinity).",
    }[storage.access_mode]
    return {
        Comment(f"{why}\n{mode_note}"): None,
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(name, labels),
        "spec": spec,
    }


def same_node_affinity(selector: Mapping[str, str]) -> dict[str, object]:
    """Required pod affinity to the pods matching ``selector`` on the same node (for ReadWriteOnce claims)."""
    return {
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": {"matchLabels": dict(selector)}, "topologyKey": "kubernetes.io/hostname"},
            ],
        },
    }


def files_pod(
    name: str,
    labels: Mapping[str, str],
    *,
    image: str,
    uid: int,
    claims: Mapping[str, tuple[str, str]],
    why: str,
) -> dict[object, object]:
    """A pod that only sleeps, mounting ``claims`` (``{volume: (claim name, mount path)}``) read-write.

    It exists for ``kubectl cp`` (which needs ``tar`` in the image: the deepclf images are Debian-based and have
    it) into and out of the claims; delete it when done.
    """
    volumes: list[object] = [{"name": v, "persistentVolumeClaim": {"claimName": c}} for v, (c, _) in claims.items()]
    return {
        Comment(why): None,
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": metadata(name, labels),
        "spec": {
            "securityContext": pod_security_context(uid),
            "restartPolicy": "Never",
            "containers": [
                {
                    "name": "files",
                    "image": image,
                    "command": ["sleep", "86400"],
                    "securityContext": container_security_context(),
                    "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
                    "volumeMounts": [{"name": v, "mountPath": p} for v, (_, p) in claims.items()] + [tmp_mount()],
                }
            ],
            "volumes": [*volumes, tmp_volume()],
        },
    }


def kustomization(resources: list[str], why: str) -> dict[object, object]:
    """A ``kustomization.yaml`` listing ``resources`` (what ``kubectl apply -k`` applies)."""
    return {
        Comment(why): None,
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": list(resources),
    }
