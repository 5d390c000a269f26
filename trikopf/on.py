"""The decorators that register handlers: ``@trikopf.on.create("kopfexamples")`` and friends.

Each decorator builds a handler spec, adds it to a registry (the default one unless
``registry=`` is given) and returns the function unchanged, so it stays callable and testable.
Registering starts nothing: the handlers run once :func:`trikopf.operate` runs the registry.

Resource selection (all decorators of object handlers)::

    @trikopf.on.create("kopfexamples")                     # plural, kind, singular or short name
    @trikopf.on.create("kopfexamples.kopf.dev")            # plural.group
    @trikopf.on.create("kopf.dev", "v1", "kopfexamples")   # group, version, name
    @trikopf.on.create("kopf.dev/v1", "kopfexamples")      # apiVersion, name
    @trikopf.on.create("v1", "pods")                       # the core group
    @trikopf.on.create(kind="KopfExample", group="kopf.dev")
    @trikopf.on.create(category="all")
    @trikopf.on.event(trikopf.EVERYTHING)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from trikopf.causes import Reason
from trikopf.diffs import parse_field
from trikopf.errors import ErrorsMode
from trikopf.filters import MetaFilter, validate_meta_filter
from trikopf.registry import (
    Activity,
    ActivityHandler,
    ChangingHandler,
    DaemonHandler,
    Everything,
    OperatorRegistry,
    ResourceSelector,
    TimerHandler,
    WatchingHandler,
    get_default_registry,
)

__all__ = [
    "cleanup",
    "create",
    "daemon",
    "delete",
    "event",
    "field",
    "login",
    "probe",
    "resume",
    "startup",
    "timer",
    "update",
]

F = TypeVar("F", bound=Callable[..., Any])
Field = str | Sequence[str] | None
When = Callable[..., bool] | None


def _fn_id(fn: Callable[..., Any], id: str | None, field: tuple[str, ...] = ()) -> str:
    if id is not None:
        if not isinstance(id, str) or not id:
            raise TypeError(f"id= must be a non-empty string, got {id!r}")
        return id
    # The plain name, as users read it in status and Events; a clash is refused at registration.
    base = getattr(fn, "__name__", None) or repr(fn)
    return f"{base}/{'.'.join(field)}" if field else base


def _non_negative(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ValueError(f"{name}= must be zero or positive seconds, got {value!r}")


def _check_options(
    *,
    errors: ErrorsMode | None,
    timeout: float | None,
    retries: int | None,
    backoff: float | None,
) -> None:
    if errors is not None and not isinstance(errors, ErrorsMode):
        raise TypeError(f"errors= must be a trikopf.ErrorsMode, got {errors!r}")
    for name, value in (("timeout", timeout), ("backoff", backoff)):
        if value is not None:
            _non_negative(name, value)
    if retries is not None and (
        isinstance(retries, bool) or not isinstance(retries, int) or retries < 1
    ):
        raise ValueError(f"retries= must be a positive number of attempts, got {retries!r}")


def _check_fn(fn: Any, decorator: str) -> None:
    if not callable(fn):
        raise TypeError(f"@trikopf.on.{decorator} decorates a function, got {fn!r}")


def _selector(
    resource: tuple[str | Everything, ...],
    *,
    group: str | None,
    version: str | None,
    kind: str | None,
    plural: str | None,
    singular: str | None,
    shortcut: str | None,
    category: str | None,
) -> ResourceSelector:
    return ResourceSelector.parse(
        *resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category,
    )  # fmt: skip


_VALUE_NEEDS_FIELD = "value= filters a field: give field= too"
_CHANGE_NEEDS_FIELD = "value=/old=/new= filter a field: give field= too"


def _filters(
    *,
    labels: MetaFilter | None,
    annotations: MetaFilter | None,
    field: Field,
    when: When,
    field_filters: tuple[Any, ...],
    needs_field: str = _VALUE_NEEDS_FIELD,
) -> tuple[str, ...]:
    """Check the filters that object handlers share; return the parsed ``field`` path."""
    validate_meta_filter("labels", labels)
    validate_meta_filter("annotations", annotations)
    path = parse_field(field)
    if any(v is not None for v in field_filters) and not path:
        raise TypeError(needs_field)
    if when is not None and not callable(when):
        raise TypeError(f"when= must be a callable, got {when!r}")
    return path


def _registering(
    name: str,
    registry: OperatorRegistry | None,
    build: Callable[[Callable[..., Any]], Any],
) -> Callable[[F], F]:
    """Return a decorator that checks ``fn``, registers ``build(fn)`` and returns ``fn``.

    The registry is resolved now (the default one unless given), the spec built at decoration.
    """
    target = registry if registry is not None else get_default_registry()

    def decorator(fn: F) -> F:
        _check_fn(fn, name)
        target.register(build(fn))
        return fn

    return decorator


def _changing(
    reason: Reason | None,
    resource: tuple[str | Everything, ...],
    *,
    group: str | None,
    version: str | None,
    kind: str | None,
    plural: str | None,
    singular: str | None,
    shortcut: str | None,
    category: str | None,
    id: str | None,
    param: Any,
    errors: ErrorsMode | None,
    timeout: float | None,
    retries: int | None,
    backoff: float | None,
    registry: OperatorRegistry | None,
    labels: MetaFilter | None,
    annotations: MetaFilter | None,
    when: When,
    field: Field,
    value: Any,
    old: Any = None,
    new: Any = None,
    deleted: bool = False,
    optional: bool = False,
    name: str,
) -> Callable[[F], F]:
    selector = _selector(
        resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category,
    )  # fmt: skip
    _check_options(errors=errors, timeout=timeout, retries=retries, backoff=backoff)
    path = _filters(
        labels=labels, annotations=annotations, field=field, when=when,
        field_filters=(value, old, new), needs_field=_CHANGE_NEEDS_FIELD,
    )  # fmt: skip
    return _registering(
        name,
        registry,
        lambda fn: ChangingHandler(
            fn=fn, id=_fn_id(fn, id, path), param=param, errors=errors, timeout=timeout,
            retries=retries, backoff=backoff, selector=selector, labels=labels,
            annotations=annotations, when=when, field=path, value=value, reason=reason,
            old=old, new=new, deleted=deleted, optional=optional,
        ),
    )  # fmt: skip


def create(
    *resource: str | Everything,
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    field: Field = None,
    value: Any = None,
) -> Callable[[F], F]:
    """Call the function once when an object is created (no essence of it stored yet).

    Retried until it succeeds, fails permanently, or runs out of ``retries``/``timeout``.
    """
    return _changing(
        Reason.CREATE, resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category, id=id, param=param,
        errors=errors, timeout=timeout, retries=retries, backoff=backoff, registry=registry,
        labels=labels, annotations=annotations, when=when, field=field, value=value,
        name="create",
    )  # fmt: skip


def update(
    *resource: str | Everything,
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    field: Field = None,
    value: Any = None,
    old: Any = None,
    new: Any = None,
) -> Callable[[F], F]:
    """Call the function when the object's essence changes; ``diff``/``old``/``new`` say how.

    With ``field=``, only when that field changed (and ``diff``/``old``/``new`` are that field's).
    """
    return _changing(
        Reason.UPDATE, resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category, id=id, param=param,
        errors=errors, timeout=timeout, retries=retries, backoff=backoff, registry=registry,
        labels=labels, annotations=annotations, when=when, field=field, value=value,
        old=old, new=new, name="update",
    )  # fmt: skip


def delete(
    *resource: str | Everything,
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    field: Field = None,
    value: Any = None,
    optional: bool = False,
) -> Callable[[F], F]:
    """Call the function when the object is being deleted, before it goes away.

    A finalizer is put on matching objects so that the deletion waits for the handler; it is
    removed once every delete handler has succeeded. ``optional=True`` adds no finalizer: the
    handler runs only if something else holds the deletion (our finalizer for other handlers).
    """
    return _changing(
        Reason.DELETE, resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category, id=id, param=param,
        errors=errors, timeout=timeout, retries=retries, backoff=backoff, registry=registry,
        labels=labels, annotations=annotations, when=when, field=field, value=value,
        optional=optional, name="delete",
    )  # fmt: skip


def resume(
    *resource: str | Everything,
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    field: Field = None,
    value: Any = None,
    deleted: bool = False,
) -> Callable[[F], F]:
    """Call the function when this operator process sees an already handled object first.

    That is on startup for existing objects (with or without changes made while it was down),
    not for objects created while it runs; an object that the first list finds but that was
    never handled gets its create handlers and then these, as in Kopf. ``deleted=True``
    includes objects being deleted.
    """
    return _changing(
        Reason.RESUME, resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category, id=id, param=param,
        errors=errors, timeout=timeout, retries=retries, backoff=backoff, registry=registry,
        labels=labels, annotations=annotations, when=when, field=field, value=value,
        deleted=deleted, name="resume",
    )  # fmt: skip


def field(
    *resource: str | Everything,
    field: str | Sequence[str],
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    value: Any = None,
    old: Any = None,
    new: Any = None,
) -> Callable[[F], F]:
    """Call the function when ``field`` gets a value on creation or changes on an update.

    ``diff``, ``old`` and ``new`` are the field's own; the handler id is ``fn/field.path``.
    """
    if field is None:
        raise TypeError("@trikopf.on.field needs field=")
    return _changing(
        None, resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category, id=id, param=param,
        errors=errors, timeout=timeout, retries=retries, backoff=backoff, registry=registry,
        labels=labels, annotations=annotations, when=when, field=field, value=value,
        old=old, new=new, name="field",
    )  # fmt: skip


def event(
    *resource: str | Everything,
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    field: Field = None,
    value: Any = None,
) -> Callable[[F], F]:
    """Call the function for every watch event of matching objects (``event=`` kwarg too).

    Fire and forget: no retries, no progress, errors are logged; it runs before the change
    handlers of the same event.
    """
    selector = _selector(
        resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category,
    )  # fmt: skip
    path = _filters(
        labels=labels, annotations=annotations, field=field, when=when, field_filters=(value,)
    )  # fmt: skip
    return _registering(
        "event",
        registry,
        lambda fn: WatchingHandler(
            fn=fn, id=_fn_id(fn, id, path), param=param, selector=selector, labels=labels,
            annotations=annotations, when=when, field=path, value=value,
        ),
    )  # fmt: skip


def daemon(
    *resource: str | Everything,
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    initial_delay: float | None = None,
    cancellation_backoff: float | None = None,
    cancellation_timeout: float | None = None,
    cancellation_polling: float | None = None,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    field: Field = None,
    value: Any = None,
) -> Callable[[F], F]:
    """Run the function as a long-lived task for each matching object while it exists.

    The task lives in the object's nursery: it starts after ``initial_delay``, and is cancelled
    when the object is deleted or stops matching (first asked to stop, then cancelled after
    ``cancellation_timeout``).
    """
    selector = _selector(
        resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category,
    )  # fmt: skip
    _check_options(errors=errors, timeout=timeout, retries=retries, backoff=backoff)
    for name, v in (
        ("initial_delay", initial_delay),
        ("cancellation_backoff", cancellation_backoff),
        ("cancellation_timeout", cancellation_timeout),
        ("cancellation_polling", cancellation_polling),
    ):
        if v is not None:
            _non_negative(name, v)
    path = _filters(
        labels=labels, annotations=annotations, field=field, when=when, field_filters=(value,)
    )
    return _registering(
        "daemon",
        registry,
        lambda fn: DaemonHandler(
            fn=fn, id=_fn_id(fn, id, path), param=param, errors=errors, timeout=timeout,
            retries=retries, backoff=backoff, selector=selector, labels=labels,
            annotations=annotations, when=when, field=path, value=value,
            initial_delay=initial_delay, cancellation_backoff=cancellation_backoff,
            cancellation_timeout=cancellation_timeout,
            cancellation_polling=cancellation_polling,
        ),
    )  # fmt: skip


def timer(
    *resource: str | Everything,
    interval: float,
    group: str | None = None,
    version: str | None = None,
    kind: str | None = None,
    plural: str | None = None,
    singular: str | None = None,
    shortcut: str | None = None,
    category: str | None = None,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    idle: float | None = None,
    initial_delay: float | None = None,
    sharp: bool = False,
    registry: OperatorRegistry | None = None,
    labels: MetaFilter | None = None,
    annotations: MetaFilter | None = None,
    when: When = None,
    field: Field = None,
    value: Any = None,
) -> Callable[[F], F]:
    """Call the function every ``interval`` seconds for each matching object while it exists.

    ``idle``: only once the object has not changed for that long; ``sharp``: keep the schedule
    fixed instead of counting from the end of the previous call. Runs in the object's nursery.
    """
    selector = _selector(
        resource, group=group, version=version, kind=kind, plural=plural,
        singular=singular, shortcut=shortcut, category=category,
    )  # fmt: skip
    _check_options(errors=errors, timeout=timeout, retries=retries, backoff=backoff)
    if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval <= 0:
        raise ValueError(f"interval= must be positive seconds, got {interval!r}")
    for name, v in (("idle", idle), ("initial_delay", initial_delay)):
        if v is not None:
            _non_negative(name, v)
    path = _filters(
        labels=labels, annotations=annotations, field=field, when=when, field_filters=(value,)
    )
    return _registering(
        "timer",
        registry,
        lambda fn: TimerHandler(
            fn=fn, id=_fn_id(fn, id, path), param=param, errors=errors, timeout=timeout,
            retries=retries, backoff=backoff, selector=selector, labels=labels,
            annotations=annotations, when=when, field=path, value=value,
            interval=float(interval), idle=idle, initial_delay=initial_delay, sharp=sharp,
        ),
    )  # fmt: skip


def _activity(
    activity: Activity,
    *,
    id: str | None,
    param: Any,
    errors: ErrorsMode | None,
    timeout: float | None,
    retries: int | None,
    backoff: float | None,
    registry: OperatorRegistry | None,
) -> Callable[[F], F]:
    _check_options(errors=errors, timeout=timeout, retries=retries, backoff=backoff)
    return _registering(
        activity.value,
        registry,
        lambda fn: ActivityHandler(
            fn=fn, id=_fn_id(fn, id), param=param, errors=errors, timeout=timeout,
            retries=retries, backoff=backoff, activity=activity,
        ),
    )  # fmt: skip


def startup(
    *,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
) -> Callable[[F], F]:
    """Call the function when the operator starts, before any watcher (``settings``, ``memo``)."""
    return _activity(
        Activity.STARTUP, id=id, param=param, errors=errors, timeout=timeout,
        retries=retries, backoff=backoff, registry=registry,
    )  # fmt: skip


def cleanup(
    *,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
) -> Callable[[F], F]:
    """Call the function when the operator stops, after the watchers and objects have stopped."""
    return _activity(
        Activity.CLEANUP, id=id, param=param, errors=errors, timeout=timeout,
        retries=retries, backoff=backoff, registry=registry,
    )  # fmt: skip


def login(
    *,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
) -> Callable[[F], F]:
    """Call the function to get credentials for the API (on start and after a 401)."""
    return _activity(
        Activity.AUTHENTICATION, id=id, param=param, errors=errors, timeout=timeout,
        retries=retries, backoff=backoff, registry=registry,
    )  # fmt: skip


def probe(
    *,
    id: str | None = None,
    param: Any = None,
    errors: ErrorsMode | None = None,
    timeout: float | None = None,
    retries: int | None = None,
    backoff: float | None = None,
    registry: OperatorRegistry | None = None,
) -> Callable[[F], F]:
    """Call the function on each health-probe request; its result is part of the response."""
    return _activity(
        Activity.PROBE, id=id, param=param, errors=errors, timeout=timeout,
        retries=retries, backoff=backoff, registry=registry,
    )  # fmt: skip
