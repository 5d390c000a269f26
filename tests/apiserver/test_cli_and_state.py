"""``python -m trikopf.apiserver`` as a process, and state persisted across restarts."""

from __future__ import annotations

import pathlib
import signal
import sys

import anyio
import httpx
import pytest
import yaml

from tests.apiserver.watching import open_watch
from trikopf.apiserver import open_apiserver

CM = "/api/v1/namespaces/default/configmaps"


async def _read_until(stream: anyio.abc.ByteReceiveStream, needle: bytes) -> bytes:
    output = b""
    with anyio.fail_after(20):
        while needle not in output:
            output += await stream.receive()
    return output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
async def test_cli_serves_writes_a_kubeconfig_and_stops_on_a_signal(
    tmp_path: pathlib.Path, signum: signal.Signals
) -> None:
    kubeconfig = tmp_path / "kc"
    command = [
        sys.executable,
        "-m",
        "trikopf.apiserver",
        "--port",
        "0",
        "--kubeconfig",
        str(kubeconfig),
        "--token",
        "tok",
    ]
    async with await anyio.open_process(command) as process:
        assert process.stdout is not None
        output = await _read_until(process.stdout, b"Kubeconfig written")
        url = output.decode().split("Kubernetes API at ")[1].split()[0]
        config = yaml.safe_load(kubeconfig.read_text())
        assert config["clusters"][0]["cluster"]["server"] == url
        assert config["users"][0]["user"] == {"token": "tok"}
        assert config["current-context"] == "trikopf"
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": "Bearer tok"}
        ) as client:
            assert (await client.get("/api/v1/namespaces/default")).status_code == 200
        process.send_signal(signum)
        with anyio.fail_after(20):
            code = await process.wait()
        assert code == 0


async def test_cli_rejects_a_bad_port(tmp_path: pathlib.Path) -> None:
    result = await anyio.run_process(
        [
            sys.executable,
            "-m",
            "trikopf.apiserver",
            "--port",
            "99999",
            "--kubeconfig",
            str(tmp_path / "k"),
        ],
        check=False,
    )
    assert result.returncode == 2
    assert b"--port" in result.stderr


async def test_state_file_keeps_objects_across_restarts(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "state.json"
    async with (
        open_apiserver(state_file=state) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        created = (
            await client.post(CM, json={"metadata": {"name": "kept"}, "data": {"a": "1"}})
        ).json()
        await client.post(
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            json={
                "metadata": {"name": "things.example.com"},
                "spec": {
                    "group": "example.com",
                    "scope": "Namespaced",
                    "names": {"plural": "things", "kind": "Thing"},
                    "versions": [
                        {
                            "name": "v1",
                            "served": True,
                            "storage": True,
                            "schema": {"openAPIV3Schema": {"type": "object"}},
                        }
                    ],
                },
            },
        )
        await client.post(
            "/apis/example.com/v1/namespaces/default/things",
            json={"apiVersion": "example.com/v1", "kind": "Thing", "metadata": {"name": "t"}},
        )
    assert state.exists()
    async with (
        open_apiserver(state_file=state) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        again = (await client.get(f"{CM}/kept")).json()
        assert again["metadata"]["uid"] == created["metadata"]["uid"]
        assert again["data"] == {"a": "1"}
        thing = await client.get("/apis/example.com/v1/namespaces/default/things/t")
        assert thing.status_code == 200
        newer = (await client.post(CM, json={"metadata": {"name": "new"}})).json()
        assert int(newer["metadata"]["resourceVersion"]) > int(
            thing.json()["metadata"]["resourceVersion"]
        )


async def test_a_corrupt_state_file_is_a_clear_error(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        async with open_apiserver(state_file=state):
            pass
    assert state.read_text() == "{not json"


async def test_watches_from_before_a_restart_get_410(tmp_path: pathlib.Path) -> None:
    state = tmp_path / "state.json"
    async with (
        open_apiserver(state_file=state) as server,
        httpx.AsyncClient(base_url=server.url) as client,
    ):
        first = (await client.post(CM, json={"metadata": {"name": "a"}})).json()
        await client.post(CM, json={"metadata": {"name": "b"}})
    async with (
        open_apiserver(state_file=state) as server,
        httpx.AsyncClient(base_url=server.url) as client,
        open_watch(client, CM, resourceVersion=first["metadata"]["resourceVersion"]) as events,
    ):
        (error,) = await events.rest()
    assert error["type"] == "ERROR"
    assert error["object"]["code"] == 410
