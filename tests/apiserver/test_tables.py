"""Server-side Tables for kubectl get: Accept negotiation, columns, JSONPath, rows."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from trikopf.apiserver.tables import (
    JsonPathError,
    evaluate_jsonpath,
    human_duration,
    render_table,
    table_version,
    wants_table,
)

NOW = datetime.datetime(2026, 1, 2, 12, 0, 0, tzinfo=datetime.timezone.utc)
KUBECTL_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,"
    "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
)


def kex(name: str, *, created: str = "2026-01-02T11:55:00Z", **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": "kopf.dev/v1",
        "kind": "KopfExample",
        "metadata": {"name": name, "namespace": "default", "creationTimestamp": created},
        "spec": spec,
        "status": {
            "conditions": [
                {"type": "Ready", "status": "True"},
                {"type": "Synced", "status": "False"},
            ]
        },
    }


@pytest.mark.parametrize(
    ("accept", "version"),
    [
        (KUBECTL_ACCEPT, "meta.k8s.io/v1"),
        ("application/json;as=Table;v=v1beta1;g=meta.k8s.io", "meta.k8s.io/v1beta1"),
        ("application/json; as=Table; g=meta.k8s.io; v=v1", "meta.k8s.io/v1"),
        ("application/json", None),
        ("application/json;as=Table;v=v2;g=meta.k8s.io", None),
        ("application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io", None),
        ("", None),
        (None, None),
    ],
)
def test_table_is_served_only_when_the_accept_header_asks_for_it(
    accept: str | None, version: str | None
) -> None:
    assert table_version(accept) == version
    assert wants_table(accept) is (version is not None)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (-5, "<invalid>"),
        (-0.5, "0s"),
        (5, "5s"),
        (119, "119s"),
        (200, "3m20s"),
        (600, "10m"),
        (3 * 3600 + 5 * 60, "3h5m"),
        (10 * 3600, "10h"),
        (3 * 86400 + 3600, "3d1h"),
        (30 * 86400, "30d"),
        (3 * 365 * 86400 + 86400, "3y1d"),
        (10 * 365 * 86400, "10y"),
    ],
)
def test_ages_read_like_kubectl(seconds: float, text: str) -> None:
    assert human_duration(seconds) == text


def test_jsonpath_evaluates_fields_indexes_wildcards_and_filters() -> None:
    obj = kex("a", duration="1m", items=[{"n": 1}, {"n": 2}])
    obj["metadata"]["labels"] = {"app.kubernetes.io/name": "x"}
    assert evaluate_jsonpath(obj, ".spec.duration") == ["1m"]
    assert evaluate_jsonpath(obj, "{.spec.duration}") == ["1m"]
    assert evaluate_jsonpath(obj, ".spec.items[1].n") == [2]
    assert evaluate_jsonpath(obj, ".spec.items[-1].n") == [2]
    assert evaluate_jsonpath(obj, ".spec.items[*].n") == [1, 2]
    assert evaluate_jsonpath(obj, ".spec.items[0:1].n") == [1]
    assert evaluate_jsonpath(obj, '.status.conditions[?(@.type=="Ready")].status') == ["True"]
    assert evaluate_jsonpath(obj, ".status.conditions[?(@.type!='Ready')].type") == ["Synced"]
    assert evaluate_jsonpath(obj, ".spec.items[?(@.n==2)].n") == [2]
    assert evaluate_jsonpath(obj, ".metadata.labels['app.kubernetes.io/name']") == ["x"]
    assert evaluate_jsonpath(obj, r".metadata.labels.app\.kubernetes\.io/name") == ["x"]
    assert evaluate_jsonpath(obj, ".spec.missing.deeper") == []
    assert evaluate_jsonpath(obj, ".spec.items[7]") == []


@pytest.mark.parametrize("path", ["spec.x", ".spec[", ".spec.items[x]", ".a[?(@.b ~ 1)]"])
def test_jsonpath_rejects_what_it_cannot_parse(path: str) -> None:
    with pytest.raises(JsonPathError):
        evaluate_jsonpath({}, path)


PRINTER_COLUMNS = [
    {"name": "Duration", "type": "string", "jsonPath": ".spec.duration", "description": "How long"},
    {"name": "Children", "type": "integer", "jsonPath": ".spec.children"},
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
    },
    {"name": "Field", "type": "string", "jsonPath": ".spec.field", "priority": 1},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def test_custom_resources_get_their_printer_columns() -> None:
    table = render_table(
        [kex("a", duration="1m", children=3, field="x"), kex("b")],
        kind_is_list=True,
        printer_columns=PRINTER_COLUMNS,
        resource_version="42",
        continue_="token",
        now=NOW,
    )
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"] == {"resourceVersion": "42", "continue": "token"}
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names == ["Name", "Duration", "Children", "Ready", "Field", "Age"]
    assert table["columnDefinitions"][0]["format"] == "name"
    assert table["columnDefinitions"][1]["description"] == "How long"
    assert table["columnDefinitions"][4]["priority"] == 1
    assert table["rows"][0]["cells"] == ["a", "1m", 3, "True", "x", "5m"]
    assert table["rows"][1]["cells"] == ["b", None, None, "True", None, "5m"]


def test_typed_cells_are_none_when_the_value_has_the_wrong_type() -> None:
    columns = [
        {"name": "I", "type": "integer", "jsonPath": ".spec.i"},
        {"name": "N", "type": "number", "jsonPath": ".spec.n"},
        {"name": "B", "type": "boolean", "jsonPath": ".spec.b"},
        {"name": "S", "type": "string", "jsonPath": ".spec.s"},
    ]
    good = render_table(
        [kex("a", i=2.0, n=1.5, b=True, s={"k": [1]})],
        kind_is_list=True,
        printer_columns=columns,
        resource_version="1",
        continue_=None,
        now=NOW,
    )
    assert good["rows"][0]["cells"] == ["a", 2, 1.5, True, '{"k":[1]}']
    bad = render_table(
        [kex("a", i="x", n=True, b="yes", s=False)],
        kind_is_list=True,
        printer_columns=columns,
        resource_version="1",
        continue_=None,
        now=NOW,
    )
    assert bad["rows"][0]["cells"] == ["a", None, None, None, "false"]


def test_kinds_without_columns_get_name_and_age() -> None:
    table = render_table(
        [kex("a")],
        kind_is_list=False,
        printer_columns=[],
        resource_version="7",
        continue_="ignored",
        now=NOW,
    )
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Age"]
    assert table["columnDefinitions"][1]["type"] == "date"
    assert table["rows"][0]["cells"] == ["a", "5m"]
    assert table["metadata"] == {"resourceVersion": "7"}


def test_rows_carry_partial_metadata_the_full_object_or_nothing() -> None:
    obj = kex("a")
    partial = render_table(
        [obj], kind_is_list=True, printer_columns=[], resource_version="1", continue_=None
    )
    assert partial["rows"][0]["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": obj["metadata"],
    }
    full = render_table(
        [obj],
        kind_is_list=True,
        printer_columns=[],
        resource_version="1",
        continue_=None,
        include_object="Object",
    )
    assert full["rows"][0]["object"] == obj
    bare = render_table(
        [obj],
        kind_is_list=True,
        printer_columns=[],
        resource_version="1",
        continue_=None,
        include_object="None",
    )
    assert "object" not in bare["rows"][0]
    with pytest.raises(ValueError, match="includeObject"):
        render_table(
            [obj],
            kind_is_list=True,
            printer_columns=[],
            resource_version="1",
            continue_=None,
            include_object="Everything",
        )


def builtin_table(group: str, kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The list Table of one object of a built-in kind (its familiar columns), as of ``NOW``."""
    return render_table(
        [obj],
        kind_is_list=True,
        printer_columns=None,
        resource_version="1",
        continue_=None,
        group=group,
        kind=kind,
        now=NOW,
    )


def test_pods_show_readiness_status_and_restarts() -> None:
    pod = {
        "metadata": {"name": "web-1", "creationTimestamp": "2026-01-02T11:00:00Z"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}], "nodeName": "n1"},
        "status": {
            "phase": "Running",
            "podIP": "10.0.0.1",
            "containerStatuses": [
                {"ready": True, "restartCount": 2},
                {"ready": False, "restartCount": 1},
            ],
        },
    }
    table = builtin_table("", "Pod", pod)
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:5] == ["Name", "Ready", "Status", "Restarts", "Age"]
    assert table["rows"][0]["cells"][:7] == [
        "web-1",
        "1/2",
        "Running",
        "3",
        "60m",
        "10.0.0.1",
        "n1",
    ]
    pod["metadata"]["deletionTimestamp"] = "2026-01-02T11:59:00Z"
    terminating = builtin_table("", "Pod", pod)
    assert terminating["rows"][0]["cells"][2] == "Terminating"


def test_builtin_kinds_show_their_familiar_columns() -> None:
    def cells(group: str, kind: str, obj: dict[str, Any]) -> list[Any]:
        obj.setdefault("metadata", {}).setdefault("creationTimestamp", "2026-01-02T11:59:30Z")
        return list(builtin_table(group, kind, obj)["rows"][0]["cells"])

    assert cells("", "ConfigMap", {"metadata": {"name": "c"}, "data": {"a": "1", "b": "2"}}) == [
        "c",
        2,
        "30s",
    ]
    assert cells("", "Namespace", {"metadata": {"name": "ns"}, "status": {"phase": "Active"}}) == [
        "ns",
        "Active",
        "30s",
    ]
    deployment = {
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"app": "d"}},
            "template": {"spec": {"containers": [{"name": "c", "image": "img:1"}]}},
        },
        "status": {"readyReplicas": 2, "updatedReplicas": 3, "availableReplicas": 2},
    }
    assert cells("apps", "Deployment", deployment) == [
        "d",
        "2/3",
        3,
        2,
        "30s",
        "c",
        "img:1",
        "app=d",
    ]
    event = {
        "metadata": {"name": "e"},
        "type": "Normal",
        "reason": "Created",
        "message": "made it ",
        "involvedObject": {"kind": "KopfExample", "name": "kex-1"},
        "lastTimestamp": "2026-01-02T11:58:00Z",
        "count": 2,
        "source": {"component": "trikopf"},
    }
    assert cells("", "Event", event) == [
        "2m",
        "Normal",
        "Created",
        "kopfexample/kex-1",
        "made it",
        "trikopf",
        2,
        "e",
    ]
    crd = {"metadata": {"name": "kopfexamples.kopf.dev"}}
    assert cells("apiextensions.k8s.io", "CustomResourceDefinition", crd) == [
        "kopfexamples.kopf.dev",
        "2026-01-02T11:59:30Z",
    ]
    lease = {"metadata": {"name": "l"}, "spec": {"holderIdentity": "me"}}
    assert cells("coordination.k8s.io", "Lease", lease) == ["l", "me", "30s"]


def test_a_malformed_object_yields_empty_cells_not_an_error() -> None:
    pod = {
        "metadata": {"name": "p"},
        "spec": {"containers": "oops"},
        "status": {"containerStatuses": [{"restartCount": "x"}]},
    }
    table = builtin_table("", "Pod", pod)
    assert table["rows"][0]["cells"][0] == "p"
    assert table["rows"][0]["cells"][3] is None


def test_date_columns_render_ages_and_flag_bad_timestamps() -> None:
    columns = [{"name": "Started", "type": "date", "jsonPath": ".spec.started"}]
    cells = [
        render_table(
            [kex("a", started=value)],
            kind_is_list=True,
            printer_columns=columns,
            resource_version="1",
            continue_=None,
            now=NOW,
        )["rows"][0]["cells"][1]
        for value in ("2026-01-02T10:00:00Z", "yesterday", 5)
    ]
    assert cells == ["120m", "<invalid>", None]


def test_watch_events_carry_one_row_tables_with_headers_only_first() -> None:
    from trikopf.apiserver.tables import tabulate_watch_line

    def render(obj: dict[str, Any]) -> dict[str, Any]:
        return render_table(
            [obj],
            kind_is_list=False,
            printer_columns=[],
            resource_version="1",
            continue_=None,
            now=NOW,
        )

    obj = kex("a")
    obj["metadata"]["resourceVersion"] = "17"
    line = json.dumps({"type": "MODIFIED", "object": obj}).encode() + b"\n"
    first = json.loads(tabulate_watch_line(line, render, headers=True))
    assert first["type"] == "MODIFIED"
    assert first["object"]["kind"] == "Table"
    assert [c["name"] for c in first["object"]["columnDefinitions"]] == ["Name", "Age"]
    assert first["object"]["rows"][0]["cells"] == ["a", "5m"]
    assert first["object"]["metadata"] == {"resourceVersion": "17"}
    later = json.loads(tabulate_watch_line(line, render, headers=False))
    assert later["object"]["columnDefinitions"] == []
    assert later["object"]["rows"][0]["cells"] == ["a", "5m"]
    bookmark = (
        b'{"type":"BOOKMARK","object":{"kind":"KopfExample","metadata":{"resourceVersion":"9"}}}\n'
    )
    assert tabulate_watch_line(bookmark, render, headers=True) == bookmark
