"""CRD bodies shared by the apiserver tests."""

from __future__ import annotations

from typing import Any

import httpx

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
KEX = "/apis/kopf.dev/v1/namespaces/default/kopfexamples"


def kopfexample_crd(
    *,
    scope: str = "Namespaced",
    status: bool = True,
    versions: tuple[str, ...] = ("v1",),
    plural: str = "kopfexamples",
    kind: str = "KopfExample",
) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.kopf.dev"},
        "spec": {
            "group": "kopf.dev",
            "scope": scope,
            "names": {
                "plural": plural,
                "singular": kind.lower(),
                "kind": kind,
                "shortNames": ["kex", "kexs"],
                "categories": ["all"],
            },
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": i == 0,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                    **({"subresources": {"status": {}}} if status else {}),
                    "additionalPrinterColumns": [
                        {"name": "Duration", "type": "string", "jsonPath": ".spec.duration"}
                    ],
                }
                for i, version in enumerate(versions)
            ],
        },
    }


async def create_crd(client: httpx.AsyncClient, **kwargs: Any) -> dict[str, Any]:
    response = await client.post(CRDS, json=kopfexample_crd(**kwargs))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body
