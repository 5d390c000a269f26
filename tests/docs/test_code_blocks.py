"""Code shown in the docs lives in tested files: every Python block is run or accounted for.

A page shows Python in one of three ways, and this module checks each:

- ``{literalinclude}`` of an example file, which ``tests/examples`` runs on the embedded API
  server;
- a block that a test runs as written (here, or in the test named in ``COVERAGE``);
- an outline (a signature synopsis, an interface sketch of a design note, a list of forms) that
  is not a program; ``COVERAGE`` says why, and the test names where its behaviour is tested.

A new Python block on a page that none of these covers fails
``test_every_python_block_of_the_docs_is_run_or_accounted_for``.
"""

from __future__ import annotations

import logging
import pathlib
import re
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest
import trio.testing

import trikopf
from tests.registries import fresh_default_registry
from trikopf.apiserver import ApiServer, open_apiserver
from trikopf.client import ApiClient, ConnectionInfo, load_kubeconfig, open_client
from trikopf.reactor.manifests import apply_manifests, load_manifests
from trikopf.structs import Resource
from trikopf.testing import open_operator, wait_for_object

from .codeblocks import DOCS, ROOT, Block, all_blocks, python_block, run

EXAMPLES = ROOT / "examples"
NAME = "kopf-example-1"
HERE = "tests/docs/test_code_blocks.py"

# (page, a line of the block) -> the test that runs it, or "outline: why it is not run".
COVERAGE: dict[tuple[str, str], str] = {
    ("handlers.md", "def create_fn(spec, name, logger, **kwargs):"): HERE,
    ("handlers.md", '@trikopf.on.create("kopfexamples.kopf.dev")'): HERE,
    ("handlers.md", "def pod_event(event, type, name, **kwargs):"): HERE,
    ("kwargs.md", "async def update_fn(spec, old, new, diff, patch, logger, **kwargs):"): HERE,
    ("kwargs.md", "def create_fn(spec: Size, **_):"): HERE,
    ("kwargs.md", 'trikopf.info(body, reason="Scaled", message="3 replicas")'): HERE,
    ("filters.md", 'labels={"app": "web", "canary": trikopf.ABSENT},'): HERE,
    ("errors.md", 'raise trikopf.TemporaryError("the database is not ready", delay=15)'): HERE,
    ("activities.md", "async def login_fn(previous, **_):"): HERE,
    ("client.md", "async def login(*, previous: ConnectionInfo | None) -> ConnectionInfo:"): HERE,
    ("client.md", "async def main() -> None:"): "tests/client/test_docs.py",
    ("apiserver.md", "async with open_apiserver() as server:          # Trio or asyncio"): HERE,
    ("apiserver.md", "faults = server.faults"): HERE,
    ("apiserver.md", 'server.requests.matching("PATCH", "/apis/kopf.dev/*")'): HERE,
    ("health-and-metrics.md", "settings.serving.metrics ="): HERE,
    ("settings.md", "settings.processing.worker_limit = 50"): HERE,
    ("testing.md", "async def test_create_fn_reports_in_status(tmp_path):"): HERE,
    ("testing.md", "def anyio_backend():"): HERE,
    ("testing.md", "async def test_operator_starts_and_stops(tmp_path):"): HERE,
    ("migrating-from-kopf.md", "import trikopf as kopf"): HERE,
    ("migrating-from-kopf.md", "def take_over(settings, **_):"): HERE,
    ("migrating-from-kopf.md", "with KopfRunner("): (
        "outline: Kopf's synchronous runner; tests/compat/test_kopf_runner.py runs the same call"
    ),
    ("client.md", "obj = await client.get(kex,"): (
        "outline: one line per verb with placeholder names; tests/client/test_verbs.py runs each"
    ),
    ("client.md", "async with client.watch(resource,"): (
        "outline: the watch's options; client.md's first block runs a watch as written"
    ),
    ("apiserver.md", "async def test_configmap_is_stored(apiserver, kubeconfig_path):"): (
        "outline: how a test takes the fixtures; tests/apiserver/ uses them everywhere"
    ),
    ("apiserver.md", "@pytest.mark.apiserver(bookmark_interval=0.1"): (
        "outline: the marker's form; tests/apiserver/test_in_process.py uses the marker"
    ),
    ("operator.md", "async def operate(registry=None, *, settings=None"): (
        "outline: the signature of trikopf.operate, without a body"
    ),
    ("design/seams.md", "class Request:"): "outline: an interface sketch of a design note",
    ("design/seams.md", "async with open_apiserver(token=None, tls=False"): (
        "outline: an interface sketch of a design note"
    ),
    ("design/seams.md", "class Resource:"): "outline: an interface sketch of a design note",
    ("design/seams.md", "from trikopf.client import open_client, ApiClient,"): (
        "outline: an interface sketch of a design note"
    ),
    ("design/seams.md", "services = OperatorServices.prepare("): (
        "outline: an interface sketch of a design note"
    ),
}

LITERALINCLUDE = re.compile(r"^\{literalinclude\}\s+(?P<path>\S+)$")


def python_blocks() -> list[Block]:
    return [b for b in all_blocks() if b.info == "python"]


def test_every_python_block_of_the_docs_is_run_or_accounted_for() -> None:
    unaccounted = []
    used: set[tuple[str, str]] = set()
    for block in python_blocks():
        keys = [k for k in COVERAGE if k[0] == block.page and k[1] in block.text]
        if len(keys) != 1:
            unaccounted.append(f"{block.where}: {len(keys)} entries of COVERAGE match")
        used.update(keys)
    assert not unaccounted, "\n".join(
        ["Python blocks that no test runs (add a test here, or an outline entry):", *unaccounted]
    )
    assert set(COVERAGE) == used, f"entries that match no block: {set(COVERAGE) - used}"


def test_every_outline_says_why_and_every_other_entry_names_a_test_file() -> None:
    for (page, _), how in COVERAGE.items():
        if how.startswith("outline: "):
            assert len(how) > len("outline: ") + 10, (page, how)
            for mentioned in re.findall(r"tests/[\w/.]+", how):
                assert (ROOT / mentioned.rstrip(".")).exists(), (page, mentioned)
        else:
            path = ROOT / how
            assert path.is_file(), (page, how)
            # The test file must read the page it claims to run.
            assert pathlib.Path(page).name in path.read_text(encoding="utf-8"), (page, how)


def test_every_included_file_is_an_example_that_tests_run() -> None:
    included = []
    for block in all_blocks():
        match = LITERALINCLUDE.match(block.info)
        if match is None:
            continue
        path = (DOCS / pathlib.Path(block.page).parent / match["path"]).resolve()
        assert path.is_file(), f"{block.where}: {path} does not exist"
        assert path.is_relative_to(EXAMPLES), f"{block.where}: {path} is not an example"
        source = path.read_text(encoding="utf-8")
        for option in re.findall(r"^:(start-at|end-before|pyobject): (.*)$", block.text, re.M):
            kind, value = option
            needle = value.strip().strip('"').replace('\\"', '"')
            if kind == "pyobject":
                needle = f"def {needle}("
            assert needle in source, f"{block.where}: {kind} {value} is not in {path.name}"
        included.append(path.parent.name)
    assert included, "the pages include no example at all"
    # tests/examples/test_examples.py runs every numbered example (and checks that it does).
    examples_test = (ROOT / "tests" / "examples" / "test_examples.py").read_text(encoding="utf-8")
    for name in included:
        assert f'"{name}"' in examples_test, f"{name} is not run by tests/examples"


# --- Running the blocks --------------------------------------------------------------------


@pytest.fixture
async def server() -> AsyncIterator[ApiServer]:
    async with open_apiserver() as server:
        yield server


@pytest.fixture
def connection(server: ApiServer, tmp_path: pathlib.Path) -> ConnectionInfo:
    return load_kubeconfig(server.write_kubeconfig(tmp_path / "kubeconfig"))


@pytest.fixture
async def client(connection: ConnectionInfo) -> AsyncIterator[ApiClient]:
    async with open_client(connection) as client:
        yield client


async def apply_examples(client: ApiClient) -> Resource:
    """The examples' CRD and object, as every example operator sees them."""
    await apply_manifests(client, load_manifests([EXAMPLES / "crd.yaml", EXAMPLES / "obj.yaml"]))
    return await client.resolve("kopfexamples")


def fast_settings() -> trikopf.OperatorSettings:
    settings = trikopf.OperatorSettings()
    settings.processing.batch_window = 0.01
    return settings


def was_handled(body: Any) -> bool:
    annotations = (body or {}).get("metadata", {}).get("annotations", {})
    return any(key.endswith("/last-handled-configuration") for key in annotations)


def has_status(key: str) -> Any:
    return lambda body: body is not None and key in (body.get("status") or {})


async def test_the_first_handler_of_the_handlers_page_puts_its_result_in_status(
    client: ApiClient, connection: ConnectionInfo
) -> None:
    block = python_block("handlers.md", "def create_fn(spec, name, logger, **kwargs):")
    with fresh_default_registry() as registry:
        await run(block, {})
        resource = await apply_examples(client)
        async with open_operator(registry, connection=connection, settings=fast_settings()):
            body = await wait_for_object(
                client, resource, NAME, has_status("create_fn"), namespace="default"
            )
    assert body is not None
    assert body["status"]["create_fn"] == {"message": "created"}


def test_every_resource_form_of_the_handlers_page_is_accepted() -> None:
    block = python_block("handlers.md", '@trikopf.on.create("kopfexamples.kopf.dev")')
    decorators = [line.split("#")[0].strip() for line in block.text.splitlines() if line.strip()]
    assert len(decorators) == 10
    for decorator in decorators:
        assert decorator.startswith("@trikopf.on.")
        with fresh_default_registry() as registry:
            namespace: dict[str, Any] = {"trikopf": trikopf}
            exec(f"{decorator}\ndef fn(**_):\n    pass\n", namespace)
            assert registry.selectors(), decorator


async def test_the_event_handler_of_the_handlers_page_sees_pod_events(
    client: ApiClient, connection: ConnectionInfo
) -> None:
    block = python_block("handlers.md", "def pod_event(event, type, name, **kwargs):")
    seen: list[tuple[str, str]] = []
    got_p1 = anyio.Event()
    # The page elides the body; the test fills it in with a record of what the handler got.
    # A sync handler runs in a worker thread, hence from_thread.
    body = (
        "    seen.append((type, name))\n"
        "    if name == 'p1':\n"
        "        anyio.from_thread.run_sync(got_p1.set)\n"
    )
    text = block.text.replace("    ...\n", body)
    pods = await client.resolve("pods")
    with fresh_default_registry() as registry:
        namespace = {"trikopf": trikopf, "anyio": anyio, "seen": seen, "got_p1": got_p1}
        await run(block, namespace, text=text)
        async with open_operator(registry, connection=connection, settings=fast_settings()):
            pod = {
                "metadata": {"name": "p1"},
                "spec": {"containers": [{"name": "c", "image": "x"}]},
            }
            await client.create(pods, pod, "default")
            with anyio.fail_after(10):
                await got_p1.wait()
    assert ("ADDED", "p1") in seen


async def test_the_update_handler_of_the_kwargs_page_writes_the_observed_size(
    client: ApiClient, connection: ConnectionInfo
) -> None:
    block = python_block("kwargs.md", "async def update_fn(spec, old, new, diff, patch")
    with fresh_default_registry() as registry:
        await run(block, {"trikopf": trikopf})
        resource = await apply_examples(client)
        async with open_operator(registry, connection=connection, settings=fast_settings()):
            # An update is a change after the operator has seen the object: wait for that first.
            await wait_for_object(client, resource, NAME, was_handled, namespace="default")
            await client.patch(resource, NAME, {"spec": {"size": 3}}, namespace="default")
            body = await wait_for_object(
                client, resource, NAME, has_status("observed"), namespace="default"
            )
    assert body is not None
    assert body["status"]["observed"] == 3


async def test_the_typed_spec_of_the_kwargs_page_is_structured_into_the_attrs_class(
    client: ApiClient, connection: ConnectionInfo
) -> None:
    import attrs

    block = python_block("kwargs.md", "def create_fn(spec: Size, **_):")
    got: list[Any] = []
    called = anyio.Event()
    body = "    got.append(spec)\n    anyio.from_thread.run_sync(called.set)  # a worker thread\n"
    text = block.text.replace("    ...  # spec.size", body + "    # spec.size")
    with fresh_default_registry() as registry:
        namespace: dict[str, Any] = {"trikopf": trikopf, "attrs": attrs, "anyio": anyio}
        namespace.update(got=got, called=called)
        await run(block, namespace, text=text)
        resource = await apply_examples(client)
        await client.patch(resource, NAME, {"spec": {"size": 2}}, namespace="default")
        async with open_operator(registry, connection=connection, settings=fast_settings()):
            with anyio.fail_after(10):
                await called.wait()
    assert got == [namespace["Size"](size=2)]


async def test_the_event_calls_of_the_kwargs_page_post_events(
    client: ApiClient, connection: ConnectionInfo
) -> None:
    block = python_block("kwargs.md", 'trikopf.info(body, reason="Scaled", message="3 replicas")')
    with fresh_default_registry() as registry:

        @trikopf.on.create("kopfexamples")
        async def create_fn(body: Any, **_: Any) -> None:
            try:
                raise RuntimeError("the scaler is down")
            except RuntimeError:
                # trikopf.exception appends the exception being handled.
                await run(block, {"trikopf": trikopf, "body": body, "body1": body, "body2": body})

        await apply_examples(client)
        events = await client.resolve("events")
        start = await client.list(events, "default")
        wanted = {"Scaled", "Degraded", "Failure", "Synced"}
        posted: dict[str, dict[str, Any]] = {}
        synced: list[str] = []  # identical Events may be folded into one "(xN)"
        async with open_operator(registry, connection=connection, settings=fast_settings()):
            with anyio.fail_after(15):
                watch = client.watch(events, "default", resource_version=start.resource_version)
                async with watch as stream:
                    async for event in stream:
                        posted[event.object["reason"]] = event.object
                        if event.object["reason"] == "Synced":
                            synced.append(event.object["message"])
                        if wanted <= set(posted) and occurrences(synced) >= 2:
                            break
    messages = {r: (e["type"], e["message"]) for r, e in posted.items()}
    assert messages["Scaled"] == ("Normal", "3 replicas")
    assert messages["Degraded"] == ("Warning", "1 of 3 replicas ready")
    assert messages["Failure"][0] == "Warning"
    assert "could not scale" in messages["Failure"][1]
    assert "the scaler is down" in messages["Failure"][1]
    # body1 and body2 are the same object here: one Event each, or one folded "(x2)".
    assert messages["Synced"][0] == "Normal"
    assert {m.split(" (x")[0] for m in synced} == {"..."}
    assert occurrences(synced) == 2


def occurrences(messages: list[str]) -> int:
    return sum(int(m.rsplit("(x", 1)[1][:-1]) if m.endswith(")") else 1 for m in messages)


def test_the_filters_of_the_filters_page_register_one_filtered_handler() -> None:
    block = python_block("filters.md", 'labels={"app": "web", "canary": trikopf.ABSENT},')
    with fresh_default_registry() as registry:
        namespace: dict[str, Any] = {"trikopf": trikopf}
        anyio.run(run, block, namespace)
        assert callable(namespace["create_fn"])
        assert len(registry.selectors()) == 1


def test_the_retry_options_of_the_errors_page_register_a_handler() -> None:
    block = python_block("errors.md", "raise trikopf.TemporaryError(")
    with fresh_default_registry() as registry:
        namespace: dict[str, Any] = {"trikopf": trikopf, "ready": lambda: False}
        anyio.run(run, block, namespace)
        assert len(registry.selectors()) == 1
        with pytest.raises(trikopf.TemporaryError, match="the database is not ready"):
            namespace["create_fn"](spec={}, retry=0)


async def test_the_login_handlers_of_the_activities_and_client_pages_return_a_connection() -> None:
    async def fetch_token_from_vault() -> str:
        return "t0ken"

    block = python_block("activities.md", "async def login_fn(previous, **_):")
    with fresh_default_registry():
        namespace: dict[str, Any] = {"trikopf": trikopf, "CA": None}
        namespace["fetch_token_from_vault"] = fetch_token_from_vault
        await run(block, namespace)
        info = await namespace["login_fn"](previous=None)
    assert isinstance(info, ConnectionInfo)
    assert info.token == "t0ken"
    assert info.server == "https://k8s.example.com"

    block = python_block("client.md", "async def login(*, previous: ConnectionInfo | None)")
    # Only the function: the block then connects to its (made-up) server.
    head = block.text.split("async with open_client(login)")[0]
    namespace = {"fetch_token_from_vault": fetch_token_from_vault, "CA_PEM": None}
    await run(block, namespace, text=head)
    info = await namespace["login"](previous=None)
    assert isinstance(info, ConnectionInfo)
    assert info.token == "t0ken"


async def test_the_in_process_block_of_the_apiserver_page_runs(tmp_path: pathlib.Path) -> None:
    block = python_block("apiserver.md", "async with open_apiserver() as server:          #")
    namespace: dict[str, Any] = {"tmp_path": tmp_path}
    await run(block, namespace)
    assert (tmp_path / "config").is_file()
    assert namespace["server"].url.startswith("http://127.0.0.1:")


async def test_the_fault_injection_block_of_the_apiserver_page_runs(
    server: ApiServer, client: ApiClient
) -> None:
    block = python_block("apiserver.md", "faults = server.faults")
    await run(block, {"server": server})
    # It ends with faults.clear(): the server answers normally again.
    configmaps = await client.resolve("configmaps")
    page = await client.list(configmaps, "default")
    assert page.items == []


async def test_the_request_log_block_of_the_apiserver_page_holds_after_one_patch(
    server: ApiServer, client: ApiClient
) -> None:
    block = python_block("apiserver.md", 'server.requests.matching("PATCH", "/apis/kopf.dev/*")')
    resource = await apply_examples(client)
    await client.patch(resource, NAME, {"spec": {"size": 1}}, namespace="default")
    await run(block, {"server": server})  # the block is an assertion


def test_the_settings_blocks_set_what_they_say() -> None:
    block = python_block("health-and-metrics.md", "settings.serving.metrics =")
    namespace: dict[str, Any] = {"trikopf": trikopf}
    anyio.run(run, block, namespace)
    assert namespace["settings"].serving.liveness == "http://0.0.0.0:8080/healthz"
    assert namespace["settings"].serving.metrics == "http://0.0.0.0:8080/metrics"


async def test_the_settings_page_block_runs_an_operator_with_those_settings(
    client: ApiClient, kubeconfig: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = python_block("settings.md", "settings.processing.worker_limit = 50")
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))  # operate() finds the cluster by it
    registry = trikopf.OperatorRegistry()

    @trikopf.on.create("kopfexamples", registry=registry)
    def create_fn(**_: Any) -> dict[str, str]:
        return {"ran": "yes"}

    resource = await apply_examples(client)
    namespace: dict[str, Any] = {"trikopf": trikopf, "registry": registry}
    async with anyio.create_task_group() as tg:
        tg.start_soon(run, block, namespace)
        body = await wait_for_object(
            client, resource, NAME, has_status("create_fn"), namespace="default"
        )
        tg.cancel_scope.cancel()
    assert body is not None
    assert body["status"]["create_fn"] == {"ran": "yes"}
    assert namespace["settings"].processing.worker_limit == 50
    assert namespace["settings"].watching.server_timeout == 120


@pytest.fixture
def kubeconfig(server: ApiServer, tmp_path: pathlib.Path) -> pathlib.Path:
    return server.write_kubeconfig(tmp_path / "kubeconfig-for-env")


async def test_the_open_operator_example_of_the_testing_page_passes(
    tmp_path: pathlib.Path,
) -> None:
    block = python_block("testing.md", "async def test_create_fn_reports_in_status(tmp_path):")
    elided = "            ...  # apply the CRD, create an object\n"
    assert elided in block.text
    # The page leaves out how the CRD and the object get there; the test fills that in.
    text = block.text.replace(elided, "            resource = await apply_examples(client)\n")
    text = text.replace('client, resource, "one",', f'client, resource, "{NAME}",')
    text += "    return body\n"
    namespace: dict[str, Any] = {"apply_examples": apply_examples}
    await run(block, namespace, text=text)
    body = await namespace["test_create_fn_reports_in_status"](tmp_path)
    assert body["status"]["create_fn"] == {"message": f"created {NAME}"}


def test_the_virtual_clock_fixture_of_the_testing_page_gives_trio_a_mock_clock() -> None:
    block = python_block("testing.md", "def anyio_backend():")
    namespace: dict[str, Any] = {"pytest": pytest, "trio": trio}
    anyio.run(run, block, namespace)
    backend, options = namespace["anyio_backend"].__wrapped__()
    assert backend == "trio"
    assert isinstance(options["clock"], trio.testing.MockClock)
    assert options["clock"].autojump_threshold == 0


@pytest.mark.slow
async def test_the_subprocess_example_of_the_testing_page_passes(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    block = python_block("testing.md", "async def test_operator_starts_and_stops(tmp_path):")
    monkeypatch.chdir(ROOT)  # the block names examples/ relative to the repository
    namespace: dict[str, Any] = {}
    await run(block, namespace)
    await namespace["test_operator_starts_and_stops"](tmp_path)


def test_the_migration_blocks_use_trikopf_under_kopfs_name() -> None:
    block = python_block("migrating-from-kopf.md", "import trikopf as kopf")
    namespace: dict[str, Any] = {}
    anyio.run(run, block, namespace)
    assert namespace["kopf"] is trikopf

    block = python_block("migrating-from-kopf.md", "def take_over(settings, **_):")
    with fresh_default_registry() as registry:
        anyio.run(run, block, namespace)
        settings = trikopf.OperatorSettings()
        namespace["take_over"](settings=settings, logger=logging.getLogger(__name__))
        assert len(registry.activity_handlers()) == 1
    assert settings.persistence.annotation_prefix == "kopf.zalando.org"
    assert settings.persistence.finalizer == "kopf.zalando.org/KopfFinalizerMarker"
