"""Defaults from a CRD's schema are applied to custom resources on every write."""

from __future__ import annotations

from typing import Any

import httpx

from tests.apiserver.crds import CRDS
from trikopf.apiserver.defaulting import apply_defaults

SCHEMA = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "default": {},
            "properties": {
                "duration": {"type": "string", "default": "1m"},
                "replicas": {"type": "integer", "default": 1},
                "ports": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {"protocol": {"type": "string", "default": "TCP"}},
                    },
                },
                "extra": {
                    "type": "object",
                    "properties": {"x": {"type": "string", "default": "y"}},
                },
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}


def test_defaults_fill_missing_fields_of_existing_parents() -> None:
    obj = {"spec": {"replicas": 3, "ports": [{"port": 80}, {"protocol": "UDP"}]}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"] == {
        "replicas": 3,
        "duration": "1m",
        "ports": [{"port": 80, "protocol": "TCP"}, {"protocol": "UDP"}],
    }


def test_defaulted_parents_get_their_childrens_defaults() -> None:
    obj: dict = {"metadata": {"name": "x"}}
    apply_defaults(obj, SCHEMA)
    assert obj["spec"] == {"duration": "1m", "replicas": 1}
    assert obj["metadata"] == {"name": "x"}


async def test_custom_resources_are_defaulted_on_create_and_patch(
    client: httpx.AsyncClient,
) -> None:
    crd = {
        "metadata": {"name": "widgets.example.com"},
        "spec": {
            "group": "example.com",
            "scope": "Namespaced",
            "names": {"plural": "widgets", "kind": "Widget"},
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {"openAPIV3Schema": SCHEMA},
                    "subresources": {"status": {}},
                }
            ],
        },
    }
    assert (await client.post(CRDS, json=crd)).status_code == 201
    base = "/apis/example.com/v1/namespaces/default/widgets"
    created = await client.post(
        base, json={"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}}
    )
    assert created.status_code == 201, created.text
    assert created.json()["spec"] == {"duration": "1m", "replicas": 1}
    patched = await client.patch(
        f"{base}/w",
        json={"spec": {"duration": None, "extra": {}}},
        headers={"Content-Type": "application/merge-patch+json"},
    )
    assert patched.json()["spec"] == {"duration": "1m", "replicas": 1, "extra": {"x": "y"}}


def test_builtin_workloads_get_their_kinds_defaults_and_keep_what_is_set() -> None:
    from trikopf.apiserver.defaulting import builtin_defaults

    template = {"spec": {"containers": [{"name": "c", "image": "app@sha256:abc"}]}}
    stateful: dict[str, Any] = {"spec": {"replicas": 3, "template": template}}
    builtin_defaults(("apps", "statefulsets"), stateful)
    assert stateful["spec"]["replicas"] == 3
    assert stateful["spec"]["updateStrategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"partition": 0},
    }
    assert stateful["spec"]["podManagementPolicy"] == "OrderedReady"
    container = stateful["spec"]["template"]["spec"]["containers"][0]
    assert container["imagePullPolicy"] == "IfNotPresent"  # pinned by digest
    daemons: dict[str, Any] = {"spec": {"updateStrategy": {"type": "OnDelete"}}}
    builtin_defaults(("apps", "daemonsets"), daemons)
    assert daemons["spec"]["updateStrategy"] == {"type": "OnDelete"}
    cron: dict[str, Any] = {"spec": {"schedule": "* * * * *", "jobTemplate": {"spec": {}}}}
    builtin_defaults(("batch", "cronjobs"), cron)
    assert cron["spec"]["concurrencyPolicy"] == "Allow"
    assert cron["spec"]["jobTemplate"]["spec"]["backoffLimit"] == 6
    sticky: dict[str, Any] = {"spec": {"sessionAffinity": "ClientIP", "ports": [{"port": 80}]}}
    builtin_defaults(("", "services"), sticky)
    assert sticky["spec"]["sessionAffinityConfig"] == {"clientIP": {"timeoutSeconds": 10800}}
    assert sticky["spec"]["ports"] == [{"port": 80, "protocol": "TCP", "targetPort": 80}]
    untouched: dict[str, Any] = {"data": {"a": "1"}}
    builtin_defaults(("", "configmaps"), untouched)
    assert untouched == {"data": {"a": "1"}}
