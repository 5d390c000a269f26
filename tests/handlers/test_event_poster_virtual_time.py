"""The Event poster's rate limit on virtual time, where the clock starts at zero."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import anyio
import pytest

from tests.clocks import virtual_time
from trikopf.actions.posting import EventPoster
from trikopf.settings import OperatorSettings

BODY = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns", "uid": "u"}}


@pytest.fixture(params=[pytest.param("trio", id="trio-mockclock")])
def anyio_backend() -> Any:
    return virtual_time()


class Counting:
    def __init__(self) -> None:
        self.count = 0

    async def post_event(
        self, *, involved: Mapping[str, Any], type: str, reason: str, message: str
    ) -> Any:
        self.count += 1
        return {}


async def test_the_bucket_starts_full_and_refills_with_time() -> None:
    assert anyio.current_time() == 0.0
    settings = OperatorSettings()
    settings.posting.rate_limit = 5
    client = Counting()
    poster = EventPoster(client=client, settings=settings)
    for i in range(8):
        poster.post_nowait(BODY, type="Normal", reason="R", message=f"first {i}")
    await poster.flush()
    assert client.count == 5  # a full bucket at time zero, the rest over the limit
    assert poster.dropped == 3

    await anyio.sleep(0.4)  # two tokens come back
    for i in range(3):
        poster.post_nowait(BODY, type="Normal", reason="R", message=f"second {i}")
    await poster.flush()
    assert client.count == 7
