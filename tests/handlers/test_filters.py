from __future__ import annotations

from typing import Any

import pytest

import trikopf
from trikopf.registry import ResourceHandler

BODY = {
    "metadata": {"labels": {"app": "web", "tier": "front"}, "annotations": {"note": "x"}},
    "spec": {"size": 3},
}


def fn(**_: Any) -> None:
    pass


def passes(**options: Any) -> bool:
    registry = trikopf.OperatorRegistry()
    trikopf.on.create("kopfexamples", registry=registry, **options)(fn)
    handler: ResourceHandler = registry.changing_handlers[0]
    return handler.passes_filters(BODY, {"body": BODY, "spec": BODY["spec"]})


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"labels": {"app": "web"}}, True),
        ({"labels": {"app": "db"}}, False),
        ({"labels": {"app": trikopf.PRESENT}}, True),
        ({"labels": {"missing": trikopf.PRESENT}}, False),
        ({"labels": {"missing": trikopf.ABSENT}}, True),
        ({"labels": {"app": trikopf.ABSENT}}, False),
        ({"labels": {"app": lambda value, **_: value.startswith("w")}}, True),
        ({"labels": {"app": "web", "tier": "back"}}, False),
        ({"annotations": {"note": "x"}}, True),
        ({"annotations": {"note": "y"}}, False),
        ({"field": "spec.size", "value": 3}, True),
        ({"field": "spec.size", "value": 4}, False),
        ({"field": "spec.size", "value": trikopf.PRESENT}, True),
        ({"field": "spec.other", "value": trikopf.ABSENT}, True),
        ({"field": "spec.size", "value": lambda v, **_: v > 2}, True),
        ({"when": lambda spec, **_: spec["size"] > 5}, False),
        ({"when": lambda body, **_: body is BODY}, True),
    ],
)
def test_filters_decide_whether_a_handler_applies(options: Any, expected: bool) -> None:
    assert passes(**options) is expected
