"""Stopping the operator: graceful with rounds in flight, bounded, and when embedded."""

from __future__ import annotations

import functools
from typing import Any

import anyio
import anyio.abc

import trikopf
from tests.kopfexample import kex
from trikopf.client import ApiClient, ConnectionInfo
from trikopf.structs import Resource
from trikopf.testing import open_operator


def settings_with_grace(grace: float) -> trikopf.OperatorSettings:
    settings = trikopf.OperatorSettings()
    settings.processing.batch_window = 0.01
    settings.processing.grace_period = grace
    settings.posting.enabled = False
    return settings


async def test_stop_lets_a_running_handler_finish_and_stores_its_result(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    started = anyio.Event()
    finish = anyio.Event()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> str:
        started.set()
        await finish.wait()
        return "finished"

    await client.create(kopfexamples, kex("inflight"))
    async with open_operator(
        registry, connection=connection, settings=settings_with_grace(10.0)
    ) as operator:
        with anyio.fail_after(10):
            await started.wait()
        operator.stop()
        # The operator is stopping, but waits for the round in flight.
        await anyio.wait_all_tasks_blocked()
        assert not operator.stopped.is_set()
        finish.set()
        with anyio.fail_after(10):
            await operator.stopped.wait()
    body = await client.get(kopfexamples, "inflight", namespace="default")
    assert body["status"]["create_fn"] == "finished"


async def test_stop_cancels_a_handler_that_outlives_the_grace_period(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    started = anyio.Event()
    cancelled = False

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> None:
        nonlocal cancelled
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            cancelled = True

    await client.create(kopfexamples, kex("stuck"))
    with anyio.fail_after(10):
        async with open_operator(
            registry, connection=connection, settings=settings_with_grace(0.2)
        ) as operator:
            await started.wait()
            begun = anyio.current_time()
            operator.stop()
            await operator.stopped.wait()
            took = anyio.current_time() - begun
    assert cancelled
    assert took < 5.0  # bounded by the grace period, not by the handler


async def test_embedded_operator_stops_and_the_applications_other_tasks_survive(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    handled = anyio.Event()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> None:
        handled.set()

    send, receive = anyio.create_memory_object_stream[int](1)
    replies_send, replies = anyio.create_memory_object_stream[int](1)

    async def other_task() -> None:
        # A piece of the application: echoes numbers until the application ends.
        async with receive, replies_send:
            async for n in receive:
                await replies_send.send(n + 1)

    stop_flag = anyio.Event()
    operator_done = anyio.Event()

    async def run_operator(*, task_status: anyio.abc.TaskStatus[None]) -> None:
        await trikopf.operate(
            registry,
            connection=connection,
            settings=settings_with_grace(1.0),
            stop_flag=stop_flag,
            task_status=task_status,
        )
        operator_done.set()

    with anyio.fail_after(20):
        async with anyio.create_task_group() as app, send, replies:
            app.start_soon(other_task)
            await app.start(run_operator)
            await client.create(kopfexamples, kex("embedded"))
            await handled.wait()
            stop_flag.set()
            await operator_done.wait()
            # The operator is gone; the application's task still answers.
            await send.send(41)
            assert await replies.receive() == 42
            app.cancel_scope.cancel()


async def test_cancelling_operate_stops_everything_at_once(
    connection: ConnectionInfo, client: ApiClient, kopfexamples: Resource
) -> None:
    registry = trikopf.OperatorRegistry()
    started = anyio.Event()
    handler_ended = anyio.Event()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(**_: Any) -> None:
        started.set()
        try:
            await anyio.sleep_forever()
        finally:
            handler_ended.set()

    await client.create(kopfexamples, kex("cancelled"))
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            await tg.start(
                functools.partial(
                    trikopf.operate,
                    registry,
                    connection=connection,
                    settings=settings_with_grace(60.0),
                )
            )
            await started.wait()
            tg.cancel_scope.cancel()
    assert handler_ended.is_set()
