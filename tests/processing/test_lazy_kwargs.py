"""The keyword arguments of raw event handlers make the body's views only when read."""

from __future__ import annotations

import datetime
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from trikopf.actions.invocation import (
    CALL_NAMES,
    BodyKwargs,
    build_kwargs,
    fill_body,
    invoke,
    invoke_event_handler,
    kwargs_table,
)
from trikopf.bodies import Body, Patch


class Recording(Mapping[str, Any]):
    """A raw body that remembers which of its keys were read."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.read: list[str] = []

    def __getitem__(self, key: str) -> Any:
        self.read.append(key)
        return self.data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)


RAW = {
    "apiVersion": "kopf.dev/v1",
    "kind": "KopfExample",
    "metadata": {"name": "obj", "namespace": "ns", "uid": "u1", "labels": {"a": "1"}},
    "spec": {"size": 1},
    "status": {"ok": True},
}


def _values(raw: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "patch": Patch(),
        "logger": None,
        "memo": None,
        "resource": None,
        "param": None,
        "reason": None,
        "diff": None,
        "old": None,
        "new": None,
        "retry": 0,
        "started": None,
        "runtime": datetime.timedelta(0),
        "event": {"type": "ADDED", "object": raw},
        "type": "ADDED",
    }


def test_lazy_kwargs_hold_what_build_kwargs_builds() -> None:
    values = _values(RAW)
    lazy = BodyKwargs(RAW, dict(values))
    eager = build_kwargs(
        body=Body(RAW),
        patch=values["patch"],
        logger=None,
        memo=None,
        resource=None,
        event=values["event"],
        type="ADDED",
    )
    assert dict(lazy) == eager
    assert list(lazy) == list(eager)
    assert lazy.as_dict() == eager
    assert list(lazy.as_dict()) == list(eager)
    assert len(lazy) == len(eager)
    assert lazy["labels"] == {"a": "1"}
    assert lazy["name"] == "obj"


def eager_kwargs(raw: dict[str, Any], patch: Patch, *, param: int, event: Any) -> dict[str, Any]:
    """What ``build_kwargs`` makes of ``raw`` for an ADDED event with the tests' constants."""
    return build_kwargs(
        body=Body(raw),
        patch=patch,
        logger="a logger",
        memo="a memo",
        resource="a resource",
        param=param,
        event=event,
        type="ADDED",
    )


@pytest.mark.parametrize("raw", [RAW, {"kind": "KopfExample"}], ids=["full", "no-metadata"])
def test_a_filled_copy_of_the_table_holds_what_build_kwargs_builds(raw: dict[str, Any]) -> None:
    patch = Patch()
    table = kwargs_table(memo="a memo", resource="a resource", event=None, type=None)
    first = table.copy()
    body = fill_body(first, raw)
    first.update(patch=patch, logger="a logger", param=3, event={"object": raw}, type="ADDED")
    eager = eager_kwargs(raw, patch, param=3, event={"object": raw})
    assert body.raw is raw
    assert first == eager
    assert list(first) == list(eager) == [*CALL_NAMES, "event", "type"]
    # The table itself is untouched: the next event's copy starts from the constants.
    assert table["body"] is None
    assert table["patch"] is None
    assert table["memo"] == "a memo"


@pytest.mark.parametrize("raw", [RAW, {"kind": "KopfExample"}], ids=["full", "no-metadata"])
async def test_an_event_handler_called_with_keywords_gets_what_build_kwargs_builds(
    raw: dict[str, Any],
) -> None:
    got: dict[str, Any] = {}

    async def handler(**kwargs: Any) -> str:
        got.update(kwargs)
        return "result"

    patch = Patch()
    result = await invoke_event_handler(
        handler, raw, "ADDED", patch, "a logger", "a memo", "a resource", 7
    )
    eager = eager_kwargs(raw, patch, param=7, event={"type": "ADDED", "object": raw})
    assert result == "result"
    assert got == eager
    assert list(got) == list(eager)


async def test_a_handler_that_takes_only_the_event_makes_no_views() -> None:
    raw = Recording(RAW)
    kwargs = BodyKwargs(raw, _values(raw))
    seen: list[Any] = []

    async def fn(event: Any) -> None:
        seen.append(event["type"])

    await invoke(fn, kwargs, thread_limit=1)
    assert seen == ["ADDED"]
    assert raw.read == []

    async def wants_spec(spec: Any) -> None:
        seen.append(dict(spec))

    await invoke(wants_spec, kwargs, thread_limit=1)
    assert seen == ["ADDED", {"size": 1}]
    assert raw.read  # the views were made for it

    async def takes_all(**kwargs: Any) -> None:
        seen.append(sorted(kwargs))

    await invoke(takes_all, kwargs, thread_limit=1)
    assert seen[-1] == sorted(kwargs)


def test_lazy_kwargs_take_new_values_and_refuse_to_drop_body_names() -> None:
    kwargs = BodyKwargs(RAW, _values(RAW))
    kwargs["param"] = 7
    kwargs["spec"] = {"size": 2}
    assert kwargs["param"] == 7
    assert kwargs["spec"] == {"size": 2}
    assert "body" in kwargs
    assert "event" in kwargs
    assert "nothing" not in kwargs
    with pytest.raises(KeyError):
        kwargs["nothing"]
    with pytest.raises(KeyError, match="made from the body"):
        del kwargs["body"]
    del kwargs["param"]
    assert "param" not in kwargs
