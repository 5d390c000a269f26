"""kubeconfig loading: every credential form, merging, contexts, and each misconfiguration."""

from __future__ import annotations

import base64
import pathlib
from typing import Any

import pytest
import yaml

from tests.client.certs import make_cert
from trikopf.client import ConfigError, load_incluster, load_kubeconfig
from trikopf.client.auth import Authenticator, build_ssl_context

SECRET = "s3cr3t-t0ken-value"


def write(path: pathlib.Path, doc: dict[str, Any]) -> pathlib.Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(
    *,
    user: dict[str, Any] | None = None,
    cluster: dict[str, Any] | None = None,
    current: str | None = "main",
    namespace: str | None = None,
) -> dict[str, Any]:
    context: dict[str, Any] = {"cluster": "c1", "user": "u1"}
    if namespace:
        context["namespace"] = namespace
    doc: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "c1", "cluster": cluster or {"server": "https://k8s.example:6443"}}],
        "users": [{"name": "u1", "user": user or {}}],
        "contexts": [{"name": "main", "context": context}],
    }
    if current:
        doc["current-context"] = current
    return doc


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def authorization(path: pathlib.Path) -> str | None:
    auth = await Authenticator.start(load_kubeconfig(path), None)
    return await auth.authorization()


async def test_bearer_token_is_sent_and_never_shown(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(user={"token": SECRET}, namespace="team"))
    info = load_kubeconfig(path)
    assert info.server == "https://k8s.example:6443"
    assert info.namespace == "team"
    assert info.context == "main"
    assert SECRET not in repr(info)
    assert await authorization(path) == f"Bearer {SECRET}"


async def test_token_file_is_reread_when_it_rotates(tmp_path: pathlib.Path) -> None:
    token = tmp_path / "token"
    token.write_text("first\n")
    path = write(tmp_path / "config", kubeconfig(user={"tokenFile": "token"}))
    auth = await Authenticator.start(load_kubeconfig(path), None)
    assert await auth.authorization() == "Bearer first"
    token.write_text("second\n")
    import os

    os.utime(token, (1, 1))  # a different mtime, as a rotation by the kubelet gives
    assert await auth.authorization() == "Bearer second"


async def test_username_and_password_become_basic_auth(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(user={"username": "ann", "password": SECRET}))
    assert SECRET not in repr(load_kubeconfig(path))
    expected = "Basic " + b64(f"ann:{SECRET}".encode())
    assert await authorization(path) == expected


def test_client_certificate_data_and_ca_data_build_a_tls_context(tmp_path: pathlib.Path) -> None:
    ca = make_cert("ca", ca=True)
    client = make_cert("client", issuer=ca)
    path = write(
        tmp_path / "config",
        kubeconfig(
            user={"client-certificate-data": b64(client.cert), "client-key-data": b64(client.key)},
            cluster={"server": "https://k8s.example", "certificate-authority-data": b64(ca.cert)},
        ),
    )
    info = load_kubeconfig(path)
    assert info.client_cert_data == client.cert
    assert info.ca_data == ca.cert
    assert client.key.decode() not in repr(info)
    context = build_ssl_context(info)
    assert context.verify_mode.name == "CERT_REQUIRED"
    assert len(context.get_ca_certs()) == 1


def test_certificate_files_are_read_relative_to_the_kubeconfig(tmp_path: pathlib.Path) -> None:
    ca = make_cert("ca", ca=True)
    client = make_cert("client", issuer=ca)
    (tmp_path / "pki").mkdir()
    (tmp_path / "pki" / "ca.crt").write_bytes(ca.cert)
    (tmp_path / "pki" / "client.crt").write_bytes(client.cert)
    (tmp_path / "pki" / "client.key").write_bytes(client.key)
    path = write(
        tmp_path / "config",
        kubeconfig(
            user={"client-certificate": "pki/client.crt", "client-key": "pki/client.key"},
            cluster={"server": "https://k8s.example", "certificate-authority": "pki/ca.crt"},
        ),
    )
    info = load_kubeconfig(path)
    assert info.client_key_data == client.key
    assert info.ca_path == str(tmp_path / "pki" / "ca.crt")
    build_ssl_context(info)


def test_cluster_options_are_carried(tmp_path: pathlib.Path) -> None:
    cluster = {
        "server": "https://10.0.0.1:6443/",
        "insecure-skip-tls-verify": True,
        "tls-server-name": "kubernetes.default",
        "proxy-url": "http://proxy.local:3128",
    }
    info = load_kubeconfig(write(tmp_path / "config", kubeconfig(cluster=cluster)))
    assert info.server == "https://10.0.0.1:6443"
    assert info.insecure is True
    assert info.tls_server_name == "kubernetes.default"
    assert info.proxy_url == "http://proxy.local:3128"
    assert build_ssl_context(info).check_hostname is False


def test_kubeconfig_env_merges_files_first_definition_wins(
    tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = kubeconfig(user={"token": "from-first"}, current="main")
    second = kubeconfig(user={"token": "from-second"}, current="other")
    second["contexts"].append({"name": "other", "context": {"cluster": "c2", "user": "u2"}})
    second["clusters"].append({"name": "c2", "cluster": {"server": "https://two.example"}})
    second["users"].append({"name": "u2", "user": {"token": "two"}})
    a = write(tmp_path / "a.yaml", first)
    b = write(tmp_path / "b.yaml", second)
    missing = tmp_path / "missing.yaml"
    monkeypatch.setenv("KUBECONFIG", f"{a}:{missing}:{b}")
    info = load_kubeconfig()
    assert info.token == "from-first"  # u1 from the first file wins
    assert info.context == "main"  # the first current-context wins
    other = load_kubeconfig(context="other")
    assert other.server == "https://two.example"
    assert other.token == "two"


def test_in_cluster_service_account(tmp_path: pathlib.Path) -> None:
    ca = make_cert("ca", ca=True)
    (tmp_path / "token").write_text(SECRET)
    (tmp_path / "ca.crt").write_bytes(ca.cert)
    (tmp_path / "namespace").write_text("operators\n")
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    info = load_incluster(environ=env, secrets_dir=tmp_path)
    assert info.server == "https://10.96.0.1:443"
    assert info.namespace == "operators"
    assert info.token_path == str(tmp_path / "token")
    assert SECRET not in repr(info)
    ipv6 = load_incluster(
        environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
        secrets_dir=tmp_path,
    )
    assert ipv6.server == "https://[fd00::1]:443"


# --- misconfigurations: one clear message each ---------------------------------------------


def test_missing_kubeconfig_file_is_named(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match=r"cannot read kubeconfig .*nope\.yaml: No such file"):
        load_kubeconfig(tmp_path / "nope.yaml")


def test_invalid_yaml_is_reported_with_its_position(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "config"
    path.write_text("clusters: [\n  - name: a\n  bad: : :\n")
    with pytest.raises(ConfigError, match=r"is not valid YAML at line \d+"):
        load_kubeconfig(path)


def test_unknown_context_lists_the_known_ones(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig())
    with pytest.raises(ConfigError, match=r"context 'prod' is not in kubeconfig .*contexts: main"):
        load_kubeconfig(path, context="prod")


def test_no_current_context_is_reported(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(current=None))
    with pytest.raises(ConfigError, match="sets no current-context"):
        load_kubeconfig(path)


def test_context_with_unknown_cluster_or_user(tmp_path: pathlib.Path) -> None:
    doc = kubeconfig()
    doc["contexts"][0]["context"]["cluster"] = "ghost"
    with pytest.raises(ConfigError, match="unknown cluster 'ghost'"):
        load_kubeconfig(write(tmp_path / "a", doc))
    doc = kubeconfig()
    doc["contexts"][0]["context"]["user"] = "ghost"
    with pytest.raises(ConfigError, match="unknown user 'ghost'"):
        load_kubeconfig(write(tmp_path / "b", doc))


def test_cluster_without_server(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(cluster={"insecure-skip-tls-verify": True}))
    with pytest.raises(ConfigError, match=r"cluster 'c1' in .* has no server"):
        load_kubeconfig(path)


def test_unreadable_certificate_file_is_named(tmp_path: pathlib.Path) -> None:
    user = {"client-certificate": "missing.crt", "client-key": "missing.key"}
    path = write(tmp_path / "config", kubeconfig(user=user))
    with pytest.raises(ConfigError, match=r"client certificate of user 'u1' .*missing\.crt"):
        load_kubeconfig(path)


def test_certificate_without_key(tmp_path: pathlib.Path) -> None:
    client = make_cert()
    path = write(
        tmp_path / "config", kubeconfig(user={"client-certificate-data": b64(client.cert)})
    )
    with pytest.raises(ConfigError, match="without its client-key"):
        load_kubeconfig(path)


def test_garbage_certificate_fails_without_showing_the_key(tmp_path: pathlib.Path) -> None:
    user = {"client-certificate-data": b64(b"not a cert"), "client-key-data": b64(SECRET.encode())}
    info = load_kubeconfig(write(tmp_path / "config", kubeconfig(user=user)))
    with pytest.raises(ConfigError, match="client certificate and key of context 'main'") as err:
        build_ssl_context(info)
    assert SECRET not in str(err.value)


def test_garbage_certificate_authority(tmp_path: pathlib.Path) -> None:
    cluster = {"server": "https://x", "certificate-authority-data": b64(b"nonsense")}
    info = load_kubeconfig(write(tmp_path / "config", kubeconfig(cluster=cluster)))
    with pytest.raises(ConfigError, match="certificate authority of context 'main'"):
        build_ssl_context(info)


def test_missing_token_file_is_named(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(user={"tokenFile": "/no/such/token"}))
    with pytest.raises(ConfigError, match=r"token file of user 'u1' /no/such/token"):
        load_kubeconfig(path)


def test_server_must_be_a_url(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(cluster={"server": "k8s.example:6443"}))
    with pytest.raises(ConfigError, match="must start with http:// or https://"):
        load_kubeconfig(path)


def test_removed_auth_providers_point_to_exec_plugins(tmp_path: pathlib.Path) -> None:
    path = write(tmp_path / "config", kubeconfig(user={"auth-provider": {"name": "gcp"}}))
    with pytest.raises(ConfigError, match=r"auth-provider 'gcp'.*exec credential plugin"):
        load_kubeconfig(path)


def test_not_in_a_cluster(tmp_path: pathlib.Path) -> None:
    with pytest.raises(ConfigError, match="not running in a cluster"):
        load_incluster(environ={}, secrets_dir=tmp_path)


def test_in_cluster_without_token_file(tmp_path: pathlib.Path) -> None:
    env = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443"}
    with pytest.raises(ConfigError, match="service account token"):
        load_incluster(environ=env, secrets_dir=tmp_path)


def test_a_socks_proxy_is_refused_with_a_clear_message(tmp_path: pathlib.Path) -> None:
    cluster = {"server": "https://k8s.example", "proxy-url": "socks5://proxy:1080"}
    path = write(tmp_path / "config", kubeconfig(cluster=cluster))
    with pytest.raises(ConfigError, match="only http:// and https:// proxies work"):
        load_kubeconfig(path)
