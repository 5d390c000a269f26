"""Bearer-token auth and TLS with a CA generated at start and carried in the kubeconfig."""

from __future__ import annotations

import base64
import pathlib
import ssl

import anyio
import httpx
import pytest
import yaml
from anyio.streams.tls import TLSAttribute

from tests.apiserver.watching import open_watch
from trikopf.apiserver import open_apiserver


async def test_token_is_required_when_configured() -> None:
    async with open_apiserver(token="s3cret") as server:
        async with httpx.AsyncClient(base_url=server.url) as anonymous:
            for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "s3cret"}):
                response = await anonymous.get("/api/v1/namespaces", headers=headers)
                assert response.status_code == 401
                status = response.json()
                assert status["kind"] == "Status"
                assert status["reason"] == "Unauthorized"
                assert status["code"] == 401
        headers = {"Authorization": "Bearer s3cret"}
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as client:
            assert (await client.get("/api/v1/namespaces")).status_code == 200
            assert (await client.get("/healthz")).status_code == 200
        user = server.kubeconfig["users"][0]["user"]
        assert user == {"token": "s3cret"}


async def test_tls_server_is_verified_with_the_ca_from_its_kubeconfig(
    tmp_path: pathlib.Path,
) -> None:
    async with open_apiserver(tls=True, token="t") as server:
        assert server.url.startswith("https://127.0.0.1:")
        path = server.write_kubeconfig(tmp_path / "config")
        config = yaml.safe_load(path.read_text())
        cluster = config["clusters"][0]["cluster"]
        assert cluster["server"] == server.url
        ca = base64.b64decode(cluster["certificate-authority-data"]).decode()
        context = ssl.create_default_context(cadata=ca)
        headers = {"Authorization": "Bearer t"}
        async with httpx.AsyncClient(
            base_url=server.url, verify=context, headers=headers
        ) as client:
            response = await client.post(
                "/api/v1/namespaces/default/configmaps", json={"metadata": {"name": "tls"}}
            )
            assert response.status_code == 201
            async with open_watch(
                client, "/api/v1/namespaces/default/configmaps", ssl_context=context
            ) as events:
                event = await events.next()
                assert event["object"]["metadata"]["name"] == "tls"
                await client.delete("/api/v1/namespaces/default/configmaps/tls")
                assert (await events.next())["type"] == "DELETED"
        # A client that does not trust the generated CA is refused.
        async with httpx.AsyncClient(base_url=server.url, headers=headers) as untrusting:
            with pytest.raises(httpx.ConnectError):
                await untrusting.get("/api")


async def test_tls_offers_only_http_1_1_in_alpn() -> None:
    async with open_apiserver(tls=True) as server:
        assert server.ca_pem is not None
        context = ssl.create_default_context(cadata=server.ca_pem.decode())
        context.set_alpn_protocols(["h2", "http/1.1"])
        async with await anyio.connect_tcp(
            "127.0.0.1", server.port, ssl_context=context, tls_standard_compatible=False
        ) as stream:
            assert stream.extra(TLSAttribute.alpn_protocol) == "http/1.1"
