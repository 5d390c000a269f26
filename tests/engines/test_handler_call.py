"""Calling an async handler from execute_handler: its owner while it runs, its errors."""

from __future__ import annotations

import logging
from typing import Any

from trikopf.actions.execution import Defaults, execute_handler
from trikopf.actions.invocation import build_kwargs
from trikopf.actions.progress import HandlerState
from trikopf.bodies import Body, Patch
from trikopf.errors import ErrorsMode
from trikopf.hierarchies import current_owner
from trikopf.registry import BaseHandler

_LOGGER = logging.LoggerAdapter(logging.getLogger("test-handler-call"), {})


def _kwargs() -> dict[str, Any]:
    raw = {"metadata": {"name": "obj", "namespace": "ns", "uid": "uid-1"}, "spec": {"a": 1}}
    return build_kwargs(body=Body(raw), patch=Patch(), logger=_LOGGER, memo=None, resource=None)


def _base(fn: Any) -> BaseHandler:
    return BaseHandler(fn=fn, id=fn.__name__)


async def _execute(fn: Any, kwargs: dict[str, Any] | None = None, **defaults: Any) -> Any:
    """One call of ``fn`` as a handler just started, with ``defaults`` as its options."""
    return await execute_handler(
        _base(fn),
        HandlerState(started=0.0),
        _kwargs() if kwargs is None else kwargs,
        now=0.0,
        defaults=Defaults(**defaults),
        logger=_LOGGER,
    )


async def test_an_async_handler_runs_with_its_body_as_the_owner_and_returns_its_result() -> None:
    seen: list[Any] = []

    async def handler(body: Any, spec: Any, **_: Any) -> dict[str, Any]:
        seen.append(current_owner.get())
        seen.append(body)
        return {"a": spec["a"], "names": sorted(_)[:2]}

    kwargs = _kwargs()
    outcome = await _execute(handler, kwargs)
    assert outcome.exception is None
    assert outcome.state.done
    assert outcome.result == {"a": 1, "names": ["annotations", "diff"]}
    assert seen[0] is seen[1] is kwargs["body"]
    assert current_owner.get() is None  # reset once the call has ended


async def test_an_async_handler_that_takes_what_it_names_only_gets_those() -> None:
    async def handler(name: str, retry: int) -> str:
        return f"{name}/{retry}"

    outcome = await _execute(handler)
    assert outcome.result == "obj/0"
    assert current_owner.get() is None


async def test_an_async_handler_that_fails_is_retried_and_its_owner_is_reset() -> None:
    async def handler(**_: Any) -> None:
        assert current_owner.get() is not None
        raise ValueError("boom")

    outcome = await _execute(handler, backoff=7.0)
    assert isinstance(outcome.exception, ValueError)
    assert outcome.delay == 7.0
    assert outcome.state.retries == 1
    assert current_owner.get() is None


async def test_a_type_error_of_an_async_handler_is_its_own_error() -> None:
    async def handler(**_: Any) -> None:
        raise TypeError("a handler's own TypeError")

    outcome = await _execute(handler, errors=ErrorsMode.PERMANENT)
    assert isinstance(outcome.exception, TypeError)
    assert outcome.state.failed
    assert current_owner.get() is None
