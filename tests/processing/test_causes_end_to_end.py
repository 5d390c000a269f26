from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import trikopf

if TYPE_CHECKING:
    from tests.processing.conftest import Harness

ESSENCE = "trikopf.dev/last-handled-configuration"
PROGRESS = "trikopf.dev/progress"
FINALIZER = "trikopf.dev/finalizer"


async def test_create_handler_runs_once_and_its_result_lands_in_status(harness: Harness) -> None:
    calls: list[dict[str, Any]] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(spec: Any, name: str, reason: str, retry: int, **_: Any) -> Any:
        calls.append({"spec": dict(spec), "name": name, "reason": reason, "retry": retry})
        return {"message": "hello"}

    await harness.create(spec={"size": 3})
    await harness.settle()
    await harness.settle()

    assert calls == [{"spec": {"size": 3}, "name": "obj", "reason": "create", "retry": 0}]
    stored = await harness.get()
    assert stored["status"]["create_fn"] == {"message": "hello"}
    assert json.loads(stored["metadata"]["annotations"][ESSENCE]) == {"spec": {"size": 3}}
    assert PROGRESS not in stored["metadata"]["annotations"]
    assert harness.patches() == 1


async def test_update_handler_gets_the_diff_old_and_new(harness: Harness) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> None:
        pass

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(diff: trikopf.Diff, old: Any, new: Any, **_: Any) -> None:
        seen.append(([tuple(d) for d in diff], old, new))

    await harness.create(spec={"size": 1, "keep": True})
    await harness.settle()
    await harness.patch({"spec": {"size": 2}, "metadata": {"labels": {"tier": "x"}}})
    await harness.settle()
    await harness.settle()

    assert len(seen) == 1
    diff, old, new = seen[0]
    assert ("change", ("spec", "size"), 1, 2) in diff
    assert ("add", ("metadata",), None, {"labels": {"tier": "x"}}) in diff
    assert old == {"spec": {"size": 1, "keep": True}}
    assert new["spec"] == {"size": 2, "keep": True}


async def test_status_changes_do_not_trigger_update_handlers(harness: Harness) -> None:
    calls: list[str] = []

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(**_: Any) -> None:
        calls.append("update")

    await harness.create()
    await harness.settle()
    await harness.patch({"status": {"anything": 1}})
    await harness.settle()
    assert calls == []


async def test_resume_handlers_run_on_first_sight_after_a_restart_but_not_for_new_objects(
    harness: Harness,
) -> None:
    calls: list[str] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(**_: Any) -> None:
        calls.append("create")

    @trikopf.on.resume("kopfexamples", registry=harness.registry)
    def resume_fn(reason: str, **_: Any) -> None:
        calls.append(f"resume:{reason}")

    await harness.create()
    await harness.settle()
    await harness.settle()
    assert calls == ["create"]

    harness.forget()  # a new operator process
    await harness.settle()
    await harness.settle()
    assert calls == ["create", "resume:resume"]


async def test_field_handler_runs_only_when_its_field_changes(harness: Harness) -> None:
    seen: list[tuple[Any, Any, Any]] = []

    @trikopf.on.field("kopfexamples", field="spec.size", registry=harness.registry)
    def size_fn(old: Any, new: Any, diff: Any, **_: Any) -> None:
        seen.append((old, new, [tuple(d) for d in diff]))

    await harness.create(spec={"size": 1, "other": 1})
    await harness.settle()
    await harness.patch({"spec": {"other": 2}})
    await harness.settle()
    await harness.patch({"spec": {"size": 5}})
    await harness.settle()

    assert seen == [(None, 1, [("add", (), None, 1)]), (1, 5, [("change", (), 1, 5)])]


async def test_label_filters_select_the_objects(harness: Harness) -> None:
    names: list[str] = []

    @trikopf.on.create(
        "kopfexamples", registry=harness.registry, labels={"app": "web", "skip": trikopf.ABSENT}
    )
    def create_fn(name: str, **_: Any) -> None:
        names.append(name)

    await harness.create("a", labels={"app": "web"})
    await harness.create("b", labels={"app": "db"})
    await harness.create("c", labels={"app": "web", "skip": "yes"})
    for name in "abc":
        await harness.settle(name)
    assert names == ["a"]


async def test_handler_patch_and_memo_are_shared_within_the_operator(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def first(patch: trikopf.Patch, memo: trikopf.Memo, **_: Any) -> None:
        memo.counter = memo.get("counter", 0) + 1
        patch.metadata.labels["handled"] = "yes"
        patch.status["phase"] = "Ready"

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def second(patch: trikopf.Patch, memo: trikopf.Memo, **_: Any) -> None:
        memo.counter += 10
        patch.spec["defaulted"] = True

    await harness.create()
    await harness.settle()
    stored = await harness.get()
    # The object's memo (a copy of the operator's, as in Kopf) is shared by its handlers.
    assert harness.states["obj"].memo.counter == 11
    assert "counter" not in harness.memo
    assert stored["metadata"]["labels"] == {"handled": "yes"}
    assert stored["status"]["phase"] == "Ready"
    assert stored["spec"]["defaulted"] is True
    assert harness.patches() == 1


async def test_an_update_round_sends_one_patch(harness: Harness) -> None:
    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(**_: Any) -> str:
        return "updated"

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def another(patch: trikopf.Patch, **_: Any) -> None:
        patch.metadata.labels["seen"] = "yes"

    await harness.create()
    await harness.settle()
    await harness.patch({"spec": {"size": 2}})
    before = harness.patches()
    await harness.settle()
    await harness.settle()
    assert harness.patches() - before == 1
    stored = await harness.get()
    assert stored["status"]["update_fn"] == "updated"
    assert stored["metadata"]["labels"] == {"seen": "yes"}


async def test_a_failing_filter_skips_its_handler_and_spares_the_others(harness: Harness) -> None:
    calls: list[str] = []

    def broken_filter(**_: Any) -> bool:
        raise ZeroDivisionError("in a filter")

    @trikopf.on.create("kopfexamples", registry=harness.registry, when=broken_filter)
    def filtered(**_: Any) -> None:
        calls.append("filtered")

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def plain(**_: Any) -> None:
        calls.append("plain")

    await harness.create()
    await harness.settle()
    assert calls == ["plain"]
    events = await harness.events()
    assert any("filters of handler 'filtered' failed" in m for _, _, m in events)


async def test_an_essence_too_big_for_an_annotation_is_stored_as_a_digest(
    harness: Harness,
) -> None:
    harness.settings.persistence.essence_limit = 1000
    seen: list[Any] = []

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(old: Any, new: Any, **_: Any) -> None:
        seen.append((old, new["spec"]["blob"][:3]))

    await harness.create(spec={"blob": "a" * 5000})
    await harness.settle()
    stored = await harness.get()
    assert stored["metadata"]["annotations"][ESSENCE].startswith("sha256:")
    await harness.patch({"spec": {"blob": "b" * 5000}})
    await harness.settle()
    assert seen == [(None, "bbb")]


async def test_a_rejected_handler_patch_is_dropped_but_results_are_kept(harness: Harness) -> None:
    calls: list[str] = []

    @trikopf.on.create("kopfexamples", registry=harness.registry)
    def create_fn(patch: trikopf.Patch, **_: Any) -> str:
        calls.append("create")
        patch.metadata.labels["bad"] = "not a valid label value!"
        return "done"

    await harness.create()
    await harness.settle()
    await harness.settle()
    stored = await harness.get()
    assert calls == ["create"]
    assert stored["status"]["create_fn"] == "done"
    assert "bad" not in (stored["metadata"].get("labels") or {})
    assert json.loads(stored["metadata"]["annotations"][ESSENCE]) == {"spec": {"size": 1}}
    events = await harness.events()
    assert any("patch was rejected" in m for _, _, m in events)


async def test_an_object_changed_while_the_operator_was_down_is_updated_and_resumed(
    harness: Harness,
) -> None:
    calls: list[str] = []

    @trikopf.on.update("kopfexamples", registry=harness.registry)
    def update_fn(reason: str, **_: Any) -> None:
        calls.append(f"update:{reason}")

    @trikopf.on.resume("kopfexamples", registry=harness.registry)
    def resume_fn(reason: str, **_: Any) -> None:
        calls.append(f"resume:{reason}")

    @trikopf.on.update("kopfexamples", registry=harness.registry, id="both")
    @trikopf.on.resume("kopfexamples", registry=harness.registry, id="both")
    def both(**_: Any) -> None:
        calls.append("both")

    await harness.create()
    await harness.settle()
    harness.forget()  # the operator is down...
    await harness.patch({"spec": {"size": 7}})  # ...while the object changes
    await harness.settle()
    await harness.settle()
    assert calls == ["update:update", "resume:update", "both"]  # "both" once, not twice


async def test_resume_handlers_with_deleted_true_also_run_for_objects_being_deleted(
    harness: Harness,
) -> None:
    calls: list[str] = []

    @trikopf.on.delete("kopfexamples", registry=harness.registry)
    def delete_fn(**_: Any) -> None:
        calls.append("delete")

    @trikopf.on.resume("kopfexamples", registry=harness.registry, deleted=True)
    def resume_fn(reason: str, **_: Any) -> None:
        calls.append(f"resume:{reason}")

    @trikopf.on.resume("kopfexamples", registry=harness.registry)
    def plain_resume(**_: Any) -> None:
        calls.append("plain")

    await harness.create()
    await harness.settle()
    calls.clear()
    harness.forget()
    await harness.delete()
    await harness.settle()
    assert calls == ["delete", "resume:delete"]
