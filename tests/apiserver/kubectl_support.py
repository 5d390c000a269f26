"""Driving the real kubectl against the embedded API server, from async tests.

kubectl runs as a child process through :func:`anyio.run_process` / :func:`anyio.open_process`,
so the test's event loop keeps serving the in-process API server while kubectl talks to it.
Each run is bounded by a deadline; each test gets its own HOME and discovery cache.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import anyio
import attrs
import pytest
import yaml

from trikopf.apiserver import ApiServer

MANIFESTS = pathlib.Path(__file__).parent / "manifests"
OLD_KUBECTL = pathlib.Path("/usr/lib/google-cloud-sdk/bin/kubectl.1.27")
# kubectl on the PATH is 1.32 on these machines; 1.27 is the oldest one we promise to serve.
KUBECTL_VERSIONS = [
    pytest.param("kubectl", id="kubectl-path"),
    pytest.param(str(OLD_KUBECTL), id="kubectl-1.27"),
]
RUN_TIMEOUT = 60.0


def find_kubectl(name: str) -> str:
    """The path of a kubectl binary; skip the test (with the reason) if it is not installed."""
    found = shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed on this machine")
    return found


@attrs.frozen(kw_only=True)
class Result:
    """What one kubectl run printed."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def yaml(self) -> Any:
        return yaml.safe_load(self.stdout)


@attrs.define(kw_only=True)
class Kubectl:
    """One kubectl binary pointed at one server, with a private HOME and cache."""

    binary: str
    server: ApiServer
    home: pathlib.Path
    kubeconfig: pathlib.Path

    @classmethod
    def for_server(cls, binary: str, server: ApiServer, tmp_path: pathlib.Path) -> Kubectl:
        home = tmp_path / "home"
        home.mkdir(exist_ok=True)
        kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
        return cls(binary=find_kubectl(binary), server=server, home=home, kubeconfig=kubeconfig)

    def command(self, args: Sequence[str]) -> list[str]:
        return [
            self.binary,
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.home / 'cache'}",
            *args,
        ]

    def env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {
            "HOME": str(self.home),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LANG": "C.UTF-8",
            "KUBECTL_EXTERNAL_DIFF": "diff -u -N",
        }
        env.update(extra or {})
        return env

    async def run(
        self,
        *args: str,
        stdin: str | None = None,
        env: Mapping[str, str] | None = None,
        expect_failure: bool = False,
        expect_stderr: str = "",
    ) -> Result:
        """Run kubectl to completion (within :data:`RUN_TIMEOUT`).

        Unless ``expect_failure``, assert that it succeeded and printed nothing on stderr
        (no warnings, no errors) but ``expect_stderr``, kubectl's own notes such as
        "No resources found".
        """
        with anyio.fail_after(RUN_TIMEOUT):
            completed = await anyio.run_process(
                self.command(args),
                input=stdin.encode() if stdin is not None else None,
                check=False,
                env=self.env(env),
            )
        result = Result(
            args=tuple(args),
            code=completed.returncode,
            stdout=completed.stdout.decode(),
            stderr=completed.stderr.decode(),
        )
        if expect_failure:
            assert result.code != 0, f"kubectl {' '.join(args)} unexpectedly succeeded: {result}"
        else:
            assert result.code == 0, f"kubectl {' '.join(args)} failed: {result.stderr}"
            assert result.stderr == expect_stderr, f"kubectl {' '.join(args)}: {result.stderr}"
        return result

    async def open(self, *args: str) -> anyio.abc.Process:
        """Start a long-running kubectl (``get --watch``, ``wait``); the caller closes it."""
        return await anyio.open_process(
            self.command(args), env=self.env(), stdin=subprocess.DEVNULL
        )

    async def apply_crd(self) -> None:
        """Apply the KopfExample CRD from the test manifests; it is served as soon as it is stored."""
        result = await self.run("apply", "-f", str(MANIFESTS / "crd.yaml"))
        assert (
            result.stdout
            == "customresourcedefinition.apiextensions.k8s.io/kopfexamples.kopf.dev created\n"
        )

    async def apply_example(self) -> None:
        """Apply the KopfExample CRD and then the example object (``kopf-example-1``)."""
        await self.apply_crd()
        await self.run("apply", "-f", str(MANIFESTS / "obj.yaml"))


async def read_until(
    stream: anyio.abc.ByteReceiveStream, needle: str, *, timeout: float = 30
) -> str:
    """Read a process's output until the line holding ``needle`` is complete; return it all.

    Output arrives in pieces of any size, so a needle is only "seen" with its whole line.
    """
    seen = ""
    with anyio.fail_after(timeout):
        while needle not in seen or "\n" not in seen[seen.index(needle) :]:
            seen += (await stream.receive()).decode()
    return seen


async def stop(process: anyio.abc.Process) -> None:
    """Terminate a kubectl started with :meth:`Kubectl.open` and reap it (bounded)."""
    if process.returncode is None:
        process.terminate()
    with anyio.fail_after(10):
        await process.wait()
    await process.aclose()


async def wait_until(condition: Callable[[], bool], *, timeout: float = 30) -> None:
    """Wait until ``condition()`` holds, checking every 10 ms, failing after ``timeout``.

    For conditions on the server's request log and store, which offer nothing to await.
    """
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)
