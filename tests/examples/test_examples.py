"""Every example operator, run on the embedded API server, has the effect its README promises."""

from __future__ import annotations

import importlib.util
import pathlib
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

import trikopf
from tests.ports import free_port
from tests.registries import fresh_default_registry
from trikopf.cli import load_handlers
from trikopf.client import ApiClient, ConnectionInfo
from trikopf.reactor.manifests import apply_manifests, load_manifests
from trikopf.structs import Resource
from trikopf.testing import open_operator, wait_for_object

EXAMPLES = pathlib.Path(__file__).parent.parent.parent / "examples"
NAME = "kopf-example-1"


def status_has(*keys: str) -> Callable[[Any], bool]:
    return lambda body: body is not None and all(k in (body.get("status") or {}) for k in keys)


async def check_minimal(client: ApiClient, resource: Resource) -> None:
    body = await wait_for_object(
        client, resource, NAME, status_has("create_fn"), namespace="default"
    )
    assert body is not None
    assert NAME in body["status"]["create_fn"]["message"]


async def check_change_handlers(client: ApiClient, resource: Resource) -> None:
    body = await wait_for_object(
        client, resource, NAME, status_has("create_fn"), namespace="default"
    )
    assert body is not None
    assert body["status"]["create_fn"] == {"fields": ["duration", "field", "items"]}
    await client.patch(resource, NAME, {"spec": {"field": "changed"}}, namespace="default")
    body = await wait_for_object(
        client, resource, NAME, status_has("update_fn"), namespace="default"
    )
    assert body is not None
    assert body["status"]["update_fn"] == {"changes": ["change spec.field"]}
    # The delete handler holds a finalizer; the object goes once the handler has run.
    assert body["metadata"].get("finalizers")
    await client.delete(resource, NAME, namespace="default")
    await wait_for_object(client, resource, NAME, lambda b: b is None, namespace="default")


async def check_field_handlers(client: ApiClient, resource: Resource) -> None:
    key = "field_fn/spec.field"
    body = await wait_for_object(client, resource, NAME, status_has(key), namespace="default")
    assert body is not None
    assert body["status"][key] == {"change": "None -> 'value'"}
    await client.patch(resource, NAME, {"spec": {"field": "changed"}}, namespace="default")
    body = await wait_for_object(
        client,
        resource,
        NAME,
        lambda b: (
            b is not None
            and (b.get("status") or {}).get(key, {}).get("change") == "'value' -> 'changed'"
        ),
        namespace="default",
    )
    assert body is not None


async def check_errors(client: ApiClient, resource: Resource) -> None:
    body = await wait_for_object(
        client,
        resource,
        NAME,
        status_has("create_fn", "validate_fn"),
        namespace="default",
        within=20,
    )
    assert body is not None
    assert body["status"]["create_fn"] == {"attempts": 3}
    assert body["status"]["validate_fn"] == "valid"


async def check_filters(client: ApiClient, resource: Resource) -> None:
    body = await wait_for_object(
        client,
        resource,
        NAME,
        status_has("with_label_fn", "with_annotation_fn", "long_fn"),
        namespace="default",
    )
    assert body is not None
    assert body["status"]["long_fn"] == 2
    assert "without_label_fn" not in body["status"]


async def check_daemons(client: ApiClient, resource: Resource) -> None:
    body = await wait_for_object(
        client,
        resource,
        NAME,
        lambda b: (
            b is not None and (b.get("status") or {}).get("monitor", {}).get("checks", 0) >= 2
        ),
        namespace="default",
        within=20,
    )
    assert body is not None
    assert body["status"]["monitor"]["items"] == 2
    assert body["metadata"].get("finalizers")  # held while the daemons run
    await client.delete(resource, NAME, namespace="default")
    await wait_for_object(client, resource, NAME, lambda b: b is None, namespace="default")


async def check_timers(client: ApiClient, resource: Resource) -> None:
    body = await wait_for_object(
        client, resource, NAME, status_has("quiet_fn", "heartbeat_fn"), namespace="default"
    )
    assert body is not None
    assert body["status"]["quiet_fn"] == {"items": 2, "field": "value"}


async def check_startup_cleanup(client: ApiClient, resource: Resource) -> None:
    body = await wait_for_object(
        client, resource, NAME, status_has("use_pool"), namespace="default"
    )
    assert body is not None
    assert body["status"]["use_pool"] == {"pool": "example-pool", "uses": 1}


PROBES_LISTEN = f"127.0.0.1:{free_port()}"


async def check_probes(client: ApiClient, resource: Resource) -> None:
    async with httpx.AsyncClient(base_url=f"http://{PROBES_LISTEN}") as http:
        health = await http.get("/healthz")
        assert health.status_code == 200
        assert set(health.json()["probes"]) == {"now", "objects"}
        assert (await http.get("/readyz")).json() == {"ready": True}
        metrics = await http.get("/metrics")
        assert "trikopf_watch_events_total" in metrics.text


# Environment variables an example reads (set for the duration of its test).
ENVIRONMENT: dict[str, dict[str, str]] = {"10-probes": {"EXAMPLE_LISTEN": PROBES_LISTEN}}


CHECKS: dict[str, Callable[[ApiClient, Resource], Awaitable[None]]] = {
    "01-minimal": check_minimal,
    "02-change-handlers": check_change_handlers,
    "03-field-handlers": check_field_handlers,
    "04-errors": check_errors,
    "05-filters": check_filters,
    "07-daemons": check_daemons,
    "08-timers": check_timers,
    "09-startup-cleanup": check_startup_cleanup,
    "10-probes": check_probes,
}


def test_every_numbered_example_is_covered() -> None:
    found = sorted(p.name for p in EXAMPLES.iterdir() if p.is_dir() and p.name[:2].isdigit())
    assert found == sorted([*CHECKS, "06-embedding"])
    for name in found:
        assert (EXAMPLES / name / "README.md").is_file(), name


@pytest.mark.parametrize("example", sorted(CHECKS))
async def test_example_has_its_documented_effect(
    example: str, connection: ConnectionInfo, client: ApiClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in ENVIRONMENT.get(example, {}).items():
        monkeypatch.setenv(key, value)
    settings = trikopf.OperatorSettings()
    settings.processing.batch_window = 0.01
    with fresh_default_registry() as registry:
        load_handlers([str(EXAMPLES / example / "example.py")], [])
        await apply_manifests(
            client, load_manifests([EXAMPLES / "crd.yaml", EXAMPLES / "obj.yaml"])
        )
        resource = await client.resolve("kopfexamples")
        async with open_operator(registry, connection=connection, settings=settings):
            await CHECKS[example](client, resource)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_embedding_example_runs_next_to_the_applications_tasks(
    connection: ConnectionInfo, client: ApiClient
) -> None:
    # A Trio application by design, so Trio only.
    spec = importlib.util.spec_from_file_location(
        "example_06", EXAMPLES / "06-embedding" / "example.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    await apply_manifests(client, load_manifests([EXAMPLES / "crd.yaml", EXAMPLES / "obj.yaml"]))
    summary = await module.run_application(connection=connection)
    assert summary["seen"] == [NAME]
    assert summary["heartbeat_after_operator"] >= 3
    body = await client.get(await client.resolve("kopfexamples"), NAME, namespace="default")
    assert body["status"]["create_fn"] == {"reported": True}
