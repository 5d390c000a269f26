from __future__ import annotations

from typing import Any

from trikopf.causes import essence_of, same_essence

PREFIX = "trikopf.dev"


def _body(**meta: Any) -> dict[str, Any]:
    spec = meta.pop("spec", {"size": 1})
    status = meta.pop("status", {})
    return {"apiVersion": "v1", "kind": "X", "metadata": meta, "spec": spec, "status": status}


CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    (_body(), _body()),
    (_body(), _body(spec={"size": 2})),
    (_body(), _body(status={"done": True}, resourceVersion="9")),
    (_body(), _body(labels={})),
    (_body(labels={"a": "1"}), _body(labels={"a": "2"})),
    (_body(), _body(annotations={f"{PREFIX}/progress": "x"})),
    (_body(), _body(annotations={"kubectl.kubernetes.io/last-applied-configuration": "{}"})),
    (_body(), _body(annotations={"team": "x"})),
    (_body(annotations={"team": "x"}), _body(annotations={"team": "x", f"{PREFIX}/a": "b"})),
    (_body(), {**_body(), "data": {"k": "v"}}),
    ({**_body(), "data": None}, _body()),
]


def test_same_essence_agrees_with_comparing_essences() -> None:
    for a, b in CASES:
        expected = essence_of(a, prefix=PREFIX) == essence_of(b, prefix=PREFIX)
        assert same_essence(a, b, prefix=PREFIX) is expected, (a, b)
        assert same_essence(b, a, prefix=PREFIX) is expected, (b, a)
    # The cases cover both answers.
    answers = {same_essence(a, b, prefix=PREFIX) for a, b in CASES}
    assert answers == {True, False}
