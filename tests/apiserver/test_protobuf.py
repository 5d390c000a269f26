"""Kubernetes protobuf request bodies (as kubectl >= 1.31 sends them) decoded to JSON objects."""

from __future__ import annotations

import pytest

from trikopf.apiserver.protobuf import ProtobufError, decode_object

# Captured from kubectl 1.32: `kubectl create cm settings --from-literal=color=blue
# --from-literal=empty=` and `kubectl create deployment web --image=nginx:1.27 --port=80
# --replicas=0 -- sleep 10`.
CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d617012340a180a0873657474696e677312001a0022002a"
    "00320038004200120d0a05636f6c6f721204626c756512090a05656d70747912001a002200"
)
DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412c8010a1f0a0377656212001a0022"
    "002a003200380042005a0a0a0361707012037765621296010800120c0a0a0a0361707012037765621a7c"
    "0a1c0a0012001a0022002a003200380042005a0a0a036170701203776562125c123e0a056e67696e7812"
    "0a6e67696e783a312e32371a05736c6565701a0231302a00320a0a001000185022002a0042006a007200"
    "800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a"
    "00280038001a0c0800100018002000280038001a002200"
)


def test_a_configmap_body_decodes_to_the_object_kubectl_meant() -> None:
    assert decode_object(CONFIGMAP) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "settings"},
        "data": {"color": "blue", "empty": ""},
    }


def test_a_deployment_body_keeps_pointer_zeroes_and_drops_empty_scalars() -> None:
    assert decode_object(DEPLOYMENT) == {
        "kind": "Deployment",
        "apiVersion": "apps/v1",
        "metadata": {"name": "web", "labels": {"app": "web"}},
        "spec": {
            "replicas": 0,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "containers": [
                        {
                            "name": "nginx",
                            "image": "nginx:1.27",
                            "command": ["sleep", "10"],
                            "ports": [{"containerPort": 80}],
                            "resources": {},
                        }
                    ]
                },
            },
            "strategy": {},
        },
        "status": {},
    }


def envelope(api_version: bytes, kind: bytes, raw: bytes) -> bytes:
    def field(number: int, payload: bytes) -> bytes:
        return bytes([number << 3 | 2, len(payload)]) + payload

    return b"k8s\x00" + field(1, field(1, api_version) + field(2, kind)) + field(2, raw)


def test_secret_bytes_become_base64_as_in_json() -> None:
    entry = b"\x0a\x01k\x12\x03\x00\xff\x01"  # key "k", value bytes 00 ff 01
    raw = b"\x12" + bytes([len(entry)]) + entry + b"\x1a\x06Opaque"
    assert decode_object(envelope(b"v1", b"Secret", raw)) == {
        "kind": "Secret",
        "apiVersion": "v1",
        "data": {"k": "AP8B"},
        "type": "Opaque",
    }


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"kind": "ConfigMap"}', "magic bytes"),
        (envelope(b"v1", b"Pod", b""), "protobuf bodies of Pod (v1) are not supported"),
        (envelope(b"v1", b"ConfigMap", b"\xf8\x07\x05"), "field number 127 is not supported"),
        (envelope(b"v1", b"ConfigMap", b"\x12\x05\x0a\x01"), "truncated"),
        (envelope(b"v1", b"ConfigMap", b"\x0a\x02\x0a\xff"), "truncated"),
        (envelope(b"v1", b"ConfigMap", b"\x0a\x03\x0a\x01\xff"), "invalid UTF-8"),
        (envelope(b"v1", b"ConfigMap", b"\x10\x01"), "unexpected wire type"),
    ],
)
def test_bodies_it_cannot_decode_faithfully_are_refused(body: bytes, fragment: str) -> None:
    with pytest.raises(ProtobufError) as excinfo:
        decode_object(body)
    assert fragment in str(excinfo.value)


def test_unknown_fields_holding_only_go_zero_values_are_ignored() -> None:
    # Go writes every non-pointer field; an unknown empty one carries nothing to lose.
    raw = b"\x0a\x03\x0a\x01x" + b"\xf8\x07\x00" + b"\x82\x08\x00"
    assert decode_object(envelope(b"v1", b"ConfigMap", raw)) == {
        "kind": "ConfigMap",
        "apiVersion": "v1",
        "metadata": {"name": "x"},
    }
