"""The attrs bodies and the one converter: camelCase on the wire, nothing invented, clear errors."""

from __future__ import annotations

import attrs
import pytest

from trikopf.structs import (
    Event,
    Lease,
    LeaseSpec,
    ListMeta,
    ObjectMeta,
    ObjectReference,
    Resource,
    SpecError,
    Status,
    WatchEvent,
    structure_spec,
    to_camel,
)


def test_snake_case_names_become_camel_case_on_the_wire() -> None:
    assert to_camel("owner_references") == "ownerReferences"
    assert to_camel("continue_") == "continue"
    assert to_camel("kind") == "kind"


def test_object_meta_reads_camel_case_and_drops_unknown_keys() -> None:
    raw = {
        "name": "x",
        "resourceVersion": "12",
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1", "controller": True}
        ],
        "managedFields": [{"manager": "kubectl"}],
    }
    meta = ObjectMeta.from_raw(raw)
    assert meta.name == "x"
    assert meta.resource_version == "12"
    assert meta.owner_references[0].uid == "u1"
    assert meta.owner_references[0].controller is True
    assert meta.to_raw() == {
        "name": "x",
        "resourceVersion": "12",
        "ownerReferences": [
            {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u1", "controller": True}
        ],
    }


def test_list_meta_reads_the_continue_token() -> None:
    meta = ListMeta.from_raw({"continue": "tok", "resourceVersion": "7", "remainingItemCount": 3})
    assert (meta.continue_, meta.resource_version, meta.remaining_item_count) == ("tok", "7", 3)


def test_bodies_always_write_their_api_version_and_kind() -> None:
    lease = Lease(spec=LeaseSpec(holder_identity="me", lease_duration_seconds=15))
    assert lease.to_raw() == {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "spec": {"holderIdentity": "me", "leaseDurationSeconds": 15},
    }


def test_status_reads_details_and_retry_after() -> None:
    status = Status.from_raw(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "TooManyRequests",
            "code": 429,
            "details": {"retryAfterSeconds": 3, "causes": [{"field": "spec.x"}]},
        }
    )
    assert status.code == 429
    assert status.details is not None
    assert status.details.retry_after_seconds == 3
    assert status.details.causes[0].field == "spec.x"


def test_event_refers_to_its_object() -> None:
    body = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "5"},
    }
    event = Event(involved_object=ObjectReference.to_object(body), reason="Done", type="Normal")
    raw = event.to_raw()
    assert raw["involvedObject"] == {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "name": "a",
        "namespace": "ns",
        "uid": "u",
        "resourceVersion": "5",
    }
    assert (raw["apiVersion"], raw["kind"], raw["reason"]) == ("v1", "Event", "Done")


def test_watch_event_exposes_the_objects_identity_without_copying() -> None:
    body = {"metadata": {"name": "a", "namespace": "ns", "uid": "u", "resourceVersion": "9"}}
    event = WatchEvent(type="ADDED", object=body)
    assert event.object is body
    assert (event.name, event.namespace, event.uid, event.resource_version) == ("a", "ns", "u", "9")
    assert WatchEvent(type="BOOKMARK", object={}).resource_version is None


def test_watch_event_is_an_immutable_value_made_by_position_or_keyword() -> None:
    body = {"metadata": {"uid": "u"}}
    event = WatchEvent("ADDED", body)
    assert event == WatchEvent(type="ADDED", object=body, listed=False)
    assert event != WatchEvent("ADDED", body, True)
    assert (event.type, event.object, event.listed) == ("ADDED", body, False)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        event.type = "DELETED"  # type: ignore[misc]
    assert attrs.evolve(event, listed=True).listed is True
    assert (
        repr(event) == "WatchEvent(type='ADDED', object={'metadata': {'uid': 'u'}}, listed=False)"
    )


def test_resource_paths_for_core_and_group_resources() -> None:
    pods = Resource(group="", version="v1", plural="pods", kind="Pod")
    kex = Resource(group="kopf.dev", version="v1", plural="kopfexamples", kind="KopfExample")
    nodes = Resource(group="", version="v1", plural="nodes", kind="Node", namespaced=False)
    assert pods.path() == "/api/v1/pods"
    assert pods.path(namespace="ns", name="p") == "/api/v1/namespaces/ns/pods/p"
    assert kex.path(namespace="ns", name="a", subresource="status") == (
        "/apis/kopf.dev/v1/namespaces/ns/kopfexamples/a/status"
    )
    assert nodes.path(namespace="ignored", name="n") == "/api/v1/nodes/n"
    assert (pods.api_version, kex.api_version) == ("v1", "kopf.dev/v1")
    with pytest.raises(ValueError, match="needs an object name"):
        kex.path(subresource="status")


@attrs.frozen
class Container:
    image: str
    cpu_limit: int = 1


@attrs.frozen
class Spec:
    replicas: int
    containers: list[Container] = attrs.field(factory=list)


def test_typed_spec_is_structured_from_camel_case() -> None:
    spec = structure_spec(
        {"replicas": 2, "containers": [{"image": "nginx", "cpuLimit": 4}], "extra": 1}, Spec
    )
    assert spec == Spec(replicas=2, containers=[Container(image="nginx", cpu_limit=4)])


def test_typed_spec_error_names_every_offending_field() -> None:
    with pytest.raises(SpecError) as info:
        structure_spec({"replicas": "many", "containers": [{"cpuLimit": 1}]}, Spec)
    message = str(info.value)
    assert "spec.replicas" in message
    assert "spec.containers[0].image: required field is missing" in message


def test_typed_spec_rejects_a_spec_that_is_not_an_object() -> None:
    with pytest.raises(SpecError, match="spec: expected an object, got list"):
        structure_spec([1, 2], Spec)


def test_nulls_in_api_bodies_read_as_defaults() -> None:
    meta = ObjectMeta.from_raw({"name": "a", "labels": None, "finalizers": None})
    assert meta.labels == {}
    assert meta.finalizers == []
    event = Event.from_raw({"metadata": {"annotations": None}, "count": None})
    assert event.metadata.annotations == {}


@attrs.frozen
class MaybeReplicas:
    replicas: int | None


def test_a_users_spec_keeps_explicit_nulls() -> None:
    assert structure_spec({"replicas": None}, MaybeReplicas) == MaybeReplicas(replicas=None)
