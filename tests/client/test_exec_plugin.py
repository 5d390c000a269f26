"""Exec credential plugins, run through a small script: both API versions, expiry, failures."""

from __future__ import annotations

import datetime
import json
import pathlib
import stat
import sys
from typing import Any

import pytest
import yaml

from tests.client.certs import make_cert
from trikopf.client import ConfigError, load_kubeconfig
from trikopf.client.auth import Authenticator

PLUGIN = """\
#!{python}
import json, os, pathlib, sys
calls = pathlib.Path(os.environ["CALLS"])
count = int(calls.read_text()) + 1 if calls.exists() else 1
calls.write_text(str(count))
pathlib.Path(os.environ["SEEN"]).write_text(os.environ["KUBERNETES_EXEC_INFO"])
mode = os.environ.get("MODE", "token")
if mode == "fail":
    print("error: the identity provider said no", file=sys.stderr)
    sys.exit(3)
if mode == "garbage":
    print("not json at all")
    sys.exit(0)
status = {{}}
if mode == "cert":
    status["clientCertificateData"] = os.environ["CERT"]
    status["clientKeyData"] = os.environ["KEY"]
else:
    status["token"] = "exec-token-%d" % count
if os.environ.get("EXPIRES"):
    status["expirationTimestamp"] = os.environ["EXPIRES"]
version = os.environ.get("ANSWER_VERSION", "client.authentication.k8s.io/v1")
print(json.dumps({{"apiVersion": version, "kind": "ExecCredential", "status": status}}))
"""


def make_plugin(tmp_path: pathlib.Path) -> pathlib.Path:
    path = tmp_path / "plugin.py"
    path.write_text(PLUGIN.format(python=sys.executable))
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def config(
    tmp_path: pathlib.Path,
    *,
    env: dict[str, str] | None = None,
    api_version: str = "client.authentication.k8s.io/v1",
    extra: dict[str, Any] | None = None,
) -> pathlib.Path:
    make_plugin(tmp_path)
    variables = {"CALLS": str(tmp_path / "calls"), "SEEN": str(tmp_path / "seen"), **(env or {})}
    exec_config: dict[str, Any] = {
        "apiVersion": api_version,
        "command": "./plugin.py",  # relative: resolved against the kubeconfig's folder
        "args": ["--verbose"],
        "env": [{"name": k, "value": v} for k, v in variables.items()],
        "interactiveMode": "Never",
        **(extra or {}),
    }
    doc = {
        "clusters": [{"name": "c", "cluster": {"server": "https://k8s.example"}}],
        "users": [{"name": "u", "user": {"exec": exec_config}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path = tmp_path / "config"
    path.write_text(yaml.safe_dump(doc))
    return path


def calls(tmp_path: pathlib.Path) -> int:
    return int((tmp_path / "calls").read_text())


async def test_exec_plugin_token_is_used_and_cached_in_both_api_versions(
    tmp_path: pathlib.Path,
) -> None:
    for api_version in ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"):
        folder = tmp_path / api_version.rsplit("/", 1)[1]
        folder.mkdir()
        await check_token_is_used_and_cached(folder, api_version)


async def check_token_is_used_and_cached(tmp_path: pathlib.Path, api_version: str) -> None:
    path = config(tmp_path, api_version=api_version, env={"ANSWER_VERSION": api_version})
    auth = await Authenticator.start(load_kubeconfig(path), None)
    assert await auth.authorization() == "Bearer exec-token-1"
    assert await auth.authorization() == "Bearer exec-token-1"
    assert calls(tmp_path) == 1
    seen = json.loads((tmp_path / "seen").read_text())
    assert seen["apiVersion"] == api_version
    assert seen["kind"] == "ExecCredential"
    assert seen["spec"]["interactive"] is False
    assert "cluster" not in seen["spec"]


async def test_exec_plugin_is_run_again_when_its_credential_expires(tmp_path: pathlib.Path) -> None:
    past = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(minutes=1)
    path = config(tmp_path, env={"EXPIRES": past.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    auth = await Authenticator.start(load_kubeconfig(path), None)
    assert await auth.authorization() == "Bearer exec-token-2"
    assert await auth.authorization() == "Bearer exec-token-3"
    assert calls(tmp_path) == 3


async def test_exec_plugin_with_future_expiry_is_not_rerun(tmp_path: pathlib.Path) -> None:
    future = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
    path = config(tmp_path, env={"EXPIRES": future.strftime("%Y-%m-%dT%H:%M:%SZ")})
    auth = await Authenticator.start(load_kubeconfig(path), None)
    assert await auth.authorization() == "Bearer exec-token-1"
    assert await auth.authorization() == "Bearer exec-token-1"
    await auth.refresh(auth.generation)  # what a 401 does: run it again, once
    assert await auth.authorization() == "Bearer exec-token-2"
    assert calls(tmp_path) == 2


async def test_exec_plugin_gets_cluster_info_when_asked(tmp_path: pathlib.Path) -> None:
    path = config(tmp_path, extra={"provideClusterInfo": True})
    await Authenticator.start(load_kubeconfig(path), None)
    seen = json.loads((tmp_path / "seen").read_text())
    assert seen["spec"]["cluster"]["server"] == "https://k8s.example"


async def test_exec_plugin_may_return_a_client_certificate(tmp_path: pathlib.Path) -> None:
    pem = make_cert()
    path = config(
        tmp_path, env={"MODE": "cert", "CERT": pem.cert.decode(), "KEY": pem.key.decode()}
    )
    auth = await Authenticator.start(load_kubeconfig(path), None)
    assert await auth.authorization() is None
    assert auth.tls_material() == (pem.cert, pem.key)


async def test_exec_plugin_failure_carries_its_stderr(tmp_path: pathlib.Path) -> None:
    path = config(tmp_path, env={"MODE": "fail"})
    with pytest.raises(ConfigError) as info:
        await Authenticator.start(load_kubeconfig(path), None)
    message = str(info.value)
    assert "exec plugin './plugin.py'" in message
    assert "exit code 3" in message
    assert "the identity provider said no" in message


async def test_exec_plugin_printing_garbage(tmp_path: pathlib.Path) -> None:
    path = config(tmp_path, env={"MODE": "garbage"})
    with pytest.raises(ConfigError, match="printed something that is not JSON"):
        await Authenticator.start(load_kubeconfig(path), None)


async def test_exec_plugin_answering_another_api_version(tmp_path: pathlib.Path) -> None:
    path = config(tmp_path, env={"ANSWER_VERSION": "client.authentication.k8s.io/v1beta1"})
    with pytest.raises(ConfigError, match=r"answered with apiVersion .*v1beta1"):
        await Authenticator.start(load_kubeconfig(path), None)


async def test_exec_plugin_that_cannot_be_found_shows_the_install_hint(
    tmp_path: pathlib.Path,
) -> None:
    path = config(tmp_path, extra={"command": "no-such-plugin-xyz", "installHint": "brew it"})
    with pytest.raises(ConfigError, match=r"cannot be started: .*; brew it"):
        await Authenticator.start(load_kubeconfig(path), None)


def test_interactive_exec_plugins_are_refused(tmp_path: pathlib.Path) -> None:
    path = config(tmp_path, extra={"interactiveMode": "Always"})
    with pytest.raises(ConfigError, match="needs an interactive terminal"):
        load_kubeconfig(path)


def test_unknown_exec_api_version_is_refused(tmp_path: pathlib.Path) -> None:
    path = config(tmp_path, api_version="client.authentication.k8s.io/v1alpha1")
    with pytest.raises(ConfigError, match="v1alpha1' is not supported"):
        load_kubeconfig(path)


def test_exec_env_is_hidden_from_repr(tmp_path: pathlib.Path) -> None:
    path = config(tmp_path, env={"API_KEY": "very-secret-key"})
    assert "very-secret-key" not in repr(load_kubeconfig(path))
