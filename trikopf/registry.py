"""Handler specs by family, the registries that hold them, and pure lookups over them.

A registry answers: which resources need watching (:meth:`OperatorRegistry.selectors`), which
handlers apply to a resource, and which of them apply to one cause of one object. It does no I/O
and starts nothing. Decorators in :mod:`trikopf.on` add to the default registry unless given
``registry=``.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar

import attrs

from trikopf.causes import ChangeCause, Reason
from trikopf.diffs import FieldPath, reduce, resolve
from trikopf.errors import ErrorsMode
from trikopf.filters import MetaFilter, check_meta_filter, check_value
from trikopf.structs import Resource

__all__ = [
    "EVERYTHING",
    "Activity",
    "ActivityHandler",
    "BaseHandler",
    "ChangingHandler",
    "DaemonHandler",
    "Everything",
    "OperatorRegistry",
    "ResourceHandler",
    "ResourceSelector",
    "TimerHandler",
    "WatchingHandler",
    "get_default_registry",
    "set_default_registry",
]

_VERSION = re.compile(r"^v\d+((alpha|beta)\d+)?$")
# Never picked by EVERYTHING: posting our own Events must not feed back into the handlers.
_NEVER_EVERYTHING = frozenset({("", "events"), ("events.k8s.io", "events")})


class Everything(enum.Enum):
    """The marker type of :data:`EVERYTHING`."""

    EVERYTHING = "everything"

    def __repr__(self) -> str:
        return "trikopf.EVERYTHING"


EVERYTHING = Everything.EVERYTHING
"""Select every listable and watchable resource of the cluster (except Events)."""


@attrs.frozen(kw_only=True)
class ResourceSelector:
    """Which resources a handler is for; matched against discovery's :class:`Resource` records.

    ``name`` matches a plural, singular, kind or short name; ``category`` a category (``all``);
    with neither, the selector is :data:`EVERYTHING`. ``group``/``version`` narrow it down.
    """

    group: str | None = None
    version: str | None = None
    name: str | None = None
    category: str | None = None

    @property
    def is_everything(self) -> bool:
        return self.name is None and self.category is None

    @property
    def query(self) -> str:
        """A name that the client's ``resolve``/``resolve_all`` understands (``plural.group``)."""
        if self.is_everything:
            return "*"
        base = self.name if self.name is not None else str(self.category)
        if self.group and self.version:
            return f"{base}.{self.version}.{self.group}"
        if self.group:
            return f"{base}.{self.group}"
        return base

    @classmethod
    def parse(
        cls,
        *args: str | Everything,
        group: str | None = None,
        version: str | None = None,
        kind: str | None = None,
        plural: str | None = None,
        singular: str | None = None,
        shortcut: str | None = None,
        category: str | None = None,
    ) -> ResourceSelector:
        """Build a selector from the decorator's arguments, in any of Kopf's forms.

        ``("kopfexamples")``, ``("kopfexamples.kopf.dev")``, ``("kopf.dev", "kopfexamples")``,
        ``("kopf.dev/v1", "kopfexamples")``, ``("v1", "pods")``, ``("kopf.dev", "v1",
        "kopfexamples")``, ``(EVERYTHING)``, or keywords (``kind="KopfExample"``,
        ``category="all"``). Raises :class:`TypeError` when it is ambiguous or empty.
        """
        names = [n for n in (kind, plural, singular, shortcut) if n is not None]
        if len(names) > 1:
            raise TypeError(f"Give one of kind=/plural=/singular=/shortcut=, not {names!r}")
        name: str | None = names[0] if names else None
        everything = False
        p_group: str | None = None
        p_version: str | None = None
        p_name: str | Everything | None = None
        if len(args) > 3:
            raise TypeError(f"At most (group, version, name) positionally, got {args!r}")
        for arg in args:
            if arg is not EVERYTHING and (not isinstance(arg, str) or not arg):
                raise TypeError(f"A resource is named by non-empty strings, got {arg!r}")
        if len(args) == 1:
            p_name = args[0]
            if isinstance(p_name, str):
                if "/" in p_name:
                    raise TypeError(
                        f"{p_name!r} looks like 'group/version'; give the resource name too: "
                        f"({p_name!r}, 'plural')"
                    )
                if "." in p_name:
                    p_name, rest = p_name.split(".", 1)
                    first, _, remainder = rest.partition(".")
                    if _VERSION.match(first) and remainder:
                        p_version, p_group = first, remainder
                    else:
                        p_group = rest
        elif len(args) == 2:
            first_arg, p_name = args
            if not isinstance(first_arg, str):
                raise TypeError(f"The group or group/version comes first, got {first_arg!r}")
            if "/" in first_arg:
                p_group, p_version = first_arg.split("/", 1)
            elif _VERSION.match(first_arg):
                p_group, p_version = "", first_arg
            else:
                p_group = first_arg
        elif len(args) == 3:
            g, v, p_name = args
            if not isinstance(g, str) or not isinstance(v, str):
                raise TypeError(f"(group, version, name) must be strings, got {args!r}")
            p_group, p_version = g, v
        if p_name is EVERYTHING:
            everything = True
            p_name = None
        if p_name is not None and name is not None:
            raise TypeError(f"The resource is named twice: {p_name!r} and {name!r}")
        name = name if name is not None else p_name
        for what, given, parsed in (("group", group, p_group), ("version", version, p_version)):
            if given is not None and parsed is not None and given != parsed:
                raise TypeError(f"Conflicting {what}: {given!r} and {parsed!r}")
        group = group if group is not None else p_group
        version = version if version is not None else p_version
        if name is not None and category is not None:
            raise TypeError("Give a resource name or a category=, not both")
        if name is None and category is None and not everything:
            raise TypeError(
                "Which resource? Name it (plural, kind, 'plural.group', ...), give category=, "
                "or pass trikopf.EVERYTHING"
            )
        return cls(group=group, version=version, name=name, category=category)

    def check(self, resource: Resource) -> bool:
        """Whether this selector picks ``resource``."""
        if self.group is not None and resource.group != self.group:
            return False
        if self.version is not None and resource.version != self.version:
            return False
        if self.name is not None:
            return self.name in (
                resource.plural,
                resource.singular,
                resource.kind,
                *resource.short_names,
            ) or self.name.lower() in (resource.kind.lower(), resource.plural)
        if self.category is not None:
            return self.category in resource.categories
        verbs = resource.verbs
        watchable = not verbs or {"list", "watch"} <= verbs
        return watchable and (resource.group, resource.plural) not in _NEVER_EVERYTHING

    def select(self, resources: Iterable[Resource]) -> list[Resource]:
        """The resources this selector picks, one version per (group, plural): the first listed.

        Discovery lists the preferred version first. A name that several groups serve picks the
        core group's resource if there is one (as kubectl does), all of them otherwise.
        """
        chosen: dict[tuple[str, str], Resource] = {}
        for resource in resources:
            if self.check(resource):
                chosen.setdefault((resource.group, resource.plural), resource)
        found = list(chosen.values())
        if self.name is not None and self.group is None and len(found) > 1:
            core = [r for r in found if r.group == ""]
            if core:
                return core
        return found


class Activity(str, enum.Enum):
    """Operator-level activities with handlers (not tied to any object)."""

    STARTUP = "startup"
    CLEANUP = "cleanup"
    AUTHENTICATION = "login"
    PROBE = "probe"


@attrs.frozen(kw_only=True, eq=False)
class BaseHandler:
    """What every handler has: the function, its id, and how its errors and retries work.

    ``None`` for ``errors``/``timeout``/``retries``/``backoff`` means the operator's defaults.
    """

    fn: Callable[..., Any]
    id: str
    param: Any = None
    errors: ErrorsMode | None = None
    timeout: float | None = None
    retries: int | None = None
    backoff: float | None = None


@attrs.frozen(kw_only=True, eq=False)
class ResourceHandler(BaseHandler):
    """A handler for objects of some resources, with the filters that narrow the objects down."""

    selector: ResourceSelector
    labels: MetaFilter | None = None
    annotations: MetaFilter | None = None
    when: Callable[..., bool] | None = None
    field: FieldPath = ()
    value: Any = None

    def passes_filters(self, body: Mapping[str, Any], kwargs: Mapping[str, Any]) -> bool:
        """Whether the object passes the labels, annotations, field ``value`` and ``when`` filters."""
        meta = body.get("metadata") or {}
        if self.labels and not check_meta_filter(self.labels, meta.get("labels"), kwargs):
            return False
        if self.annotations and not check_meta_filter(
            self.annotations, meta.get("annotations"), kwargs
        ):
            return False
        if self.value is not None and not check_value(
            self.value, resolve(body, self.field), kwargs
        ):
            return False
        if (
            self.field
            and self.value is None
            and self._field_must_exist
            and resolve(body, self.field) is None
        ):
            return False  # as in Kopf: field= alone means "only objects that have the field"
        return self.when is None or bool(self.when(**kwargs))

    @property
    def _field_must_exist(self) -> bool:
        return True


@attrs.frozen(kw_only=True, eq=False)
class WatchingHandler(ResourceHandler):
    """``on.event``: called for every raw watch event, fire and forget."""


@attrs.frozen(kw_only=True, eq=False)
class ChangingHandler(ResourceHandler):
    """``on.create``/``update``/``delete``/``resume``/``field``: called once per cause, with retries.

    ``reason=None`` is ``on.field``: creation and updates that touch ``field``.
    """

    reason: Reason | None
    old: Any = None
    new: Any = None
    deleted: bool = False  # resume: also for objects being deleted
    optional: bool = False  # delete: needs no finalizer

    @property
    def requires_finalizer(self) -> bool:
        return self.reason is Reason.DELETE and not self.optional

    @property
    def _field_must_exist(self) -> bool:
        # Creation and updates go by the field's change instead (it may have been removed).
        return self.reason in (Reason.RESUME, Reason.DELETE)

    def matches_cause(self, cause: ChangeCause) -> bool:
        """Whether the cause's reason (and the change of ``field``, if any) calls this handler."""
        reason = cause.reason
        if self.reason is None:
            ok = reason in (Reason.CREATE, Reason.UPDATE)
        elif self.reason is Reason.RESUME:
            # As in Kopf: on first sight, whatever the cause; so an object created while the
            # operator was down (found by the first list) gets create and resume handlers.
            ok = cause.initial and (
                reason in (Reason.RESUME, Reason.UPDATE, Reason.CREATE)
                or (self.deleted and reason is Reason.DELETE)
            )
        else:
            ok = reason is self.reason
        if not ok:
            return False
        if (
            self.field
            and reason in (Reason.CREATE, Reason.UPDATE)
            and self.reason is not Reason.RESUME
        ) and not reduce(cause.diff, self.field):
            return False
        if self.old is not None and not check_value(self.old, resolve(cause.old, self.field), {}):
            return False
        return self.new is None or check_value(self.new, resolve(cause.new, self.field), {})


@attrs.frozen(kw_only=True, eq=False)
class DaemonHandler(ResourceHandler):
    """``trikopf.daemon``: a long-running task per object (run by ``trikopf.engines``)."""

    initial_delay: float | None = None
    cancellation_backoff: float | None = None
    cancellation_timeout: float | None = None
    cancellation_polling: float | None = None


@attrs.frozen(kw_only=True, eq=False)
class TimerHandler(ResourceHandler):
    """``trikopf.timer``: a periodic call per object (run by ``trikopf.engines``)."""

    interval: float
    idle: float | None = None
    initial_delay: float | None = None
    sharp: bool = False


@attrs.frozen(kw_only=True, eq=False)
class ActivityHandler(BaseHandler):
    """``on.startup``/``cleanup``/``login``/``probe``: operator-level handlers."""

    activity: Activity


H = TypeVar("H", bound=BaseHandler)
AnyHandler = ChangingHandler | WatchingHandler | DaemonHandler | TimerHandler | ActivityHandler


@attrs.define(eq=False)
class OperatorRegistry:
    """The handlers of one operator, by family; pure lookups with a per-resource cache.

    Registering is meant for import time; lookups are cheap and cached until the next register.
    """

    _changing: list[ChangingHandler] = attrs.field(factory=list, init=False)
    _watching: list[WatchingHandler] = attrs.field(factory=list, init=False)
    _daemons: list[DaemonHandler] = attrs.field(factory=list, init=False)
    _timers: list[TimerHandler] = attrs.field(factory=list, init=False)
    _activities: list[ActivityHandler] = attrs.field(factory=list, init=False)
    _cache: dict[tuple[str, Resource], tuple[Any, ...]] = attrs.field(factory=dict, init=False)

    def register(self, handler: AnyHandler) -> None:
        """Add a handler; a second handler with the same id in the same family is an error."""
        families: list[tuple[type, list[Any]]] = [
            (ChangingHandler, self._changing),
            (WatchingHandler, self._watching),
            (DaemonHandler, self._daemons),
            (TimerHandler, self._timers),
            (ActivityHandler, self._activities),
        ]
        family = next((f for cls, f in families if type(handler) is cls), None)
        if family is None:
            raise TypeError(f"Not a handler spec: {handler!r}")
        for other in family:
            if other.id == handler.id and _same_target(other, handler):
                raise ValueError(
                    f"Duplicate handler id {handler.id!r}: give one of them id=... "
                    f"({other.fn!r} and {handler.fn!r})"
                )
        family.append(handler)
        self._cache.clear()

    @property
    def changing_handlers(self) -> tuple[ChangingHandler, ...]:
        return tuple(self._changing)

    @property
    def watching_handlers(self) -> tuple[WatchingHandler, ...]:
        return tuple(self._watching)

    @property
    def daemon_handlers(self) -> tuple[DaemonHandler, ...]:
        return tuple(self._daemons)

    @property
    def timer_handlers(self) -> tuple[TimerHandler, ...]:
        return tuple(self._timers)

    def activity_handlers(self, activity: Activity | None = None) -> tuple[ActivityHandler, ...]:
        return tuple(h for h in self._activities if activity is None or h.activity is activity)

    def selectors(self) -> frozenset[ResourceSelector]:
        """Every resource selector of the resource handlers: what the reactor must watch."""
        handlers: list[ResourceHandler] = [
            *self._changing,
            *self._watching,
            *self._daemons,
            *self._timers,
        ]
        return frozenset(h.selector for h in handlers)

    def resources(self, served: Iterable[Resource]) -> list[Resource]:
        """Which of the ``served`` resources (from discovery) have any handler, in order."""
        served = list(served)
        picked: dict[Resource, None] = {}
        for selector in sorted(self.selectors(), key=repr):
            for resource in selector.select(served):
                picked[resource] = None
        return list(picked)

    def _for(self, family: str, handlers: list[H], resource: Resource) -> tuple[H, ...]:
        key = (family, resource)
        found = self._cache.get(key)
        if found is None:
            found = tuple(h for h in handlers if h.selector.check(resource))  # type: ignore[attr-defined]
            self._cache[key] = found
        return found

    def changing_handlers_for(self, resource: Resource) -> tuple[ChangingHandler, ...]:
        return self._for("changing", self._changing, resource)

    def watching_handlers_for(self, resource: Resource) -> tuple[WatchingHandler, ...]:
        return self._for("watching", self._watching, resource)

    def daemon_handlers_for(self, resource: Resource) -> tuple[DaemonHandler, ...]:
        return self._for("daemon", self._daemons, resource)

    def timer_handlers_for(self, resource: Resource) -> tuple[TimerHandler, ...]:
        return self._for("timer", self._timers, resource)

    def requires_finalizer(
        self, resource: Resource, body: Mapping[str, Any], kwargs: Mapping[str, Any]
    ) -> bool:
        """Whether our finalizer must hold the object's deletion.

        It must when a non-optional delete handler applies to the object, or a daemon or timer
        does (the finalizer is released once they have stopped).
        """
        return any(
            h.requires_finalizer and h.passes_filters(body, kwargs)
            for h in self.changing_handlers_for(resource)
        ) or any(
            h.passes_filters(body, kwargs)
            for h in (*self.daemon_handlers_for(resource), *self.timer_handlers_for(resource))
        )


def _same_target(a: BaseHandler, b: BaseHandler) -> bool:
    if isinstance(a, ChangingHandler) and isinstance(b, ChangingHandler) and a.reason != b.reason:
        return False
    if isinstance(a, ActivityHandler) and isinstance(b, ActivityHandler):
        return a.activity is b.activity
    if isinstance(a, ResourceHandler) and isinstance(b, ResourceHandler):
        return a.selector == b.selector
    return True


_default_registry = OperatorRegistry()


def get_default_registry() -> OperatorRegistry:
    """The registry that decorators use when not given ``registry=``."""
    return _default_registry


def set_default_registry(registry: OperatorRegistry) -> None:
    """Replace the default registry (tests and embedding applications use it)."""
    global _default_registry
    _default_registry = registry
