"""Fixtures of the client tests: a client on the embedded API server and a test CRD."""

from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator
from typing import Any

import pytest

from trikopf.apiserver import ApiServer
from trikopf.client import ApiClient, ClientSettings, load_kubeconfig, open_client
from trikopf.structs import Resource

FAST = ClientSettings(backoff_base=0.01, backoff_max=0.05, rate_limit=float("inf"))


def crd(
    group: str = "kopf.dev", plural: str = "kopfexamples", kind: str = "KopfExample"
) -> dict[str, Any]:
    singular = kind.lower()
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {
                "plural": plural,
                "singular": singular,
                "kind": kind,
                "shortNames": ["kex"] if group == "kopf.dev" else [],
                "categories": ["kopf"],
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


@pytest.fixture
async def client(apiserver: ApiServer, tmp_path: pathlib.Path) -> AsyncIterator[ApiClient]:
    """A client from the embedded server's kubeconfig, retrying fast, not rate-limited."""
    path = apiserver.write_kubeconfig(tmp_path / "kubeconfig")
    async with open_client(load_kubeconfig(path), settings=FAST) as client:
        yield client


@pytest.fixture
async def kex(client: ApiClient) -> Resource:
    """The KopfExample resource, its CRD created through the client."""
    crds = await client.resolve("customresourcedefinitions")
    await client.create(crds, crd())
    return await client.resolve("kopfexamples")


def kex_body(name: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": name, "labels": {"app": "test"}},
        "spec": spec,
    }
