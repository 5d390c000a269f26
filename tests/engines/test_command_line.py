"""``python -m trikopf --liveness URL --metrics URL``, as a user runs it, with a cleanup handler."""

from __future__ import annotations

import pathlib

import httpx
import pytest

from tests.ports import free_port
from trikopf.testing import open_operator_process

EXAMPLES = pathlib.Path(__file__).parent.parent.parent / "examples"

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_command_line_serves_health_and_metrics_and_cleans_up_on_sigint(
    tmp_path: pathlib.Path,
) -> None:
    port = free_port()
    args = [
        "--dev-cluster",
        "--dev-kubeconfig",
        str(tmp_path / "kubeconfig"),
        "--apply",
        str(EXAMPLES / "crd.yaml"),
        "--apply",
        str(EXAMPLES / "obj.yaml"),
        "--liveness",
        f"http://127.0.0.1:{port}/alive",
        "--metrics",
        f"http://127.0.0.1:{port}/prometheus",
        str(EXAMPLES / "09-startup-cleanup" / "example.py"),
    ]
    async with open_operator_process(args) as process:
        await process.wait_for_line("The operator is ready")
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            alive = await http.get("/alive")
            assert alive.status_code == 200, process.output
            assert alive.json() == {"ok": True, "probes": {}}
            assert (await http.get("/readyz")).json() == {"ready": True}
            await process.wait_for_line("Handler 'use_pool' succeeded.")
            metrics = await http.get("/prometheus")
            assert 'trikopf_handler_runs_total{handler="use_pool",outcome="success"} 1.0' in (
                metrics.text
            )
        process.interrupt()
        assert await process.wait() == 0, process.output
    assert "The pool is closed after 1 uses." in process.output


async def test_a_bad_liveness_url_is_a_usage_error() -> None:
    async with open_operator_process(["--liveness", "localhost:8080", "handlers.py"]) as process:
        assert await process.wait() == 2
    assert "--liveness must look like http://HOST:PORT/PATH" in process.output


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_command_line_logs_in_with_the_login_handler_instead_of_a_kubeconfig(
    tmp_path: pathlib.Path, kubeconfig_path: pathlib.Path
) -> None:
    from trikopf.client import load_kubeconfig, open_client
    from trikopf.reactor.manifests import apply_manifests, load_manifests

    async with open_client(load_kubeconfig(kubeconfig_path)) as client:
        await apply_manifests(
            client, load_manifests([EXAMPLES / "crd.yaml", EXAMPLES / "obj.yaml"])
        )
    handlers = tmp_path / "handlers.py"
    handlers.write_text(
        "import os\n"
        "import trikopf\n"
        "from trikopf.client import load_kubeconfig\n\n"
        "@trikopf.on.login()\n"
        "def login_fn(**_):\n"
        "    return load_kubeconfig(os.environ['LOGIN_KUBECONFIG'])\n\n"
        "@trikopf.on.create('kopfexamples')\n"
        "def create_fn(**_):\n"
        "    return 'created'\n"
    )
    env = {"KUBECONFIG": str(tmp_path / "nothing-here"), "LOGIN_KUBECONFIG": str(kubeconfig_path)}
    async with open_operator_process([str(handlers)], env=env) as process:
        await process.wait_for_line("Logged in with the credentials of 'login_fn'")
        await process.wait_for_line("[default/kopf-example-1] Handler 'create_fn' succeeded.")
        process.interrupt()
        assert await process.wait() == 0, process.output
