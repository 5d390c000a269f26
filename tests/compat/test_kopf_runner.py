"""``KopfRunner`` with Kopf's call shape, in plain synchronous tests (as Kopf users write them)."""

from __future__ import annotations

import json
import pathlib
import subprocess

import pytest

from tests.compat.conftest import EXAMPLES, OPERATORS
from trikopf.testing import KopfRunner, OperatorFailed


def _dev_cluster_args(kubeconfig: pathlib.Path) -> list[str]:
    return [
        "--dev-cluster",
        "--dev-kubeconfig",
        str(kubeconfig),
        "--apply",
        str(EXAMPLES / "crd.yaml"),
        "--apply",
        str(EXAMPLES / "obj.yaml"),
    ]


def _status(kubeconfig: pathlib.Path) -> dict[str, object]:
    got = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), "get", "kopfexamples", "kopf-example-1",
         "-o", "json"],
        check=True, capture_output=True, text=True, timeout=30,
    )  # fmt: skip
    return json.loads(got.stdout).get("status", {})  # type: ignore[no-any-return]


def test_kopf_runner_runs_asyncio_handlers_with_the_asyncio_backend(
    tmp_path: pathlib.Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    args = ["run", "--backend", "asyncio", *_dev_cluster_args(kubeconfig)]
    with KopfRunner([*args, str(OPERATORS / "kopf_asyncio.py")], timeout=30) as runner:
        runner.wait_for("Handler 'create_fn' succeeded")
        status = _status(kubeconfig)
    assert status["create_fn"] == {"slept": True, "loop": True}
    assert runner.exit_code == 0
    assert runner.exception is None
    assert "The operator has stopped" in runner.output


def test_kopf_runner_shows_how_to_fix_an_asyncio_handler_run_on_trio(
    tmp_path: pathlib.Path,
) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    args = ["run", *_dev_cluster_args(kubeconfig), str(OPERATORS / "kopf_asyncio.py")]
    with KopfRunner(args, timeout=30) as runner:
        line = runner.wait_for("uses asyncio, but the operator runs on Trio")
        status = _status(kubeconfig)
    assert "--backend asyncio" in line
    assert "create_fn" not in status  # failed permanently, not retried forever
    assert runner.exit_code == 0


def test_kopf_runner_reports_an_operator_that_cannot_start(tmp_path: pathlib.Path) -> None:
    missing = str(tmp_path / "missing.py")
    with KopfRunner(["run", missing], reraise=False, timeout=30) as runner:
        pass
    assert runner.exit_code == 2
    assert isinstance(runner.exception, OperatorFailed)
    assert "no such handlers file" in runner.output

    with pytest.raises(OperatorFailed, match="no such handlers file"):  # noqa: SIM117
        with KopfRunner(["run", missing], timeout=30):
            pass
