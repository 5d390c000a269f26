"""OpenAPI documents for kubectl (v2 JSON and protobuf, v3) and server-side field validation."""

from __future__ import annotations

import json
from typing import Any

import pytest

from trikopf.apiserver.openapi import (
    FieldValidationError,
    OpenApiResource,
    check_fields,
    handle_openapi,
    prune_unknown_fields,
    resource_schema,
    unknown_fields,
)

KEX_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "spec": {
            "type": "object",
            "properties": {
                "duration": {"type": "string"},
                "items": {
                    "type": "array",
                    "items": {"type": "object", "properties": {"name": {"type": "string"}}},
                },
                "labels": {"type": "object", "additionalProperties": {"type": "string"}},
                "free": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                "port": {
                    "x-kubernetes-int-or-string": True,
                    "anyOf": [{"type": "integer"}, {"type": "string"}],
                },
                "embedded": {
                    "type": "object",
                    "x-kubernetes-embedded-resource": True,
                    "properties": {"spec": {"type": "object"}},
                },
            },
        },
        "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
    },
}
KEX = OpenApiResource(
    group="kopf.dev",
    version="v1",
    kind="KopfExample",
    plural="kopfexamples",
    namespaced=True,
    schema=KEX_SCHEMA,
    subresources=frozenset({"status"}),
)
CONFIGMAPS = OpenApiResource(
    group="", version="v1", kind="ConfigMap", plural="configmaps", namespaced=True
)
NAMESPACES = OpenApiResource(
    group="", version="v1", kind="Namespace", plural="namespaces", namespaced=False
)
DEPLOYMENTS = OpenApiResource(
    group="apps", version="v1", kind="Deployment", plural="deployments", namespaced=True
)
RESOURCES = [CONFIGMAPS, NAMESPACES, DEPLOYMENTS, KEX]


def get_json(path: str, resources: list[OpenApiResource] = RESOURCES) -> Any:
    answer = handle_openapi(path, resources)
    assert answer is not None
    status, body, content_type = answer
    assert status == 200
    assert content_type == "application/json"
    return json.loads(body)


def test_non_openapi_paths_are_left_to_the_caller() -> None:
    assert handle_openapi("/api/v1", RESOURCES) is None
    assert handle_openapi("/apis", RESOURCES) is None


def test_unknown_documents_are_404_status_bodies() -> None:
    for path in ("/openapi/v3/apis/nope.dev/v1", "/openapi/v4"):
        answer = handle_openapi(path, RESOURCES)
        assert answer is not None
        status, body, _ = answer
        assert status == 404
        assert json.loads(body)["reason"] == "NotFound"


def test_v3_index_links_every_group_version_with_a_content_hash() -> None:
    index = get_json("/openapi/v3")
    assert set(index["paths"]) == {"api/v1", "apis/apps/v1", "apis/kopf.dev/v1"}
    url = index["paths"]["apis/kopf.dev/v1"]["serverRelativeURL"]
    assert url.startswith("/openapi/v3/apis/kopf.dev/v1?hash=")
    changed = OpenApiResource(
        group="kopf.dev",
        version="v1",
        kind="KopfExample",
        plural="kopfexamples",
        namespaced=True,
        schema={"type": "object"},
    )
    other = get_json("/openapi/v3", [CONFIGMAPS, NAMESPACES, DEPLOYMENTS, changed])
    assert other["paths"]["apis/kopf.dev/v1"]["serverRelativeURL"] != url
    assert (
        other["paths"]["api/v1"]["serverRelativeURL"]
        == index["paths"]["api/v1"]["serverRelativeURL"]
    )


def test_v3_document_describes_kinds_and_patch_operations_as_kubectl_reads_them() -> None:
    doc = get_json("/openapi/v3/apis/kopf.dev/v1?hash=ignored")
    schema = doc["components"]["schemas"]["dev.kopf.v1.KopfExample"]
    assert schema["x-kubernetes-group-version-kind"] == [
        {"group": "kopf.dev", "kind": "KopfExample", "version": "v1"}
    ]
    assert set(schema["properties"]) >= {"apiVersion", "kind", "metadata", "spec", "status"}
    assert "ownerReferences" in schema["properties"]["metadata"]["properties"]
    item = doc["paths"]["/apis/kopf.dev/v1/namespaces/{namespace}/kopfexamples/{name}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": "kopf.dev",
        "version": "v1",
        "kind": "KopfExample",
    }
    assert {"name": "fieldValidation", "in": "query"}.items() <= patch["parameters"][
        2
    ].items() or any(
        p["name"] == "fieldValidation" and p["in"] == "query" for p in patch["parameters"]
    )
    # kubectl computes apply patches from its own types: SMP is never offered.
    assert "application/strategic-merge-patch+json" not in patch["requestBody"]["content"]
    assert "application/merge-patch+json" in patch["requestBody"]["content"]
    assert "/apis/kopf.dev/v1/namespaces/{namespace}/kopfexamples/{name}/status" in doc["paths"]


def test_v3_document_of_the_core_group_holds_builtin_schemas() -> None:
    doc = get_json("/openapi/v3/api/v1")
    schema = doc["components"]["schemas"]["io.k8s.api.core.v1.ConfigMap"]
    assert schema["properties"]["data"]["additionalProperties"] == {"type": "string"}
    assert "/api/v1/namespaces" in doc["paths"]  # cluster-scoped collection
    assert "/api/v1/namespaces/{namespace}/configmaps" in doc["paths"]


def decode_protobuf(data: bytes) -> dict[int, list[Any]]:
    """A generic protobuf wire-format reader: field number -> raw values (bytes or ints)."""
    fields: dict[int, list[Any]] = {}
    pos = 0

    def varint() -> int:
        nonlocal pos
        shift = result = 0
        while True:
            byte = data[pos]
            pos += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return result

    while pos < len(data):
        key = varint()
        number, wire = key >> 3, key & 7
        if wire == 0:
            value: Any = varint()
        elif wire == 1:
            value = data[pos : pos + 8]
            pos += 8
        elif wire == 2:
            length = varint()
            value = data[pos : pos + length]
            pos += length
        else:
            raise AssertionError(f"unexpected wire type {wire}")
        fields.setdefault(number, []).append(value)
    return fields


def test_v2_protobuf_document_is_what_kubectl_1_27_parses() -> None:
    answer = handle_openapi(
        "/openapi/v2?timeout=32s",
        RESOURCES,
        accept="application/com.github.proto-openapi.spec.v2@v1.0+protobuf",
    )
    assert answer is not None
    status, body, content_type = answer
    assert status == 200
    assert content_type == "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
    document = decode_protobuf(body)
    assert document[1] == [b"2.0"]  # swagger
    definitions = decode_protobuf(document[9][0])
    names = {decode_protobuf(named)[1][0].decode() for named in definitions[1]}
    assert names == {
        "io.k8s.api.core.v1.ConfigMap",
        "io.k8s.api.core.v1.Namespace",
        "io.k8s.api.apps.v1.Deployment",
        "dev.kopf.v1.KopfExample",
    }
    paths = {}
    for named in decode_protobuf(document[8][0])[2]:
        item = decode_protobuf(named)
        paths[item[1][0].decode()] = decode_protobuf(item[2][0])
    patch = decode_protobuf(paths["/api/v1/namespaces/{name}"][8][0])  # PathItem.patch
    extensions = {}
    for named in patch[13]:
        ext = decode_protobuf(named)
        extensions[ext[1][0].decode()] = json.loads(decode_protobuf(ext[2][0])[2][0])
    assert extensions["x-kubernetes-group-version-kind"] == {
        "group": "",
        "version": "v1",
        "kind": "Namespace",
    }
    query_names = []
    for item in patch[8]:
        parameter = decode_protobuf(decode_protobuf(item)[1][0])
        if 2 in parameter:  # non-body
            sub = decode_protobuf(parameter[2][0])
            if 3 in sub:  # query parameter
                query_names.append(decode_protobuf(sub[3][0])[4][0].decode())
    assert "fieldValidation" in query_names
    assert 7 not in patch  # no "consumes": kubectl then falls back to its built-in patch logic


def test_v2_json_document_is_served_to_other_clients() -> None:
    doc = get_json("/openapi/v2")
    assert doc["swagger"] == "2.0"
    schema = doc["definitions"]["dev.kopf.v1.KopfExample"]
    port = schema["properties"]["spec"]["properties"]["port"]
    assert "anyOf" not in port  # v2 cannot say anyOf; the real server drops it too
    assert port["x-kubernetes-int-or-string"] is True


def test_unknown_fields_are_found_at_every_depth() -> None:
    obj = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": "a", "labels": {"x": "y"}, "bogus": 1},
        "spec": {
            "duration": "1m",
            "typo": 1,
            "items": [{"name": "a"}, {"name": "b", "extra": True}],
            "labels": {"any": "thing"},
            "free": {"anything": {"goes": 1}},
            "port": 80,
            "embedded": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "p"},
                "spec": {},
                "junk": 1,
            },
        },
        "status": {"whatever": 1},
        "toplevel": "x",
    }
    schema = resource_schema(KEX)
    assert unknown_fields(obj, schema) == [
        "metadata.bogus",
        "spec.typo",
        "spec.items[1].extra",
        "spec.embedded.junk",
        "toplevel",
    ]
    pruned = prune_unknown_fields(obj, schema)
    assert unknown_fields(pruned, schema) == []
    assert pruned["spec"]["free"] == {"anything": {"goes": 1}}
    assert "typo" not in pruned["spec"]
    assert obj["spec"]["typo"] == 1  # the input is untouched


def test_an_object_schema_without_properties_knows_no_fields() -> None:
    resource = OpenApiResource(
        group="kopf.dev",
        version="v1",
        kind="KopfExample",
        plural="kopfexamples",
        namespaced=True,
        schema={"type": "object", "properties": {"spec": {"type": "object"}}},
    )
    assert unknown_fields({"spec": {"a": 1}}, resource_schema(resource)) == ["spec.a"]


def test_field_validation_directives_behave_like_the_real_server() -> None:
    obj = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": "a"},
        "spec": {"typo": 1, "duration": "1m"},
    }
    assert check_fields(obj, KEX, "Warn") == ['unknown field "spec.typo"']
    assert check_fields(obj, KEX, None) == ['unknown field "spec.typo"']
    assert check_fields(obj, KEX, "Ignore") == []
    with pytest.raises(FieldValidationError) as excinfo:
        check_fields(obj, KEX, "Strict")
    assert excinfo.value.code == 400
    assert excinfo.value.message == (
        'KopfExample in version "v1" cannot be handled as a KopfExample: '
        'strict decoding error: unknown field "spec.typo"'
    )
    clean = {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": "a"},
        "spec": {},
    }
    assert check_fields(clean, KEX, "Strict") == []
    with pytest.raises(FieldValidationError, match="Unsupported value"):
        check_fields(clean, KEX, "Loose")


def test_builtin_kinds_validate_top_level_and_metadata_but_accept_deep_specs() -> None:
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "c"},
        "data": {"a": "b"},
        "dta": {},
    }
    with pytest.raises(FieldValidationError, match='unknown field "dta"'):
        check_fields(configmap, CONFIGMAPS, "Strict")
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {"template": {"spec": {"containers": [{"name": "c"}]}}},
    }
    assert check_fields(deployment, DEPLOYMENTS, "Strict") == []


def test_builtin_specs_describe_common_fields_for_explain_and_accept_the_rest() -> None:
    spec = resource_schema(DEPLOYMENTS)["properties"]["spec"]
    pod = spec["properties"]["template"]["properties"]["spec"]
    containers = pod["properties"]["containers"]
    assert containers["x-kubernetes-patch-merge-key"] == "name"
    assert "image" in containers["items"]["properties"]
    deployment = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 1,
            "template": {
                "metadata": {"labels": {"a": "b"}, "creationTimestamp": None},
                "spec": {
                    "containers": [{"name": "c", "image": "i", "livenessProbe": {}}],
                    "dnsPolicy": "x",
                },
            },
        },
    }
    assert check_fields(deployment, DEPLOYMENTS, "Strict") == []
    deployment["spec"]["template"]["metadata"]["lables"] = {}
    with pytest.raises(
        FieldValidationError, match=r'unknown field "spec\.template\.metadata\.lables"'
    ):
        check_fields(deployment, DEPLOYMENTS, "Strict")
