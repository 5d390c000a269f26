"""Kubernetes protobuf request bodies, decoded for the built-in kinds kubectl creates that way.

kubectl >= 1.31 sends the typed objects of ``kubectl create configmap|secret|namespace|
serviceaccount|deployment|service|job|cronjob`` as ``application/vnd.kubernetes.protobuf``: the bytes
``k8s\\x00`` followed by a ``runtime.Unknown`` envelope (type meta + the object's message).
This module turns such a body into the same JSON object kubectl would otherwise have sent.

Only the messages of those kinds are described (field numbers from the Kubernetes API's
``generated.proto``). Go's encoder writes every non-pointer field, empty or not; empty values
are dropped as JSON's ``omitempty`` would drop them. A field this module does not know that
holds a value is an error, never silently dropped: the caller answers 415. Pure; no I/O.
"""

from __future__ import annotations

import base64
import datetime
from collections.abc import Mapping
from typing import Any, Final

__all__ = ["MEDIA_TYPE", "ProtobufError", "decode_object"]

MEDIA_TYPE: Final = "application/vnd.kubernetes.protobuf"
_MAGIC: Final = b"k8s\x00"


class ProtobufError(ValueError):
    """A protobuf body that is malformed or holds something this server cannot decode."""


# A field is (json name, type). Types: "string", "bytes" (base64 in JSON), "int", "bool",
# "time", "intorstring", "quantity", "map:<value type>", a message name, or a list of any of
# these as "[]<type>". A trailing "!" marks a Go pointer: its zero value is kept.
_Field = tuple[str, str]

_MESSAGES: dict[str, dict[int, _Field]] = {
    "Time": {1: ("seconds", "int"), 2: ("nanos", "int")},
    "ObjectMeta": {
        1: ("name", "string"),
        2: ("generateName", "string"),
        3: ("namespace", "string"),
        4: ("selfLink", "string"),
        5: ("uid", "string"),
        6: ("resourceVersion", "string"),
        7: ("generation", "int"),
        8: ("creationTimestamp", "time"),
        9: ("deletionTimestamp", "time"),
        10: ("deletionGracePeriodSeconds", "int!"),
        11: ("labels", "map:string"),
        12: ("annotations", "map:string"),
        13: ("ownerReferences", "[]OwnerReference"),
        14: ("finalizers", "[]string"),
    },
    "OwnerReference": {
        1: ("kind", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("controller", "bool!"),
        7: ("blockOwnerDeletion", "bool!"),
    },
    "LabelSelector": {
        1: ("matchLabels", "map:string"),
        2: ("matchExpressions", "[]LabelSelectorRequirement"),
    },
    "LabelSelectorRequirement": {
        1: ("key", "string"),
        2: ("operator", "string"),
        3: ("values", "[]string"),
    },
    "ObjectReference": {
        1: ("kind", "string"),
        2: ("namespace", "string"),
        3: ("name", "string"),
        4: ("uid", "string"),
        5: ("apiVersion", "string"),
        6: ("resourceVersion", "string"),
        7: ("fieldPath", "string"),
    },
    "LocalObjectReference": {1: ("name", "string")},
    # core/v1
    "ConfigMap": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:string"),
        3: ("binaryData", "map:bytes"),
        4: ("immutable", "bool!"),
    },
    "Secret": {
        1: ("metadata", "ObjectMeta"),
        2: ("data", "map:bytes"),
        3: ("type", "string"),
        4: ("stringData", "map:string"),
        5: ("immutable", "bool!"),
    },
    "Namespace": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "NamespaceSpec"),
        3: ("status", "NamespaceStatus"),
    },
    "NamespaceSpec": {1: ("finalizers", "[]string")},
    "NamespaceStatus": {1: ("phase", "string")},
    "ServiceAccount": {
        1: ("metadata", "ObjectMeta"),
        2: ("secrets", "[]ObjectReference"),
        3: ("imagePullSecrets", "[]LocalObjectReference"),
        4: ("automountServiceAccountToken", "bool!"),
    },
    "Service": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "ServiceSpec"),
        3: ("status", "ServiceStatus"),
    },
    "ServiceSpec": {
        1: ("ports", "[]ServicePort"),
        2: ("selector", "map:string"),
        3: ("clusterIP", "string"),
        4: ("type", "string"),
        5: ("externalIPs", "[]string"),
        7: ("sessionAffinity", "string"),
        8: ("loadBalancerIP", "string"),
        9: ("loadBalancerSourceRanges", "[]string"),
        10: ("externalName", "string"),
        11: ("externalTrafficPolicy", "string"),
        12: ("healthCheckNodePort", "int"),
        13: ("publishNotReadyAddresses", "bool"),
        17: ("ipFamilyPolicy", "string"),
        18: ("clusterIPs", "[]string"),
        19: ("ipFamilies", "[]string"),
        20: ("allocateLoadBalancerNodePorts", "bool!"),
        21: ("loadBalancerClass", "string"),
        22: ("internalTrafficPolicy", "string"),
    },
    "ServicePort": {
        1: ("name", "string"),
        2: ("protocol", "string"),
        3: ("port", "int"),
        4: ("targetPort", "intorstring"),
        5: ("nodePort", "int"),
        6: ("appProtocol", "string"),
    },
    "ServiceStatus": {},
    "PodTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "PodSpec")},
    "PodSpec": {
        2: ("containers", "[]Container"),
        3: ("restartPolicy", "string"),
        4: ("terminationGracePeriodSeconds", "int!"),
        6: ("dnsPolicy", "string"),
        7: ("nodeSelector", "map:string"),
        8: ("serviceAccountName", "string"),
        10: ("nodeName", "string"),
        11: ("hostNetwork", "bool"),
        15: ("imagePullSecrets", "[]LocalObjectReference"),
        16: ("hostname", "string"),
        17: ("subdomain", "string"),
        19: ("schedulerName", "string"),
        20: ("initContainers", "[]Container"),
        24: ("priorityClassName", "string"),
    },
    "Container": {
        1: ("name", "string"),
        2: ("image", "string"),
        3: ("command", "[]string"),
        4: ("args", "[]string"),
        5: ("workingDir", "string"),
        6: ("ports", "[]ContainerPort"),
        7: ("env", "[]EnvVar"),
        8: ("resources", "ResourceRequirements"),
        13: ("terminationMessagePath", "string"),
        14: ("imagePullPolicy", "string"),
        16: ("stdin", "bool"),
        17: ("stdinOnce", "bool"),
        18: ("tty", "bool"),
        20: ("terminationMessagePolicy", "string"),
    },
    "ContainerPort": {
        1: ("name", "string"),
        2: ("hostPort", "int"),
        3: ("containerPort", "int"),
        4: ("protocol", "string"),
        5: ("hostIP", "string"),
    },
    "EnvVar": {1: ("name", "string"), 2: ("value", "string")},
    "ResourceRequirements": {1: ("limits", "map:quantity"), 2: ("requests", "map:quantity")},
    # apps/v1
    "Deployment": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "DeploymentSpec"),
        3: ("status", "DeploymentStatus"),
    },
    "DeploymentSpec": {
        1: ("replicas", "int!"),
        2: ("selector", "LabelSelector"),
        3: ("template", "PodTemplateSpec"),
        4: ("strategy", "DeploymentStrategy"),
        5: ("minReadySeconds", "int"),
        6: ("revisionHistoryLimit", "int!"),
        7: ("paused", "bool"),
        9: ("progressDeadlineSeconds", "int!"),
    },
    "DeploymentStrategy": {1: ("type", "string"), 2: ("rollingUpdate", "RollingUpdateDeployment")},
    "RollingUpdateDeployment": {
        1: ("maxUnavailable", "intorstring"),
        2: ("maxSurge", "intorstring"),
    },
    "DeploymentStatus": {},
    # batch/v1
    "Job": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec"), 3: ("status", "JobStatus")},
    "JobSpec": {
        1: ("parallelism", "int!"),
        2: ("completions", "int!"),
        3: ("activeDeadlineSeconds", "int!"),
        4: ("selector", "LabelSelector"),
        5: ("manualSelector", "bool!"),
        6: ("template", "PodTemplateSpec"),
        7: ("backoffLimit", "int!"),
        8: ("ttlSecondsAfterFinished", "int!"),
        9: ("completionMode", "string"),
        10: ("suspend", "bool!"),
        12: ("backoffLimitPerIndex", "int!"),
        13: ("maxFailedIndexes", "int!"),
        14: ("podReplacementPolicy", "string"),
        15: ("managedBy", "string"),
    },
    "JobStatus": {},
    "CronJob": {
        1: ("metadata", "ObjectMeta"),
        2: ("spec", "CronJobSpec"),
        3: ("status", "CronJobStatus"),
    },
    "CronJobSpec": {
        1: ("schedule", "string"),
        2: ("startingDeadlineSeconds", "int!"),
        3: ("concurrencyPolicy", "string"),
        4: ("suspend", "bool!"),
        5: ("jobTemplate", "JobTemplateSpec"),
        6: ("successfulJobsHistoryLimit", "int!"),
        7: ("failedJobsHistoryLimit", "int!"),
        8: ("timeZone", "string"),
    },
    "JobTemplateSpec": {1: ("metadata", "ObjectMeta"), 2: ("spec", "JobSpec")},
    "CronJobStatus": {},
}

_KINDS: dict[tuple[str, str], str] = {
    ("v1", "ConfigMap"): "ConfigMap",
    ("v1", "Secret"): "Secret",
    ("v1", "Namespace"): "Namespace",
    ("v1", "ServiceAccount"): "ServiceAccount",
    ("v1", "Service"): "Service",
    ("apps/v1", "Deployment"): "Deployment",
    ("batch/v1", "Job"): "Job",
    ("batch/v1", "CronJob"): "CronJob",
}
_TYPE_META: dict[int, _Field] = {1: ("apiVersion", "string"), 2: ("kind", "string")}


def _fields(data: bytes) -> list[tuple[int, int, Any]]:
    """Split a message into (field number, wire type, raw value)."""
    out: list[tuple[int, int, Any]] = []
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            if pos >= len(data):
                raise ProtobufError("truncated varint")
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result
            if shift > 70:
                raise ProtobufError("varint too long")

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value: Any = varint()
        elif wire == 1:
            value, pos = data[pos : pos + 8], pos + 8
        elif wire == 2:
            length = varint()
            if pos + length > len(data):
                raise ProtobufError("truncated length-delimited field")
            value, pos = data[pos : pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        out.append((number, wire, value))
    return out


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _is_empty(wire: int, value: Any) -> bool:
    return (wire == 0 and value == 0) or (wire == 2 and len(value) == 0)


def _scalar(kind: str, wire: int, value: Any, where: str) -> Any:
    kind = kind.rstrip("!")
    expected = 0 if kind in ("int", "bool") else 2
    if wire != expected:
        raise ProtobufError(f"{where}: unexpected wire type {wire}")
    if kind == "string":
        try:
            return bytes(value).decode("utf-8")
        except UnicodeDecodeError:
            raise ProtobufError(f"{where}: invalid UTF-8") from None
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "int":
        return _signed(value)
    if kind == "bool":
        return bool(value)
    if kind == "quantity":
        return _message(value, {1: ("string", "string")}, where).get("string", "")
    if kind == "intorstring":
        parsed = _message(
            value, {1: ("type", "int"), 2: ("intVal", "int"), 3: ("strVal", "string")}, where
        )
        return parsed.get("strVal", "") if parsed.get("type") == 1 else parsed.get("intVal", 0)
    if kind == "time":
        parsed = _message(value, _MESSAGES["Time"], where)
        seconds = parsed.get("seconds", 0)
        if not seconds:
            return None
        moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    if kind in _MESSAGES:
        if wire != 2:
            raise ProtobufError(f"{where}: unexpected wire type {wire}")
        return _message(value, _MESSAGES[kind], where)
    raise ProtobufError(f"{where}: unsupported type {kind}")  # pragma: no cover - table error


def _message(data: bytes, schema: Mapping[int, _Field], where: str) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for number, wire, value in _fields(bytes(data)):
        field = schema.get(number)
        if field is None:
            if _is_empty(wire, value):
                continue  # an empty field Go's encoder always writes: nothing to lose
            raise ProtobufError(f"{where}: field number {number} is not supported by this server")
        name, kind = field
        path = f"{where}.{name}"
        if kind.startswith("map:"):
            if wire != 2:
                raise ProtobufError(f"{path}: unexpected wire type {wire}")
            entry = _message(value, {1: ("key", "string"), 2: ("value", kind[4:])}, path)
            result.setdefault(name, {})[entry.get("key", "")] = entry.get(
                "value", "" if kind != "map:quantity" else "0"
            )
        elif kind.startswith("[]"):
            item_kind = kind[2:]
            result.setdefault(name, []).append(_scalar(item_kind, wire, value, path))
        else:
            decoded = _scalar(kind, wire, value, path)
            omitted = decoded is None or (
                not kind.endswith("!")
                and decoded in ("", 0, False)
                and not isinstance(decoded, dict)
            )
            if not omitted:
                result[name] = decoded
    return result


def decode_object(body: bytes) -> dict[str, Any]:
    """Decode a Kubernetes protobuf body into the JSON object it stands for.

    Raises :class:`ProtobufError` if the body is malformed, of a kind this server does not
    decode, or holds fields it does not know.
    """
    if not body.startswith(_MAGIC):
        raise ProtobufError("the protobuf body does not start with the Kubernetes magic bytes")
    type_meta: dict[str, Any] = {}
    raw = b""
    # The runtime.Unknown envelope: typeMeta = 1, raw = 2, contentEncoding = 3, contentType = 4.
    for number, wire, value in _fields(body[len(_MAGIC) :]):
        if number == 1 and wire == 2:
            type_meta = _message(value, _TYPE_META, "typeMeta")
        elif number == 2 and wire == 2:
            raw = bytes(value)
        elif number in (3, 4) and wire == 2:
            if value:
                raise ProtobufError("encoded (compressed) protobuf bodies are not supported")
        else:
            raise ProtobufError(f"Unknown: unexpected field {number}")
    api_version, kind = type_meta.get("apiVersion", ""), type_meta.get("kind", "")
    message = _KINDS.get((api_version, kind))
    if message is None:
        raise ProtobufError(
            f"protobuf bodies of {kind or 'unknown kinds'} ({api_version}) are not supported by this server"
        )
    obj = {"kind": kind, "apiVersion": api_version}
    obj.update(_message(raw, _MESSAGES[message], kind))
    return obj
