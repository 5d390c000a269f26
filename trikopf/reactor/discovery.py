"""Which (resource, namespace) pairs are watched, kept up to date while the operator runs.

The discovery task resolves the registry's resource selectors against the resources that the
cluster serves, and the namespace selector against the namespaces that exist. It watches
CustomResourceDefinitions (and, for globs, Namespaces) and re-checks on every change and every
``discovery_interval``, so CRDs and namespaces that appear later are served without a restart,
and those that disappear have their watchers (and every object task under them) cancelled.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import anyio
import anyio.abc
import attrs

from trikopf.client import ApiClient
from trikopf.client.errors import ClientError
from trikopf.reactor.namespaces import NamespaceSelector
from trikopf.reactor.watching import serve_watch, where
from trikopf.registry import OperatorRegistry, ResourceSelector
from trikopf.settings import WatchingSettings
from trikopf.structs import Resource, WatchEvent

__all__ = ["StartupError", "UnknownResourcesError", "WatchKey", "WatchSet", "serve_discovery"]

logger = logging.getLogger("trikopf.reactor.discovery")

WatchKey = tuple[Resource, "str | None"]

# Bursts of CRD/namespace changes (a manifest with many CRDs) are handled as one re-check.
_DEBOUNCE = 0.05


class StartupError(Exception):
    """The operator cannot start; the message says why in one line, for a human."""


class UnknownResourcesError(StartupError):
    """Handlers name resources that the cluster does not serve."""

    def __init__(self, selectors: Iterable[ResourceSelector]) -> None:
        self.selectors = tuple(selectors)
        names = ", ".join(sorted(s.query for s in self.selectors))
        super().__init__(
            f"the cluster serves no resource named {names}; apply its CustomResourceDefinition "
            "first (--apply crd.yaml), check the name, or set "
            "settings.watching.wait_for_resources to wait for it"
        )


ServeKey = Callable[..., Awaitable[None]]


@attrs.define(eq=False)
class WatchSet:
    """The running watchers, one task per (resource, namespace) in ``task_group``.

    ``serve_key(resource, namespace, strict=..., task_status=...)`` serves one pair until
    cancelled and reports readiness after its first list. :meth:`update` starts the new pairs
    and cancels the pairs no longer wanted. While ``strict`` (the operator's start), it waits
    until each new watcher is ready and a watcher's first list may fail the start; afterwards
    new watchers start in the background and retry every error.
    """

    task_group: anyio.abc.TaskGroup
    serve_key: ServeKey
    strict: bool = True
    _scopes: dict[WatchKey, anyio.CancelScope] = attrs.field(factory=dict, init=False)

    @property
    def keys(self) -> frozenset[WatchKey]:
        return frozenset(self._scopes)

    async def update(self, wanted: Iterable[WatchKey]) -> None:
        """Start the missing watchers (concurrently, returning when all are ready); stop extras."""
        wanted = set(wanted)
        for key in [k for k in self._scopes if k not in wanted]:
            logger.info("Stopping the watch of %s.", where(*key))
            self._scopes.pop(key).cancel()
        missing = [k for k in wanted if k not in self._scopes]
        if not missing:
            return
        if not self.strict:
            for key in missing:
                self._scopes[key] = scope = anyio.CancelScope()
                logger.info("Watching %s.", where(*key))
                self.task_group.start_soon(self._serve, key, scope)
            return
        async with anyio.create_task_group() as starting:
            for key in missing:
                starting.start_soon(self._start, key)

    async def _start(self, key: WatchKey) -> None:
        scope = anyio.CancelScope()
        self._scopes[key] = scope
        logger.info("Watching %s.", where(*key))
        await self.task_group.start(self._serve, key, scope)

    async def _serve(
        self,
        key: WatchKey,
        scope: anyio.CancelScope,
        *,
        task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
    ) -> None:
        try:
            with scope:
                await self.serve_key(key[0], key[1], strict=self.strict, task_status=task_status)
        finally:
            if self._scopes.get(key) is scope:
                del self._scopes[key]


@attrs.define(eq=False)
class _NamespaceTracker:
    """Keeps the names of existing namespaces from a namespaces watch; signals changes."""

    changed: Callable[[], None]
    names: dict[str, str] = attrs.field(factory=dict)  # uid -> name

    def dispatch(self, event: WatchEvent) -> None:
        uid, name = event.uid, event.name
        if uid is None or name is None:
            return
        if event.type == "DELETED":
            if self.names.pop(uid, None) is not None:
                self.changed()
        elif uid not in self.names:
            self.names[uid] = name
            self.changed()

    def forget_missing(self, present: Iterable[str]) -> None:
        present = set(present)
        for uid in [u for u in self.names if u not in present]:
            del self.names[uid]
            self.changed()


@attrs.define(eq=False)
class _ChangeSignal:
    """Any event of the watched resource means: re-check discovery."""

    changed: Callable[[], None]

    def dispatch(self, event: WatchEvent) -> None:
        self.changed()

    def forget_missing(self, present: Iterable[str]) -> None:
        self.changed()


def _find(served: list[Resource], group: str, plural: str) -> Resource | None:
    return next((r for r in served if r.group == group and r.plural == plural), None)


async def serve_discovery(
    client: ApiClient,
    registry: OperatorRegistry,
    namespaces: NamespaceSelector,
    watchers: WatchSet,
    *,
    settings: WatchingSettings,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Keep ``watchers`` serving what the registry needs; runs until cancelled.

    Reports readiness once the first set of watchers has finished its initial lists. Before
    that, a resource that the cluster does not serve raises :class:`UnknownResourcesError`
    (unless ``settings.wait_for_resources``), and API errors propagate: the operator fails to start.
    Starts the watchers of CRDs and namespaces in its own task group.
    """
    served = await client.resources(refresh=True)
    if not settings.wait_for_resources:
        unknown = [
            s
            for s in registry.selectors()
            if s.name is not None and s.category is None and not s.select(served)
        ]
        if unknown:
            raise UnknownResourcesError(unknown)
    if not registry.selectors():
        logger.warning("No resource handlers are registered: nothing to watch.")

    wakeup = anyio.Event()

    def changed() -> None:
        wakeup.set()

    tracker = _NamespaceTracker(changed)
    async with anyio.create_task_group() as tg:
        if not namespaces.clusterwide and not namespaces.is_static:
            ns_resource = _find(served, "", "namespaces")
            if ns_resource is None:
                raise StartupError("the cluster does not serve namespaces; cannot match globs")
            await tg.start(_serve_meta_watch, client, ns_resource, tracker, settings, "namespaces")
        crd_resource = _find(served, "apiextensions.k8s.io", "customresourcedefinitions")
        if crd_resource is not None:
            tg.start_soon(
                _serve_meta_watch, client, crd_resource, _ChangeSignal(changed), settings, "CRDs"
            )

        await watchers.update(_wanted(registry, namespaces, served, tracker))
        watchers.strict = False  # from now on, a failing watcher retries; it never stops us
        task_status.started()

        while True:
            with anyio.move_on_after(settings.discovery_interval):
                await wakeup.wait()
            wakeup = anyio.Event()
            await anyio.sleep(_DEBOUNCE)
            try:
                served = await client.resources(refresh=True)
            except ClientError as exc:
                logger.warning("Discovery failed (%s); keeping the current watchers.", exc)
                continue
            await watchers.update(_wanted(registry, namespaces, served, tracker))


def _wanted(
    registry: OperatorRegistry,
    namespaces: NamespaceSelector,
    served: list[Resource],
    tracker: _NamespaceTracker,
) -> set[WatchKey]:
    if namespaces.clusterwide:
        names: list[str | None] = [None]
    elif namespaces.is_static:
        names = [*namespaces.static_names]
    else:
        names = [*sorted({n for n in tracker.names.values() if namespaces.matches(n)})]
    wanted: set[WatchKey] = set()
    for resource in registry.resources(served):
        if "watch" not in resource.verbs and resource.verbs:
            continue
        if resource.namespaced:
            wanted.update((resource, n) for n in names)
        else:
            wanted.add((resource, None))
    return wanted


async def _serve_meta_watch(
    client: ApiClient,
    resource: Resource,
    target: Any,
    settings: WatchingSettings,
    what: str,
    *,
    task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED,
) -> None:
    """Watch namespaces or CRDs for discovery; forbidden watches fall back to periodic checks."""
    try:
        await serve_watch(
            client, resource, None, supervisor=target, settings=settings, task_status=task_status
        )
    except ClientError as exc:
        logger.warning(
            "Cannot watch %s (%s); relying on re-checks every %.0fs.",
            what,
            exc,
            settings.discovery_interval,
        )
        task_status.started()
