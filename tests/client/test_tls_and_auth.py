"""TLS with the cluster's own CA and bearer tokens, against the embedded server over HTTPS."""

from __future__ import annotations

import pathlib

import attrs
import pytest

from tests.client.certs import make_cert
from trikopf.apiserver import open_apiserver
from trikopf.client import (
    ApiConnectionError,
    ClientSettings,
    Unauthorized,
    load_incluster,
    load_kubeconfig,
    open_client,
)

SETTINGS = ClientSettings(retry_attempts=1, rate_limit=float("inf"))


async def test_https_with_the_kubeconfigs_ca_and_token(tmp_path: pathlib.Path) -> None:
    async with open_apiserver(tls=True, token="sesame") as server:
        info = load_kubeconfig(server.write_kubeconfig(tmp_path / "config"))
        assert info.server.startswith("https://")
        async with open_client(info, settings=SETTINGS) as client:
            ns = await client.resolve("namespaces")
            listed = await client.list(ns)
            assert "default" in [o["metadata"]["name"] for o in listed.items]
            async with client.watch(ns, timeout_seconds=1) as events:
                first = await events.__anext__()
            assert first.type == "ADDED"


async def test_a_foreign_ca_is_refused(tmp_path: pathlib.Path) -> None:
    other = make_cert("other-ca", ca=True)
    async with open_apiserver(tls=True) as server:
        info = load_kubeconfig(server.write_kubeconfig(tmp_path / "config"))
        info = attrs.evolve(info, ca_data=other.cert)
        async with open_client(info, settings=SETTINGS) as client:
            with pytest.raises(ApiConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                await client.request("GET", "/version")


async def test_a_wrong_token_is_unauthorized(tmp_path: pathlib.Path) -> None:
    async with open_apiserver(token="sesame") as server:
        info = attrs.evolve(load_kubeconfig(server.write_kubeconfig(tmp_path / "c")), token="nope")
        async with open_client(info, settings=SETTINGS) as client:
            with pytest.raises(Unauthorized) as err:
                await client.request("GET", "/api/v1/namespaces")
    assert "nope" not in str(err.value)


async def test_in_cluster_service_account_connects_over_https(tmp_path: pathlib.Path) -> None:
    async with open_apiserver(tls=True, token="sa-token") as server:
        assert server.ca_pem is not None
        (tmp_path / "ca.crt").write_bytes(server.ca_pem)
        (tmp_path / "token").write_text("sa-token\n")
        (tmp_path / "namespace").write_text("kube-system")
        env = {"KUBERNETES_SERVICE_HOST": "127.0.0.1", "KUBERNETES_SERVICE_PORT": str(server.port)}
        info = load_incluster(environ=env, secrets_dir=tmp_path)
        async with open_client(info, settings=SETTINGS) as client:
            assert client.default_namespace == "kube-system"
            ns = await client.get(await client.resolve("namespaces"), "kube-system")
            assert ns["metadata"]["name"] == "kube-system"


async def test_tls_server_name_is_the_name_verified(tmp_path: pathlib.Path) -> None:
    async with open_apiserver(tls=True) as server:
        info = load_kubeconfig(server.write_kubeconfig(tmp_path / "config"))
        # The server's certificate names localhost: verifying that name over 127.0.0.1 works.
        async with open_client(attrs.evolve(info, tls_server_name="localhost")) as client:
            namespaces = await client.resolve("namespaces")
            async with client.watch(namespaces, timeout_seconds=1) as events:
                assert (await events.__anext__()).type == "ADDED"
        wrong = attrs.evolve(info, tls_server_name="wrong.example")
        async with open_client(wrong, settings=SETTINGS) as client:
            with pytest.raises(ApiConnectionError, match=r"wrong\.example"):
                await client.request("GET", "/version")
            with pytest.raises(ApiConnectionError, match=r"wrong\.example"):
                async with client.watch(namespaces):
                    pass


async def test_secrets_never_appear_in_the_reprs_of_the_client_or_its_watches(
    tmp_path: pathlib.Path,
) -> None:
    async with open_apiserver(token="supersecret") as server:
        info = load_kubeconfig(server.write_kubeconfig(tmp_path / "config"))
        info = attrs.evolve(info, username="ann", password="pw-secret")
        async with open_client(info, settings=SETTINGS) as client:
            namespaces = await client.resolve("namespaces")
            async with client.watch(namespaces, timeout_seconds=1) as events:
                for text in (repr(info), repr(client), repr(events)):
                    assert "supersecret" not in text
                    assert "pw-secret" not in text
