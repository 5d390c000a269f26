"""Calling one handler: its keyword arguments, sync functions in bounded threads, async in-task.

Handlers receive the kwargs they name (or all of them with ``**kwargs``): ``body``, ``spec``,
``meta``, ``status``, ``name``, ``namespace``, ``uid``, ``labels``, ``annotations``, ``patch``,
``logger``, ``reason``, ``diff``, ``old``, ``new``, ``retry``, ``started``, ``runtime``,
``memo``, ``resource``, ``param`` (and ``event``/``type`` for event handlers). A ``spec``
parameter annotated with an attrs class receives the spec structured into that class.
"""

from __future__ import annotations

import contextvars
import datetime
import functools
import inspect
import sys
import typing
from collections.abc import Callable, Coroutine, Iterator, Mapping, MutableMapping
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import attrs

from trikopf.bodies import Annotations, Body, Labels, Meta, Spec, Status
from trikopf.errors import PermanentError
from trikopf.hierarchies import current_owner
from trikopf.structs import SpecError, structure_spec

__all__ = [
    "CALL_NAMES",
    "BodyKwargs",
    "HandlerSignature",
    "begin_call",
    "build_kwargs",
    "end_call",
    "fill_body",
    "invoke",
    "invoke_event_handler",
    "invoke_prepared",
    "kwargs_table",
    "raise_if_asyncio_under_trio",
    "signature_of",
    "thread_limiter",
]

_LIMITERS: anyio.lowlevel.RunVar[dict[int, anyio.CapacityLimiter]] = anyio.lowlevel.RunVar(
    "trikopf_thread_limiters"
)


def thread_limiter(limit: int) -> anyio.CapacityLimiter:
    """The limiter of sync handler threads of this event loop (one per limit value)."""
    try:
        limiters = _LIMITERS.get()
    except LookupError:
        limiters = {}
        _LIMITERS.set(limiters)
    limiter = limiters.get(limit)
    if limiter is None:
        limiter = limiters[limit] = anyio.CapacityLimiter(limit)
    return limiter


@attrs.frozen
class HandlerSignature:
    """What :func:`invoke` needs to know of a handler: resolved once, by :func:`signature_of`.

    ``takes_all``: it has ``**kwargs``; ``names``: the keyword names it accepts;
    ``spec_class``: the attrs class its ``spec`` is annotated with (``None``: a plain mapping).
    """

    is_async: bool
    takes_all: bool
    names: frozenset[str]
    spec_class: type | None


def signature_of(fn: Callable[..., Any]) -> HandlerSignature:
    """The handler's :class:`HandlerSignature` (cached per function); synchronous, no I/O.

    Callers on a hot path resolve it once and pass it to :func:`invoke_prepared`.
    """
    try:
        return _analyse(fn)
    except TypeError:  # an unhashable callable: not cached
        return _analyse.__wrapped__(fn)


@functools.lru_cache(maxsize=1024)
def _analyse(fn: Callable[..., Any]) -> HandlerSignature:
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(
        getattr(fn, "__call__", None)  # noqa: B004 - callable objects with an async __call__
    )
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return HandlerSignature(is_async, True, frozenset(), None)
    takes_all = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = frozenset(
        name
        for name, p in params.items()
        if p.kind in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    )
    spec_class: type | None = None
    if "spec" in params:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable annotations: fall back to the plain mapping
            hints = {}
        hint = hints.get("spec")
        if isinstance(hint, type) and attrs.has(hint):
            spec_class = hint
    return HandlerSignature(is_async, takes_all, names, spec_class)


def _is_asyncio_under_trio(exc: BaseException) -> bool:
    """Whether ``exc`` is what asyncio calls raise inside a Trio task."""
    text = str(exc)
    if "no running event loop" not in text and "unrecognized yield message" not in text:
        return False
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


_NO_TIME = datetime.timedelta(0)  # immutable: one for every call without a start time


def build_kwargs(
    *,
    body: Any,
    patch: Any,
    logger: Any,
    memo: Any,
    resource: Any,
    param: Any = None,
    reason: str | None = None,
    diff: Any = None,
    old: Any = None,
    new: Any = None,
    retry: int = 0,
    started: float | None = None,
    now: float | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The full set of keyword arguments for a handler call (``body`` is a :class:`Body`)."""
    meta = body.metadata
    started_dt = (
        datetime.datetime.fromtimestamp(started, tz=datetime.timezone.utc)
        if started is not None
        else None
    )
    runtime = (
        datetime.timedelta(seconds=max(0.0, now - started))
        if started is not None and now is not None
        else _NO_TIME
    )
    kwargs = {
        "body": body,
        "spec": body.spec,
        "meta": meta,
        "metadata": meta,
        "status": body.status,
        "name": meta.name,
        "namespace": meta.namespace,
        "uid": meta.uid,
        "labels": meta.labels,
        "annotations": meta.annotations,
        "patch": patch,
        "logger": logger,
        "memo": memo,
        "resource": resource,
        "param": param,
        "reason": reason,
        "diff": diff,
        "old": old,
        "new": new,
        "retry": retry,
        "started": started_dt,
        "runtime": runtime,
    }
    kwargs.update(extra)
    return kwargs


def fill_body(kwargs: dict[str, Any], raw: Mapping[str, Any], body: Body | None = None) -> Body:
    """Set the body's entries of a handler call's kwargs (``body``, ``spec``, ``meta``, ``labels``,
    ...) from the raw object, as :func:`build_kwargs` makes them through the views' properties;
    returns the ``body`` view (``body``: one already made for ``raw``). Synchronous, no I/O.

    The one place these names are made for the raw paths (``on.event`` calls, lazy kwargs): it
    runs for every watch event of a ``**kwargs`` event handler, so it reads ``raw`` directly.
    """
    meta_raw = raw.get("metadata") or _NOTHING
    meta = Meta(meta_raw)
    if body is None:
        body = Body(raw)
    kwargs["body"] = body
    kwargs["spec"] = Spec(raw.get("spec"))
    kwargs["meta"] = meta
    kwargs["metadata"] = meta
    kwargs["status"] = Status(raw.get("status"))
    kwargs["name"] = meta_raw.get("name")
    kwargs["namespace"] = meta_raw.get("namespace")
    kwargs["uid"] = meta_raw.get("uid")
    kwargs["labels"] = Labels(meta_raw.get("labels"))
    kwargs["annotations"] = Annotations(meta_raw.get("annotations"))
    return body


def kwargs_table(**constant: Any) -> dict[str, Any]:
    """Every name of a handler call (:data:`CALL_NAMES`, then the ``constant`` ones not among
    them, such as ``event`` and ``type``), with its value when nothing sets it, ``constant``
    applied. Synchronous.

    A hot path makes it once (per resource) and, per call, copies it and completes the copy
    (:func:`fill_body`, then ``patch``, ``logger``, ...): the copy of a dict that never had a
    key removed is one block copy, and the names stay in one order for every caller.
    """
    table: dict[str, Any] = dict.fromkeys(CALL_NAMES)
    table["retry"] = 0
    table["runtime"] = _NO_TIME
    table.update(constant)
    return table


_NOTHING: Mapping[str, Any] = {}


_BODY_NAMES = (
    "body",
    "spec",
    "meta",
    "metadata",
    "status",
    "name",
    "namespace",
    "uid",
    "labels",
    "annotations",
)
_BODY_KEYS = frozenset(_BODY_NAMES)
CALL_NAMES = (
    *_BODY_NAMES,
    "patch",
    "logger",
    "memo",
    "resource",
    "param",
    "reason",
    "diff",
    "old",
    "new",
    "retry",
    "started",
    "runtime",
)
"""The names of every handler call's kwargs, in the order a ``**kwargs`` handler sees them."""


class BodyKwargs(MutableMapping[str, Any]):
    """Handler kwargs whose body-derived values (``body``, ``spec``, ``meta``, ``labels``, ...)
    are made only when something reads one of them, then all at once and kept.

    The other values are given as a plain dict (``values``) and can be set or replaced like in a
    dict. One instance serves all the handlers of one event; :func:`invoke` reads only the names
    a handler's signature has, so a handler that takes ``event`` alone makes no views at all.
    Iteration yields the same names as :func:`build_kwargs` gives (body names first).
    """

    __slots__ = ("_body", "_raw", "_values", "_views")

    def __init__(self, raw: Mapping[str, Any], values: dict[str, Any]) -> None:
        self._raw = raw
        self._values = values
        self._body: Body | None = None
        self._views: dict[str, Any] | None = None

    def body(self) -> Body:
        """The ``body`` view alone (it reads nothing of the object until it is used)."""
        if self._views is not None:
            return self._views["body"]  # type: ignore[no-any-return]
        body = self._body
        if body is None:
            body = self._body = Body(self._raw)
        return body

    def as_dict(self) -> dict[str, Any]:
        """All the kwargs as a new plain dict (the views made if they were not yet)."""
        views = self._views
        if views is None:
            # Made for this one call, not kept: a copy is what the caller gets anyway.
            every: dict[str, Any] = {}
            fill_body(every, self._raw, self.body())
            every.update(self._values)
            return every
        return {**views, **self._values}

    def _make_views(self) -> dict[str, Any]:
        views: dict[str, Any] = {}
        fill_body(views, self._raw, self.body())
        self._views = views
        return views

    def __getitem__(self, key: str) -> Any:
        if key in _BODY_KEYS:
            views = self._views
            if views is None:
                views = self._make_views()
            return views[key]
        return self._values[key]

    def __contains__(self, key: object) -> bool:
        return key in _BODY_KEYS or key in self._values

    def __setitem__(self, key: str, value: Any) -> None:
        if key in _BODY_KEYS:
            views = self._views
            if views is None:
                views = self._make_views()
            views[key] = value
        else:
            self._values[key] = value

    def __delitem__(self, key: str) -> None:
        if key in _BODY_KEYS:
            raise KeyError(f"{key!r} is made from the body and cannot be removed")
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        yield from _BODY_NAMES
        yield from self._values

    def __len__(self) -> int:
        return len(_BODY_NAMES) + len(self._values)


def invoke(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    thread_limit: int,
) -> Coroutine[Any, Any, Any]:
    """Call ``fn`` with the kwargs it accepts; await the result to run it and get its result.

    Async functions run in the awaiting task. Sync functions run in a worker thread, at most
    ``thread_limit`` at a time per event loop; when the caller is cancelled (a timeout, the
    operator stopping) the call returns at once and the thread is left to finish on its own,
    its result ignored (threads cannot be interrupted).

    Not a coroutine function itself: it picks the kwargs now and returns the call's coroutine,
    so that a handler that waits for a long time (a daemon) has one frame less above it.
    """
    sig = signature_of(fn)
    call_kwargs, owner = _pick_kwargs(sig, kwargs)
    return invoke_prepared(fn, sig, call_kwargs, owner=owner, thread_limit=thread_limit)


def _pick_kwargs(sig: HandlerSignature, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], Any]:
    """The keyword arguments ``sig`` takes from ``kwargs``, and the default owner of the call."""
    if sig.takes_all:
        call_kwargs = kwargs.as_dict() if isinstance(kwargs, BodyKwargs) else dict(kwargs)
    else:
        # Only the named values are read: a lazy mapping (BodyKwargs) makes no others.
        call_kwargs = {k: kwargs[k] for k in sig.names if k in kwargs}
    # trikopf.adopt() & co. take the running handler's object as the default owner: the
    # handler's own ``body`` if it takes one (no second view of a live body).
    owner = call_kwargs.get("body")
    if owner is None:
        owner = kwargs.body() if isinstance(kwargs, BodyKwargs) else kwargs.get("body")
    return call_kwargs, owner


def begin_call(
    fn: Callable[..., Any],
    kwargs: Mapping[str, Any],
    *,
    thread_limit: int,
) -> tuple[Coroutine[Any, Any, Any], contextvars.Token[Any] | None]:
    """:func:`invoke` in two halves, for a caller that awaits the call in its own frame.

    Returns the call's coroutine (not yet run) and the token of the owner it set; the caller
    awaits the coroutine in the same task, passes any ``RuntimeError``/``TypeError`` of it to
    :func:`raise_if_asyncio_under_trio`, and then, in a ``finally``, hands the token to
    :func:`end_call`. An async handler is then called with no frame of ours between the
    caller and the handler (a daemon waits in it for its whole life).
    """
    sig = signature_of(fn)
    if not sig.is_async or sig.spec_class is not None:
        return invoke(fn, kwargs, thread_limit=thread_limit), None
    call_kwargs, owner = _pick_kwargs(sig, kwargs)
    token = current_owner.set(owner) if owner is not None else None
    try:
        return fn(**call_kwargs), token
    except BaseException:
        end_call(token)
        raise


def end_call(token: contextvars.Token[Any] | None) -> None:
    """Undo what :func:`begin_call` set (call it once the call has ended, in the same task)."""
    if token is not None:
        current_owner.reset(token)


def raise_if_asyncio_under_trio(fn: Callable[..., Any], exc: BaseException) -> None:
    """Turn ``exc`` into a clear :class:`PermanentError` if it is asyncio failing under Trio."""
    _raise_if_asyncio_under_trio(fn, exc)


async def invoke_prepared(
    fn: Callable[..., Any],
    sig: HandlerSignature,
    call_kwargs: dict[str, Any],
    *,
    owner: Mapping[str, Any] | None,
    thread_limit: int,
) -> Any:
    """:func:`invoke` for a caller that resolved ``sig`` once and chose the kwargs itself.

    ``call_kwargs`` are exactly the keyword arguments ``fn`` gets (this call may replace a
    ``spec`` in it with the structured one); ``owner`` is the object that ``trikopf.adopt()``
    and co. default to while the handler runs. Same concurrency contract as :func:`invoke`.
    """
    token = current_owner.set(owner) if owner is not None else None
    try:
        if sig.is_async and sig.spec_class is None:
            # The common case in place, without one more coroutine per call; the dict is
            # dropped once the call is made (the function has its own arguments), so that a
            # handler that waits long does not keep a second copy of them alive.
            try:
                call = fn(**call_kwargs)
                del call_kwargs
                return await call
            except (RuntimeError, TypeError) as exc:
                _raise_if_asyncio_under_trio(fn, exc)
                raise
        return await _call(fn, sig, call_kwargs, thread_limit=thread_limit)
    finally:
        if token is not None:
            current_owner.reset(token)


async def _call(
    fn: Callable[..., Any], sig: HandlerSignature, call_kwargs: dict[str, Any], *, thread_limit: int
) -> Any:
    if sig.spec_class is not None and "spec" in call_kwargs:
        try:
            call_kwargs["spec"] = structure_spec(dict(call_kwargs["spec"]), sig.spec_class)
        except SpecError as exc:
            raise PermanentError(f"The spec does not fit {sig.spec_class.__name__}: {exc}") from exc
    if sig.is_async:
        try:
            return await fn(**call_kwargs)
        except (RuntimeError, TypeError) as exc:
            _raise_if_asyncio_under_trio(fn, exc)
            raise
    return await anyio.to_thread.run_sync(
        functools.partial(fn, **call_kwargs),
        limiter=thread_limiter(thread_limit),
        abandon_on_cancel=True,
    )


async def invoke_event_handler(
    fn: Callable[..., Any],
    raw: Mapping[str, Any],
    kind: str | None,
    patch: Any,
    logger: Any,
    memo: Any,
    resource: Any,
    param: Any,
) -> Any:
    """Call an async ``on.event`` handler that takes ``**kwargs`` with every kwarg of the event.

    The same names and values as :func:`invoke` gives such a handler from :class:`BodyKwargs`
    (and so as :func:`build_kwargs`), from :func:`kwargs_table` and :func:`fill_body` (a hot
    path keeps the table and calls the handler itself, as ``processing`` does). For handlers whose
    :func:`signature_of` is async, takes all and has no typed spec; this runs for every watch
    event. Runs the handler in the calling task and returns its result.
    """
    kwargs = kwargs_table(
        patch=patch,
        logger=logger,
        memo=memo,
        resource=resource,
        param=param,
        event={"type": kind, "object": raw},
        type=kind,
    )
    token = current_owner.set(fill_body(kwargs, raw))
    try:
        return await fn(**kwargs)
    except (RuntimeError, TypeError) as exc:
        _raise_if_asyncio_under_trio(fn, exc)
        raise
    finally:
        current_owner.reset(token)


def _raise_if_asyncio_under_trio(fn: Callable[..., Any], exc: BaseException) -> None:
    if _is_asyncio_under_trio(exc):
        name = getattr(fn, "__qualname__", None) or repr(fn)
        raise PermanentError(
            f"{name} uses asyncio, but the operator runs on Trio: run it with "
            "`python -m trikopf --backend asyncio ...` (or trikopf.run(..., "
            "backend='asyncio')), or make the handler use anyio or trio"
        ) from exc
