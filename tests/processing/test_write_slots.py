"""The bound on PATCHes in flight (``settings.networking.max_concurrent_writes``), on virtual time.

Rounds that find every write slot taken wait their turn, first come first served; a round
cancelled while it waits takes no slot from the others.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

import anyio
import pytest

import trikopf
from tests.clocks import virtual_time

if TYPE_CHECKING:
    from tests.processing.conftest import Harness


@pytest.fixture(params=[pytest.param("trio", id="trio-mockclock")])
def anyio_backend() -> Any:
    return virtual_time()


def _handle_creation(harness: Harness) -> None:
    @trikopf.on.create("kopfexamples", registry=harness.registry)
    async def create_fn(**_: Any) -> str:
        return "done"


async def test_rounds_beyond_the_write_bound_wait_for_a_free_slot(harness: Harness) -> None:
    harness.settings.networking.max_concurrent_writes = 2
    _handle_creation(harness)
    names = [f"obj{n}" for n in range(5)]
    for name in names:
        await harness.create(name)
    harness.server.faults.add_latency(10.0, method="PATCH")
    start = anyio.current_time()
    ended: dict[str, float] = {}

    async def one(name: str) -> None:
        await harness.round(name)
        ended[name] = anyio.current_time() - start

    async with anyio.create_task_group() as tg:
        for name in names:
            tg.start_soon(one, name)
    # Two PATCHes at a time, 10 s each.
    assert sorted(round(seconds) for seconds in ended.values()) == [10, 10, 20, 20, 30]
    for name in names:
        assert (await harness.get(name))["status"]["create_fn"] == "done"


async def test_a_round_cancelled_while_waiting_for_a_write_slot_takes_none(
    harness: Harness,
) -> None:
    harness.settings.networking.max_concurrent_writes = 1
    _handle_creation(harness)
    for name in ("first", "cancelled", "third"):
        await harness.create(name)
    harness.server.faults.add_latency(10.0, method="PATCH")
    start = anyio.current_time()
    ended: dict[str, float] = {}

    async def one(name: str, *, give_up_after: float | None = None) -> None:
        with anyio.move_on_after(give_up_after if give_up_after is not None else float("inf")):
            await harness.round(name)
            ended[name] = anyio.current_time() - start

    async with anyio.create_task_group() as tg:
        tg.start_soon(one, "first")
        await anyio.sleep(1.0)
        tg.start_soon(functools.partial(one, give_up_after=4.0), "cancelled")
        await anyio.sleep(1.0)
        tg.start_soon(one, "third")
    assert {name: round(seconds) for name, seconds in ended.items()} == {"first": 10, "third": 20}
    assert "status" not in await harness.get("cancelled")
