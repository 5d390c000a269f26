"""What the cluster serves, and which one resource a user's words name.

Pure functions over discovery documents, plus :class:`DiscoveryCache` that fetches them
through the client. Resolution accepts what Kopf users write: ``kopfexamples``,
``KopfExample``, ``kopfexample``, a short name (``kex``), ``kopfexamples.kopf.dev``,
``kopfexamples.v1.kopf.dev``, ``kopf.dev/v1/kopfexamples``, ``kopf.dev/v1`` (when that version
serves one resource) and categories (``all``). Names compare case-insensitively.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any

import anyio
import attrs

from trikopf.client.errors import AmbiguousResource, ApiError, UnknownResource
from trikopf.structs import Resource

__all__ = ["DiscoveryCache", "match_resources", "resources_from_list"]

Fetch = Callable[[str], Awaitable[Any]]


def resources_from_list(group: str, version: str, body: Mapping[str, Any]) -> list[Resource]:
    """The resources of one APIResourceList (subresources folded into their parents)."""
    subresources: dict[str, set[str]] = {}
    mains: list[Mapping[str, Any]] = []
    for item in body.get("resources") or []:
        name = item.get("name", "")
        if "/" in name:
            parent, _, sub = name.partition("/")
            subresources.setdefault(parent, set()).add(sub)
        else:
            mains.append(item)
    return [
        Resource(
            group=group,
            version=version,
            plural=item["name"],
            kind=item.get("kind", ""),
            singular=item.get("singularName") or "",
            namespaced=bool(item.get("namespaced", False)),
            short_names=tuple(item.get("shortNames") or ()),
            categories=tuple(item.get("categories") or ()),
            subresources=frozenset(subresources.get(item["name"], ())),
            verbs=frozenset(item.get("verbs") or ()),
        )
        for item in mains
    ]


def _names(resource: Resource) -> set[str]:
    names = {resource.plural.lower(), resource.kind.lower()}
    if resource.singular:
        names.add(resource.singular.lower())
    names.update(n.lower() for n in resource.short_names)
    return names


def match_resources(spec: str, resources: Iterable[Resource]) -> list[Resource]:
    """Every resource (any version) that ``spec`` names; no category or glob expansion."""
    text = spec.strip()
    lowered = text.lower()
    pool = list(resources)
    if "/" in text:
        parts = lowered.split("/")
        if len(parts) == 2:  # group/version, or v1 core: "v1/pods" is written as group/version
            group, version = parts
            if group == "v1" or group == "":  # "v1/pods": core group
                return [
                    r for r in pool if r.group == "" and r.version == "v1" and version in _names(r)
                ]
            return [r for r in pool if r.group == group and r.version == version]
        if len(parts) == 3:  # group/version/name
            group, version, name = parts
            return [
                r for r in pool if r.group == group and r.version == version and name in _names(r)
            ]
        return []
    found = [r for r in pool if lowered in _names(r)]
    if found:
        return found
    if "." in lowered:
        # plural.group, kind.group, or plural.version.group (the group itself has dots).
        name, _, rest = lowered.partition(".")
        found = [r for r in pool if r.group == rest and name in _names(r)]
        if found:
            return found
        version, _, group = rest.partition(".")
        return [r for r in pool if r.group == group and r.version == version and name in _names(r)]
    return []


@attrs.define(eq=False)
class DiscoveryCache:
    """Discovery documents, fetched once and refreshed when a lookup misses.

    ``fetch(path)`` GETs a path and returns parsed JSON (the client's retrying request).
    Refreshing fetches every group version concurrently in a task group that ends before
    :meth:`refresh` returns; concurrent callers share one refresh (a lock).
    """

    fetch: Fetch
    min_refresh_interval: float = 0.0
    _resources: list[Resource] | None = attrs.field(default=None, init=False)
    _preferred: set[tuple[str, str]] = attrs.field(factory=set, init=False)
    _refreshed_at: float | None = attrs.field(default=None, init=False)
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)
    _generation: int = attrs.field(default=0, init=False)

    async def refresh(self) -> list[Resource]:
        """Fetch all discovery documents now (``/api``, ``/apis`` and each group version)."""
        async with self._lock:
            return await self._refresh_locked()

    async def _refresh_locked(self) -> list[Resource]:
        core = await self.fetch("/api")
        group_list = await self.fetch("/apis")
        targets: list[tuple[str, str, str]] = []
        preferred: set[tuple[str, str]] = set()
        core_versions = core.get("versions") or ["v1"]
        for version in core_versions:
            targets.append(("", version, f"/api/{version}"))
        if core_versions:
            preferred.add(("", core_versions[0]))
        for group in group_list.get("groups") or []:
            name = group.get("name", "")
            pref = (group.get("preferredVersion") or {}).get("version")
            for version in group.get("versions") or []:
                v = version.get("version", "")
                targets.append((name, v, f"/apis/{name}/{v}"))
                if pref is None:
                    pref = v
            if pref:
                preferred.add((name, pref))
        results: dict[int, list[Resource]] = {}

        async def fetch_one(index: int, group: str, version: str, path: str) -> None:
            try:
                body = await self.fetch(path)
            except ApiError as exc:
                if exc.code in (404, 503):  # a group version that went away or is unready
                    return
                raise
            results[index] = resources_from_list(group, version, body)

        async with anyio.create_task_group() as tg:
            for index, (group, version, path) in enumerate(targets):
                tg.start_soon(fetch_one, index, group, version, path)
        resources = [r for index in sorted(results) for r in results[index]]
        self._resources = resources
        self._preferred = preferred
        self._refreshed_at = anyio.current_time()
        self._generation += 1
        return resources

    async def resources(self, *, refresh: bool = False) -> list[Resource]:
        """All served resources in every version (fetched on first use or when asked)."""
        if refresh or self._resources is None:
            return await self.refresh()
        return self._resources

    def _prefer(self, candidates: Sequence[Resource]) -> list[Resource]:
        # One entry per (group, plural): the preferred version when served, else the first.
        chosen: dict[tuple[str, str], Resource] = {}
        for r in candidates:
            key = (r.group, r.plural)
            if key not in chosen or (r.group, r.version) in self._preferred:
                chosen[key] = r
        return list(chosen.values())

    async def _lookup(
        self, spec: str, lookup: Callable[[list[Resource]], list[Resource]]
    ) -> list[Resource]:
        found = lookup(await self.resources())
        if found:
            return found
        # A miss: CRDs may have appeared since. Concurrent misses share one refresh.
        seen = self._generation
        async with self._lock:
            now = anyio.current_time()
            recent = (
                self._refreshed_at is not None
                and now - self._refreshed_at < self.min_refresh_interval
            )
            if self._generation == seen and not recent:
                await self._refresh_locked()
        return lookup(await self.resources())

    async def resolve(self, spec: str) -> Resource:
        """The one resource ``spec`` names (preferred version); raises when none or several.

        A version written in ``spec`` is honoured. Among several groups the core group wins,
        as in kubectl (``events`` is core/v1 Event, not events.k8s.io).
        """

        def lookup(pool: list[Resource]) -> list[Resource]:
            found = match_resources(spec, pool)
            if not found:
                found = [r for r in pool if spec.lower() in (c.lower() for c in r.categories)]
            return self._prefer(found)

        found = await self._lookup(spec, lookup)
        if not found:
            raise UnknownResource(spec)
        if len(found) > 1:
            core = [r for r in found if r.group == ""]
            if len(core) == 1:
                return core[0]
            raise AmbiguousResource(spec, found)
        return found[0]

    async def resolve_all(self, spec: str) -> list[Resource]:
        """Every resource ``spec`` names: a name (as :meth:`resolve`), a category, or a glob.

        Globs (``*.kopf.dev``, ``kopf*``) match ``plural``, ``kind`` and ``plural.group``.
        Returns preferred versions only; an empty list when nothing matches (yet).
        """

        def lookup(pool: list[Resource]) -> list[Resource]:
            lowered = spec.lower()
            if any(ch in spec for ch in "*?["):
                found = [
                    r
                    for r in pool
                    if fnmatch.fnmatchcase(r.plural.lower(), lowered)
                    or fnmatch.fnmatchcase(r.kind.lower(), lowered)
                    or fnmatch.fnmatchcase(r.name.lower(), lowered)
                ]
            else:
                found = [r for r in pool if lowered in (c.lower() for c in r.categories)]
                found += match_resources(spec, pool)
            return self._prefer(found)

        return await self._lookup(spec, lookup)
