"""attrs bodies for what the framework itself reads and writes.

User objects stay plain mappings (:data:`RawBody`); the classes here cover metadata, owner
references, lists, API statuses, watch events, core/v1 Events and coordination.k8s.io Leases.
Timestamps stay strings exactly as the API sent them, so nothing is lost in a round trip.
Build them with ``Cls.from_raw(mapping)``, never ``Cls(**mapping)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

import attrs

from trikopf.structs.convert import structure, unstructure

__all__ = [
    "Event",
    "EventSource",
    "Lease",
    "LeaseSpec",
    "ListMeta",
    "ObjectList",
    "ObjectMeta",
    "ObjectReference",
    "OwnerReference",
    "RawBody",
    "Status",
    "StatusCause",
    "StatusDetails",
    "WatchEvent",
]

RawBody = dict[str, Any]
"""A Kubernetes object as parsed from JSON: the authoritative, lossless form."""

_B = TypeVar("_B", bound="_Body")


class _Body:
    """``from_raw`` and ``to_raw`` for every body class; ``null`` reads as the default."""

    __trikopf_drop_nulls__ = True

    @classmethod
    def from_raw(cls: type[_B], raw: Mapping[str, Any]) -> _B:
        """Structure from the wire mapping; unknown keys are dropped (keep ``raw`` if needed)."""
        return structure(raw, cls)

    def to_raw(self) -> dict[str, Any]:
        """The wire mapping (camelCase keys; fields at their default omitted)."""
        return unstructure(self)


@attrs.frozen(kw_only=True)
class OwnerReference(_Body):
    """``metadata.ownerReferences[]``: who owns an object, for garbage collection."""

    api_version: str
    kind: str
    name: str
    uid: str
    controller: bool | None = None
    block_owner_deletion: bool | None = None


@attrs.frozen(kw_only=True)
class ObjectMeta(_Body):
    """``metadata`` of any object."""

    name: str | None = None
    generate_name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    generation: int | None = None
    creation_timestamp: str | None = None
    deletion_timestamp: str | None = None
    deletion_grace_period_seconds: int | None = None
    labels: dict[str, str] = attrs.field(factory=dict)
    annotations: dict[str, str] = attrs.field(factory=dict)
    finalizers: list[str] = attrs.field(factory=list)
    owner_references: list[OwnerReference] = attrs.field(factory=list)


@attrs.frozen(kw_only=True)
class ListMeta(_Body):
    """``metadata`` of a list: where a watch continues and how to fetch the next page."""

    resource_version: str | None = None
    continue_: str | None = None
    remaining_item_count: int | None = None


@attrs.frozen(kw_only=True)
class StatusCause(_Body):
    """One cause of a failed request (usually a field that failed validation)."""

    reason: str | None = None
    message: str | None = None
    field: str | None = None


@attrs.frozen(kw_only=True)
class StatusDetails(_Body):
    """``details`` of a Status: which object the failure was about, and when to retry."""

    name: str | None = None
    group: str | None = None
    kind: str | None = None
    uid: str | None = None
    causes: list[StatusCause] = attrs.field(factory=list)
    retry_after_seconds: int | None = None


@attrs.frozen(kw_only=True)
class Status(_Body):
    """meta/v1 Status: the body of every API error (and of some successful deletions)."""

    kind: str = "Status"
    api_version: str = "v1"
    status: str | None = None
    message: str | None = None
    reason: str | None = None
    code: int | None = None
    details: StatusDetails | None = None


@attrs.frozen(kw_only=True)
class ObjectReference(_Body):
    """core/v1 ObjectReference, e.g. the ``involvedObject`` of an Event."""

    api_version: str | None = None
    kind: str | None = None
    name: str | None = None
    namespace: str | None = None
    uid: str | None = None
    resource_version: str | None = None
    field_path: str | None = None

    @classmethod
    def to_object(cls, body: Mapping[str, Any]) -> ObjectReference:
        """The reference to one object body (its apiVersion, kind, name, namespace, uid)."""
        meta = body.get("metadata") or {}
        return cls(
            api_version=body.get("apiVersion"),
            kind=body.get("kind"),
            name=meta.get("name"),
            namespace=meta.get("namespace"),
            uid=meta.get("uid"),
            resource_version=meta.get("resourceVersion"),
        )


@attrs.frozen(kw_only=True)
class EventSource(_Body):
    """``source`` of a core/v1 Event."""

    component: str | None = None
    host: str | None = None


@attrs.frozen(kw_only=True)
class Event(_Body):
    """A core/v1 Event, as the framework posts them about handled objects."""

    metadata: ObjectMeta = attrs.field(factory=ObjectMeta)
    involved_object: ObjectReference = attrs.field(factory=ObjectReference)
    reason: str | None = None
    message: str | None = None
    type: str | None = None
    source: EventSource | None = None
    first_timestamp: str | None = None
    last_timestamp: str | None = None
    event_time: str | None = None
    count: int | None = None
    action: str | None = None
    reporting_component: str | None = None
    reporting_instance: str | None = None
    api_version: str = "v1"
    kind: str = "Event"


@attrs.frozen(kw_only=True)
class LeaseSpec(_Body):
    """``spec`` of a coordination.k8s.io/v1 Lease (timestamps are RFC 3339 micro-time)."""

    holder_identity: str | None = None
    lease_duration_seconds: int | None = None
    acquire_time: str | None = None
    renew_time: str | None = None
    lease_transitions: int | None = None


@attrs.frozen(kw_only=True)
class Lease(_Body):
    """A coordination.k8s.io/v1 Lease, for leader election and shard membership."""

    metadata: ObjectMeta = attrs.field(factory=ObjectMeta)
    spec: LeaseSpec = attrs.field(factory=LeaseSpec)
    api_version: str = "coordination.k8s.io/v1"
    kind: str = "Lease"


@attrs.frozen(init=False)
class WatchEvent:
    """One event of a watch stream: its type and the object, parsed once and never copied.

    ``type`` is ``ADDED``, ``MODIFIED``, ``DELETED``, ``BOOKMARK`` or ``ERROR`` (the client
    raises on ``ERROR`` events, so consumers normally see the first four only). ``listed`` is
    true for objects that a list delivered (the watcher's initial list or a relist), not the
    stream: change detection tells objects that existed before the operator started by it.
    Immutable; made once per watch event, so its constructor is written out (positional or
    keyword arguments) instead of the generated one.
    """

    type: str
    object: RawBody
    listed: bool = False

    def __init__(self, type: str, object: RawBody, listed: bool = False) -> None:
        # The slots' own setters: no frozen-class __setattr__ and no bound method per call.
        _set_type(self, type)
        _set_object(self, object)
        _set_listed(self, listed)

    @property
    def resource_version(self) -> str | None:
        """The object's ``metadata.resourceVersion``: where a resumed watch continues."""
        meta = self.object.get("metadata")
        return meta.get("resourceVersion") if meta else None

    @property
    def uid(self) -> str | None:
        """The object's ``metadata.uid`` (``None`` for bookmarks)."""
        meta = self.object.get("metadata")
        return meta.get("uid") if meta else None

    @property
    def name(self) -> str | None:
        """The object's ``metadata.name``."""
        meta = self.object.get("metadata")
        return meta.get("name") if meta else None

    @property
    def namespace(self) -> str | None:
        """The object's ``metadata.namespace`` (``None`` if cluster-scoped)."""
        meta = self.object.get("metadata")
        return meta.get("namespace") if meta else None


_set_type = WatchEvent.type.__set__  # type: ignore[attr-defined]
_set_object = WatchEvent.object.__set__  # type: ignore[attr-defined]
_set_listed = WatchEvent.listed.__set__  # type: ignore[attr-defined]


@attrs.frozen(kw_only=True)
class ObjectList:
    """One page of a list: the raw items, and where to watch from / continue from."""

    items: list[RawBody]
    resource_version: str | None = None
    continue_: str | None = None
    remaining_item_count: int | None = None
    kind: str | None = None
    api_version: str | None = None
