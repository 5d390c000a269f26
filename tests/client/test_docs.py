"""The client page's first example runs as written, against the API server in its own process."""

from __future__ import annotations

import os
import pathlib
import re
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]


def first_python_block(path: pathlib.Path) -> str:
    match = re.search(r"```python\n(.*?)```", path.read_text(), re.DOTALL)
    assert match is not None
    return match.group(1)


def test_the_first_example_of_the_client_page_runs(tmp_path: pathlib.Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    server = subprocess.Popen(
        [sys.executable, "-m", "trikopf.apiserver", "--port", "0", "--kubeconfig", str(kubeconfig)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while not (kubeconfig.exists() and kubeconfig.stat().st_size):
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "the API server did not start"
            time.sleep(0.05)
        script = tmp_path / "example.py"
        script.write_text(first_python_block(ROOT / "docs" / "client.md"))
        env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        done = subprocess.run(
            [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
        )
    finally:
        server.terminate()
        server.wait(10)
        if server.stderr is not None:
            server.stderr.close()
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("listed 0 at ")
    assert lines[1].startswith("ADDED hello ")
