"""The pytest fixtures that trikopf ships for users' operator tests, used as a user would."""

from __future__ import annotations

import pathlib
from typing import Any

import trikopf
from trikopf.client import ApiClient, ConnectionInfo
from trikopf.testing import open_operator, pytest_plugin, wait_for_object

# What `pytest_plugins = ["trikopf.testing.pytest_plugin"]` does in a top-level conftest.
trikopf_apiserver = pytest_plugin.trikopf_apiserver
trikopf_kubeconfig = pytest_plugin.trikopf_kubeconfig
trikopf_connection = pytest_plugin.trikopf_connection
trikopf_client = pytest_plugin.trikopf_client
trikopf_apply = pytest_plugin.trikopf_apply

EXAMPLES = pathlib.Path(__file__).parent.parent.parent / "examples"


async def test_fixtures_give_a_server_that_an_operator_runs_against(
    trikopf_apply: Any, trikopf_client: ApiClient, trikopf_connection: ConnectionInfo
) -> None:
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    async def create_fn(name: str, **_: Any) -> str:
        return f"seen {name}"

    applied = await trikopf_apply(EXAMPLES / "crd.yaml", EXAMPLES / "obj.yaml")
    assert applied == [
        "customresourcedefinition/kopfexamples.kopf.dev created",
        "kopfexample/kopf-example-1 in default created",
    ]
    resource = await trikopf_client.resolve("kopfexamples")
    async with open_operator(registry, connection=trikopf_connection):
        body = await wait_for_object(
            trikopf_client,
            resource,
            "kopf-example-1",
            lambda b: b is not None and "create_fn" in (b.get("status") or {}),
            namespace="default",
        )
    assert body is not None
    assert body["status"]["create_fn"] == "seen kopf-example-1"


async def test_kubeconfig_fixture_points_at_the_embedded_server(
    trikopf_kubeconfig: pathlib.Path, trikopf_apiserver: Any
) -> None:
    assert trikopf_apiserver.url in trikopf_kubeconfig.read_text()
