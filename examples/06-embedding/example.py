"""Embedding the operator in a Trio application, next to the application's own tasks.

Run it with ``python examples/06-embedding/example.py`` (after the CRD and the object are
applied to the cluster that your kubeconfig points at). The application starts the operator in
its own nursery, feeds what the handlers see into its own task, stops the operator after the
first object, and keeps running without it.
"""

from __future__ import annotations

import functools
from typing import Any

import trio

import trikopf

registry = trikopf.OperatorRegistry()


@trikopf.on.create("kopfexamples", registry=registry)
async def create_fn(name: str, memo: trikopf.Memo, **_: Any) -> dict[str, bool]:
    # Handlers reach the application through the memo: here, the sending end of a channel.
    await memo.seen.send(name)
    return {"reported": True}


async def run_application(*, connection: Any = None, objects_to_see: int = 1) -> dict[str, Any]:
    """Run the operator next to a heartbeat task; stop the operator after some objects.

    Returns what the application saw, and proves that its own task outlived the operator.
    """
    send, receive = trio.open_memory_channel[str](100)
    stop_operator = trio.Event()
    operator_stopped = trio.Event()
    ticks = 0
    ticked = trio.Event()

    async def heartbeat() -> None:
        # The application's own work: here, a tick every 50 ms.
        nonlocal ticks, ticked
        while True:
            await trio.sleep(0.05)
            ticks += 1
            ticked.set()
            ticked = trio.Event()

    async def run_operator(*, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        await trikopf.operate(
            registry,
            connection=connection,
            memo=trikopf.Memo(seen=send),
            stop_flag=stop_operator,
            task_status=task_status,
        )
        operator_stopped.set()

    seen: list[str] = []
    async with trio.open_nursery() as app:
        app.start_soon(heartbeat)
        # Returns once the operator has listed the objects it serves.
        await app.start(functools.partial(run_operator))
        async for name in receive:
            seen.append(name)
            if len(seen) >= objects_to_see:
                break
        stop_operator.set()
        await operator_stopped.wait()
        # The operator is gone; the application goes on.
        ticks_when_stopped = ticks
        for _ in range(3):
            await ticked.wait()
        app.cancel_scope.cancel()
    return {"seen": seen, "heartbeat_after_operator": ticks - ticks_when_stopped}


if __name__ == "__main__":
    print(trio.run(run_application))
