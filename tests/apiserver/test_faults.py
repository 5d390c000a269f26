"""Every fault-injection control and the request log, driven over raw HTTP."""

from __future__ import annotations

import anyio
import httpx
import pytest

from tests.apiserver.watching import open_watch
from trikopf.apiserver import ApiServer

CM = "/api/v1/namespaces/default/configmaps"


async def test_fail_next_answers_429_with_retry_after_then_recovers(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    apiserver.faults.fail_next(2, status=429, method="GET", path=f"{CM}*", retry_after=3)
    for _ in range(2):
        response = await client.get(CM)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "3"
        status = response.json()
        assert status["reason"] == "TooManyRequests"
        assert status["details"]["retryAfterSeconds"] == 3
    assert (await client.get(CM)).status_code == 200


@pytest.mark.parametrize(
    ("code", "reason"), [(500, "InternalError"), (503, "ServiceUnavailable"), (504, "Timeout")]
)
async def test_fail_next_answers_server_errors_as_status(
    client: httpx.AsyncClient, apiserver: ApiServer, code: int, reason: str
) -> None:
    apiserver.faults.fail_next(status=code, method="POST")
    response = await client.post(CM, json={"metadata": {"name": "x"}})
    assert response.status_code == code
    assert response.json()["reason"] == reason
    assert apiserver.get_object("configmaps", "x", "default") is None
    assert (await client.post(CM, json={"metadata": {"name": "x"}})).status_code == 201


async def test_fail_next_only_hits_matching_method_and_path(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    apiserver.faults.fail_next(status=500, method="DELETE", path="/api/v1/namespaces/*/secrets/*")
    assert (await client.get(CM)).status_code == 200
    await client.post(CM, json={"metadata": {"name": "c"}})
    assert (await client.delete(f"{CM}/c")).status_code == 200
    await client.post("/api/v1/namespaces/default/secrets", json={"metadata": {"name": "s"}})
    assert (await client.delete("/api/v1/namespaces/default/secrets/s")).status_code == 500
    assert (await client.delete("/api/v1/namespaces/default/secrets/s")).status_code == 200


async def test_failures_can_target_watch_requests_only(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    apiserver.faults.fail_next(status=503, watch=True)
    assert (await client.get(CM)).status_code == 200
    response = await client.get(CM, params={"watch": "1", "timeoutSeconds": "1"})
    assert response.status_code == 503


async def test_drop_watches_ends_every_open_stream(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    async with open_watch(client, CM) as one, open_watch(client, "/api/v1/secrets") as two:
        await client.post(CM, json={"metadata": {"name": "a"}})
        await one.next()
        apiserver.faults.drop_watches()
        assert await one.rest() == []
        assert await two.rest() == []
        assert one.ended
        assert two.ended
    # New watches work again.
    async with open_watch(client, CM) as again:
        assert (await again.next())["object"]["metadata"]["name"] == "a"


async def test_stalled_watches_stay_open_and_silent_then_deliver_in_order(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    async with open_watch(client, CM, resourceVersion="1") as events:
        apiserver.faults.stall_watches()
        await client.post(CM, json={"metadata": {"name": "a"}})
        await client.post(CM, json={"metadata": {"name": "b"}})
        with anyio.move_on_after(0.3) as quiet:
            await events.next(timeout=1)
        assert quiet.cancelled_caught, "a stalled watch delivered an event"
        assert not events.ended
        apiserver.faults.unstall_watches()
        got = await events.take(2)
    assert [e["object"]["metadata"]["name"] for e in got] == ["a", "b"]


async def test_compact_makes_older_versions_410_but_not_newer_ones(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    first = (await client.post(CM, json={"metadata": {"name": "a"}})).json()
    await client.post(CM, json={"metadata": {"name": "b"}})
    compacted_to = apiserver.faults.compact()
    async with open_watch(client, CM, resourceVersion=first["metadata"]["resourceVersion"]) as old:
        (error,) = await old.rest()
    assert error["type"] == "ERROR"
    assert error["object"]["code"] == 410
    async with open_watch(client, CM, resourceVersion=str(compacted_to)) as fresh:
        await client.post(CM, json={"metadata": {"name": "c"}})
        event = await fresh.next()
    assert event["object"]["metadata"]["name"] == "c"


async def test_pause_holds_requests_until_resume(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    apiserver.faults.pause()
    results: list[int] = []

    async def request() -> None:
        results.append((await client.get(CM)).status_code)

    async with anyio.create_task_group() as tg:
        tg.start_soon(request)
        with anyio.move_on_after(0.3):
            while not results:
                await anyio.sleep(0.01)
        assert results == [], "a request was answered while the server was paused"
        apiserver.faults.resume()
    assert results == [200]


async def test_request_log_records_method_path_query_and_status(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    await client.get(CM, params={"labelSelector": "a=b"})
    await client.get(f"{CM}/missing")
    records = apiserver.requests.matching("GET", f"{CM}*")
    assert [(r.method, r.path, r.status) for r in records] == [
        ("GET", CM, 200),
        ("GET", f"{CM}/missing", 404),
    ]
    assert records[0].query == {"labelSelector": ["a=b"]}
    assert not records[0].is_watch


async def test_fault_controls_reject_nonsense(apiserver: ApiServer) -> None:
    with pytest.raises(ValueError, match="count"):
        apiserver.faults.fail_next(0)
    with pytest.raises(ValueError, match="status"):
        apiserver.faults.fail_next(status=200)
    with pytest.raises(ValueError, match="latency"):
        apiserver.faults.add_latency(-1)


async def test_aborted_watches_are_cut_without_the_final_chunk(
    client: httpx.AsyncClient, apiserver: ApiServer
) -> None:
    async with open_watch(client, CM) as events:
        await client.post(CM, json={"metadata": {"name": "a"}})
        await events.next()
        apiserver.faults.drop_watches(abort=True)
        with pytest.raises(EOFError):
            await events.rest()
        assert not events.ended
