"""A JSON schema for Kubeflow's ``TFJob`` (``kubeflow.org/v1``), written from the training operator's API.

Kubernetes' OpenAPI schemas do not cover custom resources, so this schema states what the operator accepts:
the structure of its CRD (``spec.runPolicy``, ``spec.successPolicy``, ``spec.tfReplicaSpecs``: a map from replica
type to ``replicas`` / ``restartPolicy`` / ``template``) plus the rules its admission webhook enforces (at most one
Chief or Master; every replica's pod has a container named ``tensorflow`` with an image). Unknown fields fail, as
under ``kubectl apply --validate=strict``. The pod templates themselves are checked separately against
Kubernetes' own ``PodTemplateSpec`` schema (``deepclf.deploy.validate``)::

    import jsonschema
    jsonschema.Draft202012Validator(TFJOB_SCHEMA).validate(tfjob)
"""

from __future__ import annotations

#: Replica types the operator knows: Chief and Master are the same role (Master is the old name).
REPLICA_TYPES = ("Chief", "Master", "Worker", "PS", "Evaluator")
#: ReplicaSpec.restartPolicy values; ExitCode restarts only on exit codes 128-255 (retryable).
RESTART_POLICIES = ("Always", "OnFailure", "Never", "ExitCode")
#: RunPolicy.cleanPodPolicy values.
CLEAN_POD_POLICIES = ("None", "Running", "All")
#: The container the operator injects TF_CONFIG into.
CONTAINER_NAME = "tensorflow"

_INT32 = {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
_NON_NEGATIVE_INT32 = {**_INT32, "minimum": 0}
_STRING_MAP = {"type": "object", "additionalProperties": {"type": "string"}}

_METADATA = {
    "type": "object",
    "required": ["name"],
    "properties": {
        # The webhook checks the name as a DNS-1035 label (it becomes part of pod and Service names).
        "name": {"type": "string", "pattern": "^[a-z]([-a-z0-9]*[a-z0-9])?$", "maxLength": 63},
        "namespace": {"type": "string"},
        "labels": _STRING_MAP,
        "annotations": _STRING_MAP,
    },
    "additionalProperties": False,
}

_RUN_POLICY = {
    "type": "object",
    "properties": {
        "cleanPodPolicy": {"enum": list(CLEAN_POD_POLICIES)},
        "ttlSecondsAfterFinished": _NON_NEGATIVE_INT32,
        "activeDeadlineSeconds": {"type": "integer", "minimum": 1},
        "backoffLimit": _NON_NEGATIVE_INT32,
        "suspend": {"type": "boolean"},
        "schedulingPolicy": {
            "type": "object",
            "properties": {
                "minAvailable": _INT32,
                "queue": {"type": "string"},
                "minResources": {"type": "object", "additionalProperties": {"type": ["string", "integer"]}},
                "priorityClass": {"type": "string"},
                "scheduleTimeoutSeconds": _INT32,
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}

#: The part of a pod template the operator itself relies on; Kubernetes' schema checks the rest.
_TEMPLATE = {
    "type": "object",
    "required": ["spec"],
    "properties": {
        "metadata": {"type": "object"},
        "spec": {
            "type": "object",
            "required": ["containers"],
            "properties": {
                "containers": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "required": ["name", "image"],
                        "properties": {"image": {"type": "string", "minLength": 1}},
                    },
                    "contains": {"type": "object", "properties": {"name": {"const": CONTAINER_NAME}}},
                },
            },
        },
    },
    "additionalProperties": False,
}

_REPLICA_SPEC = {
    "type": "object",
    "required": ["template"],
    "properties": {
        "replicas": _NON_NEGATIVE_INT32,
        "restartPolicy": {"enum": list(RESTART_POLICIES)},
        "template": _TEMPLATE,
    },
    "additionalProperties": False,
}

TFJOB_SCHEMA: dict[str, object] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "TFJob (kubeflow.org/v1), as the Kubeflow training operator accepts it",
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "kubeflow.org/v1"},
        "kind": {"const": "TFJob"},
        "metadata": _METADATA,
        "spec": {
            "type": "object",
            "required": ["tfReplicaSpecs"],
            "properties": {
                "runPolicy": _RUN_POLICY,
                "successPolicy": {"enum": ["", "AllWorkers"]},
                "enableDynamicWorker": {"type": "boolean"},
                "tfReplicaSpecs": {
                    "type": "object",
                    "minProperties": 1,
                    "propertyNames": {"enum": list(REPLICA_TYPES)},
                    "additionalProperties": _REPLICA_SPEC,
                    # Chief and Master are one role: the webhook refuses a job that has both.
                    "not": {"required": ["Chief", "Master"]},
                },
            },
            "additionalProperties": False,
        },
    },
    "additionalProperties": False,
}
