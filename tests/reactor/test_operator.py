"""The operator end to end on the embedded API server: handling, coalescing, limits, discovery."""

from __future__ import annotations

import pathlib
from typing import Any

import anyio
import pytest

import trikopf
from tests.kopfexample import kex
from trikopf.apiserver import ApiServer
from trikopf.client import ApiClient, ConnectionInfo
from trikopf.reactor.manifests import apply_manifests, load_manifests
from trikopf.structs import Resource
from trikopf.testing import open_operator, wait_for_object

EXAMPLES = pathlib.Path(__file__).parent.parent.parent / "examples"


def fast_settings() -> trikopf.OperatorSettings:
    settings = trikopf.OperatorSettings()
    settings.processing.batch_window = 0.01
    settings.processing.grace_period = 5.0
    settings.posting.enabled = False
    return settings


def has_status(key: str) -> Any:
    return lambda body: body is not None and key in (body.get("status") or {})


async def test_operator_runs_create_handler_and_stores_its_result_in_status(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(name: str, **_: Any) -> dict[str, str]:
        return {"message": f"created {name}"}

    await client.create(kopfexamples, kex("one", field="x"))
    async with open_operator(registry, connection=connection, settings=fast_settings()):
        body = await wait_for_object(
            client, kopfexamples, "one", has_status("create_fn"), namespace="default"
        )
    assert body is not None
    assert body["status"]["create_fn"] == {"message": "created one"}


async def test_burst_of_updates_is_coalesced_and_the_newest_spec_wins(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    seen: list[int] = []
    first_update_started = anyio.Event()
    release = anyio.Event()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        return "created"

    @trikopf.on.update("kopfexamples", registry=registry)
    async def update_fn(spec: Any, **_: Any) -> dict[str, int]:
        seen.append(spec["n"])
        first_update_started.set()
        await release.wait()
        return {"n": spec["n"]}

    await client.create(kopfexamples, kex("burst", n=0))
    async with open_operator(registry, connection=connection, settings=fast_settings()):
        await wait_for_object(
            client, kopfexamples, "burst", has_status("create_fn"), namespace="default"
        )
        await client.patch(kopfexamples, "burst", {"spec": {"n": 1}}, namespace="default")
        with anyio.fail_after(10):
            await first_update_started.wait()
        # While the round for n=1 runs, a burst of nine more updates arrives.
        for n in range(2, 11):
            await client.patch(kopfexamples, "burst", {"spec": {"n": n}}, namespace="default")
        release.set()
        body = await wait_for_object(
            client,
            kopfexamples,
            "burst",
            lambda b: b is not None and (b.get("status") or {}).get("update_fn") == {"n": 10},
            namespace="default",
        )
    assert body is not None
    assert seen[0] == 1
    assert seen[-1] == 10
    # One round for n=1, then the burst coalesces: far fewer rounds than updates.
    assert len(seen) <= 3, seen


async def test_objects_are_processed_concurrently_but_within_the_worker_limit(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    running = 0
    most = 0
    done = 0
    all_done = anyio.Event()
    two_running = anyio.Event()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> None:
        nonlocal running, most, done
        running += 1
        most = max(most, running)
        if running == 2:
            two_running.set()
        try:
            # Hold the slot until a second object runs too (proves concurrency), bounded.
            with anyio.move_on_after(2):
                await two_running.wait()
            await anyio.sleep(0.05)  # hold the slot a little: a third must not get in
        finally:
            running -= 1
        done += 1
        if done == 6:
            all_done.set()

    for n in range(6):
        await client.create(kopfexamples, kex(f"obj-{n}"))
    settings = fast_settings()
    settings.processing.worker_limit = 2
    async with open_operator(registry, connection=connection, settings=settings):
        with anyio.fail_after(20):
            await all_done.wait()
    assert most == 2


async def test_crd_applied_after_the_start_is_watched_without_a_restart(
    connection: ConnectionInfo, client: ApiClient
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        return "handled"

    settings = fast_settings()
    settings.watching.wait_for_resources = True
    async with open_operator(registry, connection=connection, settings=settings):
        await apply_manifests(client, load_manifests([EXAMPLES / "crd.yaml"]))
        resource = await client.resolve("kopfexamples")
        await client.create(resource, kex("late"))
        body = await wait_for_object(
            client, resource, "late", has_status("create_fn"), namespace="default"
        )
    assert body is not None
    assert body["status"]["create_fn"] == "handled"


async def test_unknown_resource_fails_the_start_with_one_clear_error(
    connection: ConnectionInfo,
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> None:
        pass

    with pytest.raises(trikopf.StartupError, match="no resource named kopfexamples"):
        async with open_operator(registry, connection=connection, settings=fast_settings()):
            pass


async def test_namespaces_by_glob_follow_namespaces_created_later(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    handled: list[str] = []

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(namespace: str, **_: Any) -> str:
        handled.append(namespace)
        return "handled"

    namespaces = await client.resolve("namespaces")
    async with open_operator(
        registry,
        connection=connection,
        settings=fast_settings(),
        namespaces=["team-*", "!team-skip"],
    ):
        for ns in ("other", "team-skip", "team-a"):
            await client.create(
                namespaces, {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
            )
        # The skipped and the unmatched namespaces first: they are never watched at all.
        await client.create(kopfexamples, kex("x", namespace="other"))
        await client.create(kopfexamples, kex("x", namespace="team-skip"))
        await client.create(kopfexamples, kex("x", namespace="team-a"))
        await wait_for_object(
            client, kopfexamples, "x", has_status("create_fn"), namespace="team-a"
        )
    assert handled == ["team-a"]


async def test_watcher_lists_again_after_410_and_resumes_after_dropped_streams(
    apiserver: ApiServer, connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        return "ok"

    await client.create(kopfexamples, kex("before"))
    async with open_operator(registry, connection=connection, settings=fast_settings()):
        await wait_for_object(
            client, kopfexamples, "before", has_status("create_fn"), namespace="default"
        )
        lists_before = _lists(apiserver)

        # The stream is dropped: the watcher resumes from where it was.
        apiserver.faults.drop_watches()
        await client.create(kopfexamples, kex("after-drop"))
        await wait_for_object(
            client, kopfexamples, "after-drop", has_status("create_fn"), namespace="default"
        )

        # Blind for a while, then the history is gone: the resume gets 410 and lists again.
        apiserver.faults.stall_watches()
        await client.create(kopfexamples, kex("while-blind"))
        apiserver.faults.compact()
        apiserver.faults.drop_watches()
        apiserver.faults.unstall_watches()
        await wait_for_object(
            client, kopfexamples, "while-blind", has_status("create_fn"), namespace="default"
        )

        # Watch requests fail for a while: the watcher backs off and keeps trying.
        apiserver.faults.fail_next(3, status=500, watch=True)
        apiserver.faults.drop_watches()
        await client.create(kopfexamples, kex("after-errors"))
        await wait_for_object(
            client, kopfexamples, "after-errors", has_status("create_fn"), namespace="default"
        )
    assert _lists(apiserver) > lists_before


def _lists(server: ApiServer) -> int:
    return sum(
        1
        for r in server.requests.matching("GET", "/apis/kopf.dev/v1/kopfexamples")
        if not r.is_watch
    )
