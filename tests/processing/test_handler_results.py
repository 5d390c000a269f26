"""What a handler may return: JSON's own types pass as they are, anything else is checked."""

from __future__ import annotations

import math
from typing import Any

import pytest

from trikopf.actions.execution import check_result
from trikopf.errors import HandlerResultError


@pytest.mark.parametrize(
    "result",
    [
        None,
        "text",
        7,
        1.5,
        True,
        {"handled": True, "nested": {"list": [1, "a", None, {"x": 2.5}]}},
        [1, 2, 3],
        (1, 2),  # not JSON's own type, but JSON can store it: a list
        {1: "int keys become strings"},
    ],
)
def test_results_that_can_be_stored_come_back_unchanged(result: Any) -> None:
    assert check_result("fn", result) is result


@pytest.mark.parametrize(
    "result",
    [
        object(),
        {"a": {"b": [1, object()]}},
        {"nan": math.nan},
        [math.inf],
        {("tuple", "key"): 1},
        {"a": {1, 2}},
    ],
)
def test_results_that_cannot_be_stored_fail_with_a_clear_message(result: Any) -> None:
    with pytest.raises(HandlerResultError, match=r"cannot be stored in status\.fn"):
        check_result("fn", result)


def test_deeply_nested_results_are_still_checked_in_full() -> None:
    deep: Any = 1
    for _ in range(100):
        deep = {"d": deep}
    assert check_result("fn", deep) is deep
    bad: Any = object()
    for _ in range(100):
        bad = {"d": bad}
    with pytest.raises(HandlerResultError):
        check_result("fn", bad)
