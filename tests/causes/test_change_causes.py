from __future__ import annotations

from typing import Any

from trikopf.causes import (
    DIGEST_PREFIX,
    Reason,
    detect_change_cause,
    encode_essence,
    essence_of,
)

PREFIX = "trikopf.dev"
FINALIZER = "trikopf.dev/finalizer"
KEY = f"{PREFIX}/last-handled-configuration"


def make(spec: Any = None, **meta: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": "obj", "namespace": "ns", "uid": "u1", **meta},
    }
    if spec is not None:
        body["spec"] = spec
    return body


def detect(body: dict[str, Any], *, event: str = "MODIFIED", initial: bool = False) -> Any:
    stored = ((body["metadata"].get("annotations")) or {}).get(KEY)
    return detect_change_cause(
        event_type=event,
        body=body,
        finalizer=FINALIZER,
        stored_essence=stored,
        prefix=PREFIX,
        initial=initial,
        essence_limit=1000,
    )


def handled(body: dict[str, Any]) -> dict[str, Any]:
    essence = encode_essence(essence_of(body, prefix=PREFIX))
    body["metadata"].setdefault("annotations", {})[KEY] = essence
    return body


def test_essence_keeps_spec_other_fields_and_user_metadata_only() -> None:
    body = make(
        {"a": 1},
        labels={"l": "1"},
        annotations={"user": "x", f"{PREFIX}/progress": "{}", KEY: "{}"},
        resourceVersion="5",
    )
    body["data"] = {"k": "v"}
    body["status"] = {"s": 1}
    assert essence_of(body, prefix=PREFIX) == {
        "spec": {"a": 1},
        "data": {"k": "v"},
        "metadata": {"labels": {"l": "1"}, "annotations": {"user": "x"}},
    }


def test_object_without_stored_essence_is_created() -> None:
    cause = detect(make({"a": 1}))
    assert cause.reason is Reason.CREATE
    assert cause.old is None
    assert cause.new == {"spec": {"a": 1}}
    assert [tuple(i) for i in cause.diff] == [("add", (), None, {"spec": {"a": 1}})]


def test_unchanged_object_is_noop_and_resumed_on_first_sight() -> None:
    body = handled(make({"a": 1}))
    assert detect(body).reason is Reason.NOOP
    assert detect(body, initial=True).reason is Reason.RESUME


def test_changed_object_is_updated_with_a_diff() -> None:
    body = handled(make({"a": 1, "b": 1}))
    body["spec"] = {"a": 2, "b": 1}
    cause = detect(body)
    assert cause.reason is Reason.UPDATE
    assert [tuple(i) for i in cause.diff] == [("change", ("spec", "a"), 1, 2)]
    assert cause.old == {"spec": {"a": 1, "b": 1}}


def test_status_and_our_annotations_do_not_make_an_update() -> None:
    body = handled(make({"a": 1}))
    body["status"] = {"done": True}
    body["metadata"]["annotations"][f"{PREFIX}/progress"] = "{}"
    body["metadata"]["resourceVersion"] = "77"
    assert detect(body).reason is Reason.NOOP


def test_deletion_with_our_finalizer_is_delete_and_without_it_is_free() -> None:
    body = handled(make({"a": 1}, deletionTimestamp="2026-01-01T00:00:00Z", finalizers=[FINALIZER]))
    assert detect(body).reason is Reason.DELETE
    body["metadata"]["finalizers"] = ["other"]
    assert detect(body).reason is Reason.FREE


def test_deleted_event_is_gone() -> None:
    assert detect(make({"a": 1}), event="DELETED").reason is Reason.GONE


def test_too_big_essence_is_stored_as_a_digest_and_still_detects_changes() -> None:
    body = make({"blob": "x" * 2000})
    created = detect(body)
    assert created.essence is not None
    assert created.essence.startswith(DIGEST_PREFIX)
    body["metadata"]["annotations"] = {KEY: created.essence}
    assert detect(body).reason is Reason.NOOP
    body["spec"] = {"blob": "y" * 2000}
    updated = detect(body)
    assert updated.reason is Reason.UPDATE
    assert updated.old is None
    assert [tuple(i)[:2] for i in updated.diff] == [("change", ())]


def test_unreadable_stored_essence_is_an_update_not_a_creation() -> None:
    body = make({"a": 1}, annotations={KEY: "not json{"})
    assert detect(body).reason is Reason.UPDATE


def test_integers_beyond_64_bits_are_encoded_too() -> None:
    body = make({"big": 2**70})
    cause = detect(body)
    assert cause.essence is not None
    assert str(2**70) in cause.essence
    handled(body)
    assert detect(body).reason is Reason.NOOP
