"""OpenAPI v3 schemas of the built-in kinds the embedded server stores.

They are deliberately compact: every top-level field and all of ObjectMeta are described (so
``kubectl explain`` has something to say and ``fieldValidation=Strict`` catches typos there),
while the deep specs of pods, services and deployments are open objects
(``x-kubernetes-preserve-unknown-fields``) that accept whatever a real server would.
Pure data; no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["BUILTIN_SCHEMAS", "OBJECT_META", "builtin_schema", "schema_name"]


def _s(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "description": description, **extra}


def _i(description: str) -> dict[str, Any]:
    return {"type": "integer", "format": "int64", "description": description}


def _b(description: str) -> dict[str, Any]:
    return {"type": "boolean", "description": description}


def _map(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "additionalProperties": {"type": "string"},
    }


def _open(description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "x-kubernetes-preserve-unknown-fields": True,
    }


def _open_list(description: str, **extra: Any) -> dict[str, Any]:
    return {"type": "array", "description": description, "items": _open("An element."), **extra}


def _obj(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties}


def _partial(description: str, **properties: dict[str, Any]) -> dict[str, Any]:
    """An object whose common fields are described and whose other fields are accepted."""
    return {**_obj(description, **properties), "x-kubernetes-preserve-unknown-fields": True}


def _keyed_list(description: str, key: str, item: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "array",
        "description": description,
        "items": item,
        "x-kubernetes-patch-merge-key": key,
        "x-kubernetes-patch-strategy": "merge",
    }


_TIME = {"format": "date-time"}

OWNER_REFERENCE = {
    **_obj(
        "Identifies an owning object; dependents are garbage-collected when the owner goes.",
        apiVersion=_s("API version of the owner."),
        kind=_s("Kind of the owner."),
        name=_s("Name of the owner."),
        uid=_s("UID of the owner."),
        controller=_b("Whether the owner is the managing controller."),
        blockOwnerDeletion=_b("Whether foreground deletion of the owner waits for this object."),
    ),
    "required": ["apiVersion", "kind", "name", "uid"],
    "x-kubernetes-map-type": "atomic",
}

OBJECT_META: dict[str, Any] = _obj(
    "Standard object metadata: identity, labels, annotations, ownership and lifecycle.",
    name=_s("Unique name within a namespace (or the cluster for cluster-scoped kinds)."),
    generateName=_s("Prefix for a server-generated name, used when name is empty."),
    namespace=_s("Namespace the object lives in; empty for cluster-scoped kinds."),
    selfLink=_s("Deprecated; always empty."),
    uid=_s("Unique identifier assigned by the server for the object's lifetime."),
    resourceVersion=_s("Opaque version of the object, changed on every write."),
    generation=_i("Sequence number of the desired state (spec), bumped on spec changes."),
    creationTimestamp=_s("When the object was created (RFC 3339, UTC).", **_TIME),
    deletionTimestamp=_s("When deletion was requested; set while finalizers hold it.", **_TIME),
    deletionGracePeriodSeconds=_i("Seconds allowed for graceful termination."),
    labels=_map("Key-value pairs for selecting and grouping objects."),
    annotations=_map("Key-value pairs for tools and arbitrary non-identifying data."),
    ownerReferences={
        "type": "array",
        "description": "Objects this one depends on; merged by uid.",
        "items": OWNER_REFERENCE,
        "x-kubernetes-patch-merge-key": "uid",
        "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-list-type": "map",
        "x-kubernetes-list-map-keys": ["uid"],
    },
    finalizers={
        "type": "array",
        "description": "Conditions that must clear before the object is removed from storage.",
        "items": {"type": "string"},
        "x-kubernetes-patch-strategy": "merge",
        "x-kubernetes-list-type": "set",
    },
    managedFields=_open_list("Which manager set which fields (server-side apply bookkeeping)."),
)

_OBJECT_REFERENCE = _obj(
    "A reference to an object.",
    apiVersion=_s("API version of the referent."),
    kind=_s("Kind of the referent."),
    name=_s("Name of the referent."),
    namespace=_s("Namespace of the referent."),
    uid=_s("UID of the referent."),
    resourceVersion=_s("Version of the referent the reference was made against."),
    fieldPath=_s("A field within the referent, e.g. a container."),
)


_CONTAINER = _partial(
    "A container to run in a pod.",
    name=_s("Name of the container, unique in the pod (a DNS label)."),
    image=_s("Container image name."),
    command=_open_list("Entrypoint array, not run in a shell.", items={"type": "string"}),
    args=_open_list("Arguments to the entrypoint.", items={"type": "string"}),
    workingDir=_s("The container's working directory."),
    env=_keyed_list(
        "Environment variables; merged by name.",
        "name",
        _partial("An environment variable.", name=_s("Variable name."), value=_s("Value.")),
    ),
    ports=_keyed_list(
        "Ports to expose; merged by containerPort.",
        "containerPort",
        _partial(
            "A network port of the container.",
            containerPort=_i("Port number on the pod's IP address."),
            name=_s("A name services can refer to."),
            protocol=_s("TCP, UDP or SCTP."),
        ),
    ),
    resources=_partial(
        "Compute resources the container needs.",
        limits=_map("The most it may use."),
        requests=_map("The least it needs."),
    ),
    volumeMounts=_keyed_list(
        "Volumes mounted into the container; merged by mountPath.",
        "mountPath",
        _partial(
            "A volume mount.", name=_s("Volume name."), mountPath=_s("Path in the container.")
        ),
    ),
    imagePullPolicy=_s("Always, Never or IfNotPresent."),
)
_POD_SPEC = _partial(
    "The desired behaviour of the pod.",
    containers=_keyed_list("Containers of the pod; merged by name.", "name", _CONTAINER),
    initContainers=_keyed_list(
        "Containers run to completion before the others.", "name", _CONTAINER
    ),
    volumes=_keyed_list(
        "Volumes containers may mount; merged by name.", "name", _open("A volume.")
    ),
    restartPolicy=_s("Always, OnFailure or Never."),
    serviceAccountName=_s("The service account the pod runs as."),
    nodeName=_s("The node the pod is bound to."),
    nodeSelector=_map("Labels a node must have to run the pod."),
    terminationGracePeriodSeconds=_i("Seconds to stop gracefully before being killed."),
)
_LABEL_SELECTOR = _partial(
    "A label query over objects.",
    matchLabels=_map("Labels that must all be present with these values."),
    matchExpressions=_open_list("Requirements on labels (key, operator, values)."),
)


def _kind(description: str, **fields: dict[str, Any]) -> dict[str, Any]:
    return _obj(
        description,
        apiVersion=_s("The versioned schema of this representation of an object."),
        kind=_s("The REST resource this object represents, in CamelCase."),
        metadata=OBJECT_META,
        **fields,
    )


BUILTIN_SCHEMAS: dict[tuple[str, str, str], dict[str, Any]] = {
    ("", "v1", "Namespace"): _kind(
        "Namespace provides a scope for names.",
        spec=_obj(
            "The desired state of the namespace.",
            finalizers={"type": "array", "items": {"type": "string"}, "description": "Finalizers."},
        ),
        status=_obj(
            "The observed state of the namespace.",
            phase=_s("Active or Terminating."),
            conditions=_open_list("Observed conditions."),
        ),
    ),
    ("", "v1", "ConfigMap"): _kind(
        "ConfigMap holds configuration data for pods to consume.",
        data=_map("UTF-8 configuration data."),
        binaryData={
            **_map("Binary configuration data, base64-encoded."),
            "additionalProperties": {"type": "string", "format": "byte"},
        },
        immutable=_b("If true, the data cannot be changed."),
    ),
    ("", "v1", "Secret"): _kind(
        "Secret holds secret data of a certain type.",
        data={
            **_map("Secret data, base64-encoded."),
            "additionalProperties": {"type": "string", "format": "byte"},
        },
        stringData=_map("Write-only convenience: plain-text values merged into data."),
        type=_s("Used to facilitate programmatic handling of secret data."),
        immutable=_b("If true, the data cannot be changed."),
    ),
    ("", "v1", "ServiceAccount"): _kind(
        "ServiceAccount binds an identity to pods and tokens.",
        secrets=_open_list(
            "Secrets the service account may use.",
            **{"x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
        ),
        imagePullSecrets=_open_list("Secrets for pulling images."),
        automountServiceAccountToken=_b("Whether pods mount the token automatically."),
    ),
    ("", "v1", "Service"): _kind(
        "Service is a named abstraction of a network service.",
        spec=_partial(
            "The behaviour of the service.",
            type=_s("ClusterIP, NodePort, LoadBalancer or ExternalName."),
            selector=_map("Pods with these labels receive the service's traffic."),
            ports=_keyed_list(
                "Ports the service exposes; merged by port.",
                "port",
                _partial(
                    "A port of the service.",
                    name=_s("Port name, unique in the service."),
                    port=_i("Port the service exposes."),
                    targetPort={
                        "x-kubernetes-int-or-string": True,
                        "description": "Pod port, by number or name.",
                    },
                    protocol=_s("TCP, UDP or SCTP."),
                    nodePort=_i("Port on every node (NodePort, LoadBalancer)."),
                ),
            ),
            clusterIP=_s("The service's virtual IP address."),
            externalName=_s("DNS name that ExternalName services point to."),
        ),
        status=_open("The observed state of the service."),
    ),
    ("", "v1", "Pod"): _kind(
        "Pod is a collection of containers that run on a host.",
        spec=_POD_SPEC,
        status=_open("The observed state of the pod."),
    ),
    ("", "v1", "Event"): _kind(
        "Event is a report of something that happened in the cluster.",
        involvedObject=_OBJECT_REFERENCE,
        reason=_s("Short, machine-understandable reason for the transition."),
        message=_s("Human-readable description of the event."),
        source=_obj(
            "The component reporting the event.", component=_s("Component."), host=_s("Host.")
        ),
        firstTimestamp=_s("When the event was first recorded.", **_TIME),
        lastTimestamp=_s("When the event last happened.", **_TIME),
        count=_i("How many times the event has happened."),
        type=_s("Normal or Warning."),
        eventTime=_s("When the event first happened, in microseconds.", format="date-time"),
        series=_open("Data about the event series this event is part of."),
        action=_s("What action was taken or failed."),
        related=_OBJECT_REFERENCE,
        reportingComponent=_s("Name of the controller that emitted the event."),
        reportingInstance=_s("ID of the controller instance."),
    ),
    ("events.k8s.io", "v1", "Event"): _kind(
        "Event is a report of something that happened in the cluster.",
        eventTime=_s("When the event first happened.", **_TIME),
        series=_open("Data about the event series this event is part of."),
        reportingController=_s("Name of the controller that emitted the event."),
        reportingInstance=_s("ID of the controller instance."),
        action=_s("What action was taken or failed."),
        reason=_s("Why the action was taken."),
        regarding=_OBJECT_REFERENCE,
        related=_OBJECT_REFERENCE,
        note=_s("Human-readable description of the status of this operation."),
        type=_s("Normal or Warning."),
        deprecatedSource=_obj("Deprecated source.", component=_s("Component."), host=_s("Host.")),
        deprecatedFirstTimestamp=_s("Deprecated first timestamp.", **_TIME),
        deprecatedLastTimestamp=_s("Deprecated last timestamp.", **_TIME),
        deprecatedCount=_i("Deprecated count."),
    ),
    ("apps", "v1", "Deployment"): _kind(
        "Deployment enables declarative updates for pods and replica sets.",
        spec=_partial(
            "The desired behaviour of the deployment.",
            replicas=_i("Number of desired pods."),
            selector=_LABEL_SELECTOR,
            template=_partial(
                "The pods the deployment creates.",
                metadata=OBJECT_META,
                spec=_POD_SPEC,
            ),
            strategy=_partial(
                "How pods are replaced: Recreate or RollingUpdate.",
                type=_s("Recreate or RollingUpdate."),
                rollingUpdate=_open("Surge and unavailability limits of a rolling update."),
            ),
            minReadySeconds=_i("Seconds a new pod must be ready to count as available."),
            revisionHistoryLimit=_i("Old replica sets to keep for rollbacks."),
            paused=_b("Whether the deployment is paused."),
            progressDeadlineSeconds=_i("Seconds before a stuck rollout is reported."),
        ),
        status=_open("The most recently observed status of the deployment."),
    ),
    ("coordination.k8s.io", "v1", "Lease"): _kind(
        "Lease defines a lease concept: leader election, heartbeats.",
        spec=_obj(
            "The specification of the lease.",
            holderIdentity=_s("Identity of the current holder."),
            leaseDurationSeconds=_i("How long candidates wait before taking the lease over."),
            acquireTime=_s("When the current lease was acquired.", format="date-time"),
            renewTime=_s("When the current holder last renewed the lease.", format="date-time"),
            leaseTransitions=_i("How many times the lease changed holders."),
            strategy=_s("The strategy for picking the leader in coordinated election."),
            preferredHolder=_s("Signals to the holder that it should give the lease up."),
        ),
    ),
    ("apiextensions.k8s.io", "v1", "CustomResourceDefinition"): _kind(
        "CustomResourceDefinition registers a new resource served by the API server.",
        spec=_open("How the custom resource appears: group, names, scope, versions, schemas."),
        status=_open("The observed state of the definition: conditions, accepted names."),
    ),
    ("admissionregistration.k8s.io", "v1", "ValidatingWebhookConfiguration"): _kind(
        "ValidatingWebhookConfiguration lists webhooks that accept or reject objects.",
        webhooks=_open_list(
            "The webhooks.",
            **{"x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
        ),
    ),
    ("admissionregistration.k8s.io", "v1", "MutatingWebhookConfiguration"): _kind(
        "MutatingWebhookConfiguration lists webhooks that accept, reject or change objects.",
        webhooks=_open_list(
            "The webhooks.",
            **{"x-kubernetes-patch-merge-key": "name", "x-kubernetes-patch-strategy": "merge"},
        ),
    ),
}

_GROUP_PACKAGES = {
    "": "io.k8s.api.core",
    "apps": "io.k8s.api.apps",
    "events.k8s.io": "io.k8s.api.events",
    "coordination.k8s.io": "io.k8s.api.coordination",
    "apiextensions.k8s.io": "io.k8s.apiextensions-apiserver.pkg.apis.apiextensions",
    "admissionregistration.k8s.io": "io.k8s.api.admissionregistration",
}


def schema_name(group: str, version: str, kind: str) -> str:
    """The component name the real server gives a kind (``io.k8s.api.core.v1.Pod``).

    Custom resources use their group reversed: ``dev.kopf.v1.KopfExample``.
    """
    package = _GROUP_PACKAGES.get(group)
    if package is None:
        package = ".".join(reversed(group.split(".")))
    return f"{package}.{version}.{kind}"


def builtin_schema(group: str, version: str, kind: str) -> dict[str, Any] | None:
    """The schema of a built-in kind, or ``None`` if it is not one the server stores."""
    return BUILTIN_SCHEMAS.get((group, version, kind))
