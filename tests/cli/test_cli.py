"""``python -m trikopf`` as a user runs it: clear failures, the quick start, signals, log formats."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys

import pytest

from trikopf.client import load_kubeconfig, open_client
from trikopf.reactor.manifests import apply_manifests, load_manifests
from trikopf.testing import OperatorProcess, open_operator_process

ROOT = pathlib.Path(__file__).parent.parent.parent
EXAMPLES = ROOT / "examples"

pytestmark = pytest.mark.slow


def dev_cluster(tmp_path: pathlib.Path, *manifests: str) -> list[str]:
    """Arguments for a throwaway embedded cluster with these ``examples/`` manifests applied."""
    args = ["--dev-cluster", "--dev-kubeconfig", str(tmp_path / "kubeconfig")]
    for manifest in manifests:
        args += ["--apply", str(EXAMPLES / manifest)]
    return args


async def interrupt(process: OperatorProcess, *, code: int = 0, within: float = 30.0) -> None:
    """Send SIGINT and wait for the process to exit with ``code``."""
    process.interrupt()
    assert await process.wait(within=within) == code, process.output


def assert_one_clear_line(process: OperatorProcess, text: str) -> None:
    errors = [line for line in process.lines if line.startswith("trikopf: error:")]
    assert len(errors) == 1, process.output
    assert text in errors[0], process.output
    assert "Traceback" not in process.output


async def test_syntax_error_in_the_handlers_file_is_one_line_naming_file_and_line(
    tmp_path: pathlib.Path,
) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text("import trikopf\n\ndef broken(:\n    pass\n")
    async with open_operator_process([str(handlers)]) as process:
        code = await process.wait()
        assert code == 2, process.output
    assert_one_clear_line(process, f"syntax error in {handlers}, line 3")


async def test_missing_handlers_file_is_reported(tmp_path: pathlib.Path) -> None:
    async with open_operator_process([str(tmp_path / "nope.py")]) as process:
        code = await process.wait()
        assert code == 2, process.output
    assert_one_clear_line(process, "no such handlers file")


async def test_unreachable_cluster_is_reported_quickly(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: x\n"
        "clusters: [{name: c, cluster: {server: 'http://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u}}]\n"
    )
    args = ["--kubeconfig", str(kubeconfig), str(EXAMPLES / "01-minimal" / "example.py")]
    async with open_operator_process(args) as process:
        code = await process.wait(within=20)
        assert code == 1, process.output
    assert_one_clear_line(process, "cannot reach the Kubernetes API at http://127.0.0.1:1")


async def test_bad_kubeconfig_is_reported(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("clusters: [this is not: a kubeconfig\n")
    args = ["--kubeconfig", str(kubeconfig), str(EXAMPLES / "01-minimal" / "example.py")]
    async with open_operator_process(args) as process:
        code = await process.wait()
        assert code == 1, process.output
    assert_one_clear_line(process, "bad cluster configuration")


async def test_unknown_resource_is_reported(kubeconfig_path: pathlib.Path) -> None:
    # The embedded server runs in this test; the CRD was never applied.
    args = ["--kubeconfig", str(kubeconfig_path), str(EXAMPLES / "01-minimal" / "example.py")]
    async with open_operator_process(args) as process:
        code = await process.wait()
        assert code == 1, process.output
    assert_one_clear_line(process, "no resource named kopfexamples")


@pytest.mark.parametrize("loop", ["trio", "asyncio"])
async def test_quick_start_handles_the_example_object_and_stops_on_sigint(
    tmp_path: pathlib.Path, loop: str
) -> None:
    args = [
        "--backend",
        loop,
        *dev_cluster(tmp_path, "crd.yaml", "obj.yaml"),
        str(EXAMPLES / "01-minimal" / "example.py"),
    ]
    async with open_operator_process(args) as process:
        await process.wait_for_line(f"export KUBECONFIG={tmp_path / 'kubeconfig'}")
        await process.wait_for_line("[default/kopf-example-1] Handler 'create_fn' succeeded.")
        await interrupt(process)
    assert "The operator has stopped." in process.output


async def test_two_dev_clusters_without_a_kubeconfig_path_each_write_their_own_file(
    tmp_path: pathlib.Path,
) -> None:
    args = [
        "--dev-cluster",
        "--apply",
        str(EXAMPLES / "crd.yaml"),
        str(EXAMPLES / "01-minimal" / "example.py"),
    ]
    environment = {"TMPDIR": str(tmp_path)}
    async with (
        open_operator_process(args, env=environment) as first,
        open_operator_process(args, env=environment) as second,
    ):
        paths = []
        for process in (first, second):
            line = await process.wait_for_line("export KUBECONFIG=")
            paths.append(pathlib.Path(line.split("export KUBECONFIG=", 1)[1].strip()))
            await process.wait_for_line("The operator is ready")
        assert paths[0] != paths[1]
        assert all(path.is_relative_to(tmp_path) for path in paths)
        servers = {load_kubeconfig(path).server for path in paths}
        urls = set()
        for process in (first, second):
            line = await process.wait_for_line("the embedded API server runs at ")
            urls.add(line.split(" runs at ", 1)[1].strip())
        assert servers == urls
        assert len(urls) == 2
        await interrupt(first)
        await interrupt(second)
    # Each process removes the folder it made for its file.
    assert not any(path.exists() for path in paths)
    assert list(tmp_path.iterdir()) == []


async def test_second_sigint_stops_at_once_while_a_handler_blocks(
    tmp_path: pathlib.Path,
) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        "import anyio, trikopf\n\n"
        "@trikopf.on.create('kopfexamples')\n"
        "async def create_fn(logger, **_):\n"
        "    logger.info('blocking now')\n"
        "    await anyio.sleep_forever()\n"
    )
    args = [*dev_cluster(tmp_path, "crd.yaml", "obj.yaml"), str(handlers)]
    async with open_operator_process(args) as process:
        await process.wait_for_line("blocking now")
        process.interrupt()
        await process.wait_for_line("send it again to stop at once")
        # Well before the 10 s grace period would have run out.
        await interrupt(process, within=5)
    assert "Stopping at once" in process.output


async def test_json_log_format_prints_one_object_per_line_with_the_object_named(
    tmp_path: pathlib.Path,
) -> None:
    args = [
        *dev_cluster(tmp_path, "crd.yaml", "obj.yaml"),
        "--log-format",
        "json",
        str(EXAMPLES / "01-minimal" / "example.py"),
    ]
    async with open_operator_process(args) as process:
        await process.wait_for_line("succeeded")
        await interrupt(process)
    records = [json.loads(line) for line in process.lines if line.startswith("{")]
    assert records
    succeeded = [r for r in records if "Handler 'create_fn' succeeded" in r["message"]]
    assert succeeded
    assert succeeded[0]["object"]["name"] == "kopf-example-1"
    assert succeeded[0]["object"]["namespace"] == "default"
    assert {"time", "level", "logger", "message"} <= set(succeeded[0])


async def test_bad_namespace_pattern_is_a_usage_error() -> None:
    args = ["-n", "Bad_Name", str(EXAMPLES / "01-minimal" / "example.py")]
    async with open_operator_process(args) as process:
        code = await process.wait()
        assert code == 2, process.output
    assert_one_clear_line(process, "invalid namespace pattern 'Bad_Name'")


@pytest.mark.parametrize("loop", ["trio", "asyncio"])
async def test_synchronous_run_serves_until_sigint_and_then_returns(
    tmp_path: pathlib.Path, kubeconfig_path: pathlib.Path, loop: str
) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        "import sys\n"
        "import trikopf\n"
        "from trikopf.client import load_kubeconfig\n\n"
        "registry = trikopf.OperatorRegistry()\n\n"
        "@trikopf.on.create('kopfexamples', registry=registry)\n"
        "def create_fn(name, **_):\n"
        "    print(f'handled {name}', flush=True)\n\n"
        "trikopf.run(registry, backend=sys.argv[2], connection=load_kubeconfig(sys.argv[1]))\n"
        "print('run() returned', flush=True)\n"
    )
    # The embedded server runs in this test; the operator in the subprocess talks to it.
    async with open_client(load_kubeconfig(kubeconfig_path)) as client:
        await apply_manifests(
            client, load_manifests([EXAMPLES / "crd.yaml", EXAMPLES / "obj.yaml"])
        )
    async with open_operator_process([str(kubeconfig_path), loop], script=script) as process:
        await process.wait_for_line("handled kopf-example-1")
        await interrupt(process)
    assert "run() returned" in process.output


def interpreter_default_gc_thresholds() -> str:
    # The defaults differ between Python versions (3.13 raised the first one): ask a fresh one.
    done = subprocess.run(
        [sys.executable, "-c", "import gc; print(gc.get_threshold())"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.strip()


@pytest.mark.parametrize(("setting", "tuned"), [("", True), ("default", False)])
async def test_command_tunes_the_garbage_collector_unless_asked_not_to(
    tmp_path: pathlib.Path, setting: str, tuned: bool
) -> None:
    expected = "(50000, 50, 100)" if tuned else interpreter_default_gc_thresholds()
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        "import gc, trikopf\n\n"
        "@trikopf.on.startup()\n"
        "def report(logger, **_):\n"
        "    logger.info(f'thresholds {gc.get_threshold()}')\n\n"
        "@trikopf.on.create('kopfexamples')\n"
        "def create_fn(**_):\n"
        "    pass\n"
    )
    args = [*dev_cluster(tmp_path, "crd.yaml"), str(handlers)]
    async with open_operator_process(args, env={"TRIKOPF_GC": setting}) as process:
        line = await process.wait_for_line("thresholds")
        await process.wait_for_line("The operator is ready")
        await interrupt(process)
    assert line.endswith(f"thresholds {expected}")


async def test_sigint_while_starting_exits_quietly(tmp_path: pathlib.Path) -> None:
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        "import anyio, trikopf\n\n"
        "@trikopf.on.startup()\n"
        "async def slow_start(logger, **_):\n"
        "    logger.info('starting slowly')\n"
        "    await anyio.sleep(30)\n\n"
        "@trikopf.on.create('kopfexamples')\n"
        "def create_fn(**_):\n"
        "    pass\n"
    )
    args = [*dev_cluster(tmp_path), str(handlers)]
    async with open_operator_process(args) as process:
        await process.wait_for_line("starting slowly")
        await interrupt(process, code=130, within=10)
    assert "Traceback" not in process.output
    assert "trikopf: interrupted while starting" in process.output
