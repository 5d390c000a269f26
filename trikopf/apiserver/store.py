"""The object store: objects by resource, one cluster-wide resourceVersion, the event history.

Every write is synchronous (no checkpoint inside), so each one is atomic with respect to
every other request and watcher. A write bumps the global resourceVersion, stores a new
object (stored objects are never mutated afterwards), and appends one event to the
resource's history, serialised once; watchers wake up and send those same bytes.
"""

from __future__ import annotations

import bisect
import datetime
import random
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import anyio
import attrs

from trikopf.apiserver import errors
from trikopf.apiserver.defaulting import builtin_defaults
from trikopf.apiserver.errors import ApiError
from trikopf.apiserver.events import EVENT_TWINS, convert_event
from trikopf.apiserver.jsonio import dumps, loads
from trikopf.apiserver.resources import CRD_KEY, NAMESPACE_KEY, Registry, ResourceType
from trikopf.apiserver.services import allocate as allocate_service
from trikopf.apiserver.validation import validate_crd, validate_metadata, validate_name

__all__ = ["DEFAULT_NAMESPACES", "HistoryEvent", "ResourceLog", "Store"]

DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public")
SERVICE_ACCOUNT_KEY = ("", "serviceaccounts")
FOREGROUND = "foregroundDeletion"
ORPHAN = "orphan"
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"

Key = tuple[str, str]
Obj = dict[str, Any]
Track = Callable[["Obj | None", "Obj"], None]  # see Store.create: ownership bookkeeping


def clone(obj: Obj) -> Obj:
    """A deep copy of a stored object."""
    copied: Obj = loads(dumps(obj))
    return copied


_last_timestamp: tuple[int, str] = (0, "")


def now_timestamp() -> str:
    """The current time as RFC 3339 in whole seconds (formatted once per second)."""
    global _last_timestamp
    second = int(time.time())
    if _last_timestamp[0] != second:
        stamp = datetime.datetime.fromtimestamp(second, datetime.timezone.utc)
        _last_timestamp = (second, stamp.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return _last_timestamp[1]


@attrs.define(eq=False, slots=True)
class HistoryEvent:
    """One stored change: the new object, the one before it, and its bytes on the wire."""

    rv: int
    type: str  # ADDED | MODIFIED | DELETED
    namespace: str
    obj: Obj
    old: Obj | None
    raw: bytes  # the object as JSON
    line: bytes  # the whole watch event line, for the storage version
    _by_version: dict[str, bytes] | None = None

    def raw_for(self, api_version: str) -> bytes:
        if self.obj.get("apiVersion") == api_version:
            return self.raw
        if self._by_version is None:
            self._by_version = {}
        raw = self._by_version.get(api_version)
        if raw is None:
            raw = self._by_version[api_version] = dumps({**self.obj, "apiVersion": api_version})
        return raw


@attrs.define(eq=False)
class ResourceLog:
    """The retained events of one resource and the watchers' wake-up call."""

    events: list[HistoryEvent] = attrs.field(factory=list)
    base: int = 0  # absolute position of events[0]
    compacted_rv: int = 0  # watching from a version below this one gets 410
    _waiter: anyio.Event | None = None

    @property
    def end(self) -> int:
        return self.base + len(self.events)

    def position_after(self, rv: int) -> int:
        return self.base + bisect.bisect_right(self.events, rv, key=lambda e: e.rv)

    def waiter(self) -> anyio.Event:
        if self._waiter is None:
            self._waiter = anyio.Event()
        return self._waiter

    def wake(self) -> None:
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    def trim(self, window: int) -> None:
        excess = len(self.events) - window
        # Trim in batches so that appending stays O(1) amortised.
        if excess > max(16, window // 8):
            self.compacted_rv = self.events[excess - 1].rv
            del self.events[:excess]
            self.base += excess

    def compact(self, rv: int) -> None:
        keep = bisect.bisect_right(self.events, rv, key=lambda e: e.rv)
        del self.events[:keep]
        self.base += keep
        self.compacted_rv = max(self.compacted_rv, rv)


@attrs.define(eq=False)
class Store:
    """All objects of the cluster, in memory."""

    registry: Registry = attrs.field(factory=Registry)
    history_window: int = 10_000
    on_change: Callable[[], None] | None = None
    rv: int = 1
    _data: dict[Key, dict[tuple[str, str], Obj]] = attrs.field(factory=dict)
    # The JSON of each current object, made once when it was stored (lists and watches reuse it).
    _raw: dict[Key, dict[tuple[str, str], tuple[Obj, bytes]]] = attrs.field(factory=dict)
    _logs: dict[Key, ResourceLog] = attrs.field(factory=dict)
    _epochs: dict[Key, int] = attrs.field(factory=dict)
    # owner uid -> dependents (key, namespace, name)
    _dependents: dict[str, set[tuple[Key, str, str]]] = attrs.field(factory=dict)
    _by_uid: dict[str, tuple[Key, str, str]] = attrs.field(factory=dict)
    watch_generation: int = 0  # bumped to drop every open watch
    history_floor: int = 0  # no history exists at or before this version (restart, compaction)
    abort_dropped_watches: bool = False  # how the last drop ends them: abruptly or cleanly

    # ---------------------------------------------------------------- setup & access

    def bootstrap(self) -> None:
        """Create the default namespaces (a fresh cluster)."""
        namespaces = self.registry.get(NAMESPACE_KEY)
        assert namespaces is not None
        for name in DEFAULT_NAMESPACES:
            if (("", name)) not in self.bucket(NAMESPACE_KEY):
                self.create(namespaces, "", {"metadata": {"name": name}})
            self._ensure_default_service_account(name)

    def bucket(self, key: Key) -> dict[tuple[str, str], Obj]:
        bucket = self._data.get(key)
        if bucket is None:
            bucket = self._data[key] = {}
        return bucket

    def log(self, key: Key) -> ResourceLog:
        log = self._logs.get(key)
        if log is None:
            log = self._logs[key] = ResourceLog(compacted_rv=self.history_floor)
        return log

    def epoch(self, key: Key) -> int:
        return self._epochs.get(key, 0)

    def get(self, resource: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.bucket(resource.key).get((namespace, name))
        if obj is None:
            raise errors.not_found(resource.group, resource.plural, name)
        return obj

    def find(self, resource: ResourceType, namespace: str, name: str) -> Obj | None:
        return self.bucket(resource.key).get((namespace, name))

    def iter_objects(self, resource: ResourceType, namespace: str | None) -> Iterator[Obj]:
        """Objects in key order (namespace, name), like etcd's key order."""
        bucket = self.bucket(resource.key)
        for key in sorted(bucket):
            if namespace is None or key[0] == namespace:
                yield bucket[key]

    def raw_of(self, resource: ResourceType, obj: Obj) -> bytes:
        """The JSON of a stored object: serialised once, when it was stored."""
        meta = obj["metadata"]
        key = (meta.get("namespace", ""), meta["name"])
        raws = self._raw.setdefault(resource.key, {})
        cached = raws.get(key)
        if cached is not None and cached[0] is obj:
            return cached[1]
        raw = dumps(obj)
        if self.bucket(resource.key).get(key) is obj:
            raws[key] = (obj, raw)
        return raw

    def objects_at(self, resource: ResourceType, namespace: str | None, rv: int) -> list[Obj]:
        """The objects as they were at version ``rv``, in key order (for ``continue`` pages).

        Rebuilt from the retained history: the state before the first later event of an
        object is its state at ``rv``. The caller checks that the history reaches back.
        """
        current = self.bucket(resource.key)
        log = self.log(resource.key)
        past: dict[tuple[str, str], Obj | None] = {}
        for event in log.events[log.position_after(rv) - log.base :]:
            meta = event.obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if key not in past:
                past[key] = event.old if event.type != "ADDED" else None
        keys = set(current) | set(past)
        result = []
        for key in sorted(keys):
            if namespace is not None and key[0] != namespace:
                continue
            obj = past[key] if key in past else current[key]
            if obj is not None:
                result.append(obj)
        return result

    def wake_all(self) -> None:
        for log in self._logs.values():
            log.wake()

    def drop_watches(self, *, abort: bool = False) -> None:
        self.watch_generation += 1
        self.abort_dropped_watches = abort
        self.wake_all()

    def compact(self) -> int:
        """Forget the history up to now: watching from any older version gets 410."""
        self.history_floor = self.rv
        for log in self._logs.values():
            log.compact(self.rv)
        self.wake_all()
        return self.rv

    # ---------------------------------------------------------------- committing

    def _commit(
        self,
        resource: ResourceType,
        type_: str,
        obj: Obj,
        old: Obj | None,
        *,
        twin_of: int | None = None,
    ) -> Obj:
        # ``twin_of``: the resourceVersion of the change this one mirrors (see the end).
        if twin_of is None:
            self.rv += 1
            rv = self.rv
        else:
            rv = twin_of
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rv)
        namespace = meta.get("namespace", "")
        key = (namespace, meta["name"])
        bucket = self.bucket(resource.key)
        if type_ == "DELETED":
            bucket.pop(key, None)
        else:
            bucket[key] = obj
        self._index_owners(resource.key, key, old, None if type_ == "DELETED" else obj)
        if type_ == "DELETED":
            self._by_uid.pop(meta["uid"], None)
        else:
            self._by_uid[meta["uid"]] = (resource.key, key[0], key[1])
        raw = dumps(obj)
        raws = self._raw.setdefault(resource.key, {})
        if type_ == "DELETED":
            raws.pop(key, None)
        else:
            raws[key] = (obj, raw)
        line = b'{"type":"%s","object":%s}\n' % (type_.encode(), raw)
        log = self.log(resource.key)
        log.events.append(
            HistoryEvent(
                rv=rv, type=type_, namespace=namespace, obj=obj, old=old, raw=raw, line=line
            )
        )
        log.trim(self.history_window)
        log.wake()
        twin_key = EVENT_TWINS.get(resource.key)
        twin = self.registry.get(twin_key) if twin_key is not None else None
        if twin is not None and twin_key is not None and twin_of is None:
            # The other Event API shows the same change, at the same resourceVersion.
            twin_old = self.bucket(twin_key).get(key)
            if type_ != "DELETED" or twin_old is not None:
                converted = convert_event(obj, to=twin_key)
                self._commit(twin, type_, converted, twin_old, twin_of=rv)
        if self.on_change is not None:
            self.on_change()
        return obj

    def _index_owners(
        self, rkey: Key, key: tuple[str, str], old: Obj | None, new: Obj | None
    ) -> None:
        entry = (rkey, key[0], key[1])
        for body, adding in ((old, False), (new, True)):
            if body is None:
                continue
            for ref in body["metadata"].get("ownerReferences") or ():
                uid = ref.get("uid") if isinstance(ref, dict) else None
                if not isinstance(uid, str):
                    continue
                if adding:
                    self._dependents.setdefault(uid, set()).add(entry)
                else:
                    deps = self._dependents.get(uid)
                    if deps is not None:
                        deps.discard(entry)
                        if not deps:
                            del self._dependents[uid]

    # ---------------------------------------------------------------- create

    def create(
        self,
        resource: ResourceType,
        namespace: str,
        body: Obj,
        *,
        dry_run: bool = False,
        copy: bool = True,
        track: Track | None = None,
    ) -> Obj:
        """Store a new object; returns it as stored.

        With ``copy=False`` the store takes ``body`` over (a freshly parsed request body)
        instead of copying it; the caller must not use it afterwards. ``track`` is called
        with (None, the object as it will be stored) just before it is, and may change it
        or refuse the write by raising (field ownership).
        """
        obj = clone(body) if copy else body
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        obj = _typed(resource, obj)
        meta = obj["metadata"]
        body_namespace = meta.get("namespace")
        if resource.namespaced:
            if body_namespace and body_namespace != namespace:
                raise errors.bad_request(
                    "the namespace of the provided object does not match the namespace sent on"
                    " the request"
                )
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        name = meta.get("name")
        if not name:
            generate = meta.get("generateName")
            if not generate:
                raise errors.invalid(
                    resource.kind,
                    resource.group,
                    "",
                    [
                        (
                            "FieldValueRequired",
                            "metadata.name",
                            "Required value: name or generateName is required",
                        )
                    ],
                )
            if not isinstance(generate, str):
                raise errors.bad_request("metadata.generateName must be a string")
            name = generate + "".join(random.choices(_GENERATE_ALPHABET, k=5))
            meta["name"] = name
        if not isinstance(name, str):
            raise errors.bad_request("metadata.name must be a string")
        validate_name(resource, name)
        validate_metadata(resource, name, meta)
        if resource.namespaced:
            self._check_namespace_open(namespace)
        if (meta.get("namespace", ""), name) in self.bucket(resource.key):
            raise errors.already_exists(resource.group, resource.plural, name)
        if resource.custom:
            self._check_crd_open(resource)

        for field in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(field, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_timestamp()
        if resource.has_generation:
            meta["generation"] = 1
        else:
            meta.pop("generation", None)
        if "status" in resource.subresources and resource.key != NAMESPACE_KEY:
            obj.pop("status", None)
        self._prepare_builtin(resource, obj, None)
        if resource.key == CRD_KEY:
            validate_crd(obj, self.registry)
            obj["status"] = _crd_status(obj)
        if track is not None:
            track(None, obj)
        if dry_run:
            return obj
        self._commit(resource, "ADDED", obj, None)
        if resource.key == CRD_KEY:
            self._register_crd(obj)
        elif resource.key == NAMESPACE_KEY:
            self._ensure_default_service_account(obj["metadata"]["name"])
        return obj

    def _ensure_default_service_account(self, namespace: str) -> None:
        """Every open namespace has a ``default`` service account, as a real cluster's
        service account controller makes it: on the namespace's creation, and again after it
        is deleted."""
        accounts = self.registry.get(SERVICE_ACCOUNT_KEY)
        ns = self.bucket(NAMESPACE_KEY).get(("", namespace))
        if accounts is None or ns is None or ns["metadata"].get("deletionTimestamp"):
            return
        if (namespace, "default") not in self.bucket(SERVICE_ACCOUNT_KEY):
            self.create(accounts, namespace, {"metadata": {"name": "default"}})

    def _prepare_builtin(self, resource: ResourceType, obj: Obj, old: Obj | None) -> None:
        key = resource.key
        builtin_defaults(key, obj)
        if key in _JOB_TEMPLATES:
            _check_job_restart_policy(resource, obj)
        if key == NAMESPACE_KEY:
            obj.setdefault("spec", {})
            obj["spec"]["finalizers"] = ["kubernetes"]
            if old is None:
                obj["status"] = {"phase": "Active"}
        elif key == ("", "secrets"):
            string_data = obj.pop("stringData", None)
            if string_data:
                import base64

                data = obj.setdefault("data", {}) or {}
                obj["data"] = data
                for k, v in string_data.items():
                    data[k] = base64.b64encode(str(v).encode()).decode()
            obj.setdefault("type", "Opaque")
        elif key == ("", "services"):
            allocate_service(obj, old, self.bucket(key).values())
        elif key == ("", "pods") and old is None:
            obj["status"] = {"phase": "Pending"}

    def _check_namespace_open(self, namespace: str) -> None:
        ns = self.bucket(NAMESPACE_KEY).get(("", namespace))
        if ns is None:
            raise errors.not_found("", "namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                f"unable to create new content in namespace {namespace} because it is being"
                " terminated",
                reason="Forbidden",
                details={
                    "name": namespace,
                    "kind": "namespaces",
                    "causes": [
                        {
                            "reason": "NamespaceTerminating",
                            "message": f"namespace {namespace} is being terminated",
                            "field": "metadata.namespace",
                        }
                    ],
                },
            )

    def _check_crd_open(self, resource: ResourceType) -> None:
        crd = self.bucket(CRD_KEY).get(("", resource.qualified))
        if crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise ApiError(
                405,
                "create not allowed while custom resource definition is terminating",
                reason="MethodNotAllowed",
            )

    # ---------------------------------------------------------------- update

    def update(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        body: Obj,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        require_version: bool = True,
        track: Track | None = None,
    ) -> Obj:
        """Replace an object (PUT, or the result of a patch); returns it as stored.

        ``track`` is called with (the stored object, the new one) before the write is
        committed, as in :meth:`create`.
        """
        old = self.get(resource, namespace, name)
        new = clone(body)
        meta = new.get("metadata")
        if meta is None:
            meta = new["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        if meta.get("name") and meta["name"] != name:
            raise errors.bad_request(
                f"the name of the object ({meta['name']}) does not match the name on the URL"
                f" ({name})"
            )
        if resource.namespaced and meta.get("namespace") and meta["namespace"] != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the"
                " request"
            )
        old_meta = old["metadata"]
        rv = meta.get("resourceVersion")
        if rv:
            if rv != old_meta["resourceVersion"]:
                raise errors.conflict(
                    resource.group,
                    resource.plural,
                    name,
                    "the object has been modified; please apply your changes to the latest"
                    " version and try again",
                )
        elif require_version and resource.custom:
            raise errors.invalid(
                resource.kind,
                resource.group,
                name,
                [
                    (
                        "FieldValueInvalid",
                        "metadata.resourceVersion",
                        "Invalid value: 0x0: must be specified for an update",
                    )
                ],
            )
        _check_uid(resource, name, meta.get("uid"), old_meta)

        if subresource == "status":
            status = new.get("status")
            new = clone(old)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = status
            meta = new["metadata"]
        else:
            if "status" in resource.subresources:
                if "status" in old:
                    new["status"] = clone(old["status"])
                else:
                    new.pop("status", None)
            validate_metadata(resource, name, meta)
            new = _typed(resource, new)
            meta["name"] = name
            if resource.namespaced:
                meta["namespace"] = namespace
            else:
                meta.pop("namespace", None)
            for field in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
            ):
                if field in old_meta:
                    meta[field] = old_meta[field]
                else:
                    meta.pop(field, None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
                if added:
                    raise errors.invalid(
                        resource.kind,
                        resource.group,
                        name,
                        [
                            (
                                "FieldValueForbidden",
                                "metadata.finalizers",
                                f"Forbidden: no new finalizers can be added if the object is being deleted, found new finalizers {sorted(added)!r}",
                            )
                        ],
                    )
            self._prepare_builtin(resource, new, old)
            if resource.key == CRD_KEY:
                validate_crd(new, self.registry, old=old)
                new["status"] = _crd_status(new, old.get("status"))
            if resource.has_generation:
                generation = old_meta.get("generation", 1)
                if _spec_part(resource, new) != _spec_part(resource, old):
                    generation += 1
                meta["generation"] = generation
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if track is not None:
            track(old, new)
        if new == old:
            return old  # a no-op: no new version, no event
        if dry_run:
            return new
        finalized = bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
        if finalized:
            meta.pop("finalizers", None)
            self._remove(resource, new, old)
            return new
        self._commit(resource, "MODIFIED", new, old)
        if resource.key == CRD_KEY:
            self._register_crd(new)
        return new

    # ---------------------------------------------------------------- delete

    def delete(
        self,
        resource: ResourceType,
        namespace: str,
        name: str,
        *,
        propagation: str | None = None,
        preconditions: dict[str, Any] | None = None,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete an object or start its deletion; returns (its last state, fully gone)."""
        obj = self.get(resource, namespace, name)
        meta = obj["metadata"]
        if preconditions:
            _check_uid(resource, name, preconditions.get("uid"), meta)
            rv = preconditions.get("resourceVersion")
            if rv and rv != meta["resourceVersion"]:
                raise errors.conflict(
                    resource.group,
                    resource.plural,
                    name,
                    f"Precondition failed: ResourceVersion in precondition: {rv},"
                    f" ResourceVersion in object meta: {meta['resourceVersion']}",
                )
        if propagation not in (None, "Background", "Foreground", "Orphan"):
            raise errors.invalid(
                "DeleteOptions",
                "",
                "",
                [
                    (
                        "FieldValueNotSupported",
                        "propagationPolicy",
                        f'Unsupported value: "{propagation}": supported values: "Foreground", "Background", "Orphan"',
                    )
                ],
            )
        if resource.key == NAMESPACE_KEY and name in DEFAULT_NAMESPACES:
            raise ApiError(
                403,
                f'namespaces "{name}" is forbidden: this namespace may not be deleted',
                reason="Forbidden",
                details={"name": name, "kind": "namespaces"},
            )
        if dry_run:
            return obj, not meta.get("finalizers")
        if resource.key == NAMESPACE_KEY:
            return self._delete_namespace(resource, obj)
        if resource.key == CRD_KEY:
            return self._delete_crd(resource, obj)
        dependents = self._live_dependents(meta["uid"])
        if propagation == "Orphan":
            self._orphan(meta["uid"])
            obj = self.get(resource, namespace, name)
        elif propagation == "Foreground" and dependents:
            obj = self._mark_deleting(resource, obj, add_finalizer=FOREGROUND)
            for dep_resource, dep in dependents:
                self._delete_dependent(dep_resource, dep, meta["uid"], foreground=True)
            self._check_foreground(obj["metadata"]["uid"])
            current = self.find(resource, namespace, name)
            return (current or obj), current is None
        if obj["metadata"].get("finalizers"):
            if obj["metadata"].get("deletionTimestamp"):
                return obj, False
            return self._mark_deleting(resource, obj), False
        self._remove(resource, clone(obj), obj)
        return obj, True

    def _mark_deleting(
        self, resource: ResourceType, obj: Obj, *, add_finalizer: str | None = None
    ) -> Obj:
        new = clone(obj)
        meta = new["metadata"]
        if not meta.get("deletionTimestamp"):
            meta["deletionTimestamp"] = now_timestamp()
            meta["deletionGracePeriodSeconds"] = 0
        if add_finalizer and add_finalizer not in (meta.get("finalizers") or ()):
            meta["finalizers"] = [*(meta.get("finalizers") or ()), add_finalizer]
        if resource.key == NAMESPACE_KEY:
            new.setdefault("status", {})["phase"] = "Terminating"
        return self._commit(resource, "MODIFIED", new, obj)

    def _remove(self, resource: ResourceType, final: Obj, old: Obj) -> None:
        """Remove an object for good: a DELETED event, then garbage collection."""
        meta = final["metadata"]
        self._commit(resource, "DELETED", final, old)
        uid = meta["uid"]
        namespace = meta.get("namespace", "")
        # Dependents whose owners are now all gone are collected (in the background mode).
        for dep_resource, dep in self._live_dependents(uid):
            self._delete_dependent(dep_resource, dep, uid, foreground=False)
        # Owners waiting in the foreground for their dependents may now finish.
        for ref in meta.get("ownerReferences") or ():
            if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
                self._check_foreground(ref["uid"])
        if resource.namespaced and namespace:
            self._check_namespace_finished(namespace)
        if resource.key == SERVICE_ACCOUNT_KEY and meta.get("name") == "default":
            self._ensure_default_service_account(namespace)
        if resource.custom:
            self._check_crd_finished(resource)

    def _live_dependents(self, uid: str) -> list[tuple[ResourceType, Obj]]:
        result: list[tuple[ResourceType, Obj]] = []
        for rkey, namespace, name in sorted(self._dependents.get(uid, ())):
            resource = self.registry.get(rkey)
            obj = self.bucket(rkey).get((namespace, name))
            if resource is not None and obj is not None:
                result.append((resource, obj))
        return result

    def _find_uid(self, uid: str) -> Obj | None:
        where = self._by_uid.get(uid)
        if where is None:
            return None
        rkey, namespace, name = where
        return self.bucket(rkey).get((namespace, name))

    def _delete_dependent(
        self, resource: ResourceType, dep: Obj, owner_uid: str, *, foreground: bool
    ) -> None:
        meta = dep["metadata"]
        refs = [r for r in meta.get("ownerReferences") or () if isinstance(r, dict)]
        others = [r for r in refs if r.get("uid") != owner_uid]
        owner = self._find_uid(owner_uid)
        owner_gone = owner is None or bool(owner["metadata"].get("deletionTimestamp"))
        if owner_gone and any(self._find_uid(str(r.get("uid"))) is not None for r in others):
            # Other owners still exist: only the reference to the one going away goes.
            new = clone(dep)
            new["metadata"]["ownerReferences"] = others
            self._commit(resource, "MODIFIED", new, dep)
            return
        namespace = meta.get("namespace", "")
        if self.find(resource, namespace, meta["name"]) is None:
            return
        if meta.get("deletionTimestamp"):
            return
        self.delete(
            resource,
            namespace,
            meta["name"],
            propagation="Foreground" if foreground else "Background",
        )

    def _orphan(self, uid: str) -> None:
        for resource, dep in self._live_dependents(uid):
            new = clone(dep)
            refs = [r for r in new["metadata"].get("ownerReferences") or () if r.get("uid") != uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            self._commit(resource, "MODIFIED", new, dep)

    def _check_foreground(self, owner_uid: str) -> None:
        owner = self._find_uid(owner_uid)
        if owner is None:
            return
        meta = owner["metadata"]
        if FOREGROUND not in (meta.get("finalizers") or ()):
            return
        for _, dep in self._live_dependents(owner_uid):
            for ref in dep["metadata"].get("ownerReferences") or ():
                if ref.get("uid") == owner_uid and ref.get("blockOwnerDeletion"):
                    return  # still blocked
        resource = self._resource_of(owner)
        if resource is None:
            return
        new = clone(owner)
        new["metadata"]["finalizers"] = [f for f in meta["finalizers"] if f != FOREGROUND]
        if new["metadata"]["finalizers"]:
            self._commit(resource, "MODIFIED", new, owner)
        else:
            new["metadata"].pop("finalizers")
            self._remove(resource, new, owner)

    def _resource_of(self, obj: Obj) -> ResourceType | None:
        where = self._by_uid.get(obj["metadata"].get("uid", ""))
        return self.registry.get(where[0]) if where is not None else None

    # ---------------------------------------------------------------- namespaces & CRDs

    def _delete_namespace(self, resource: ResourceType, ns: Obj) -> tuple[Obj, bool]:
        name = ns["metadata"]["name"]
        if not ns["metadata"].get("deletionTimestamp"):
            ns = self._mark_deleting(resource, ns)
        for other in self.registry.all():
            if not other.namespaced:
                continue
            for obj in list(self.iter_objects(other, name)):
                current = self.find(other, name, obj["metadata"]["name"])
                if current is not None and not current["metadata"].get("deletionTimestamp"):
                    self.delete(other, name, obj["metadata"]["name"])
        self._check_namespace_finished(name)
        current = self.find(resource, "", name)
        return (current or ns), current is None

    def _check_namespace_finished(self, namespace: str) -> None:
        namespaces = self.registry.get(NAMESPACE_KEY)
        assert namespaces is not None
        ns = self.find(namespaces, "", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if ns["metadata"].get("finalizers"):
            return
        for other in self.registry.all():
            if other.namespaced and next(self.iter_objects(other, namespace), None) is not None:
                return
        final = clone(ns)
        final["spec"]["finalizers"] = []
        self._remove(namespaces, final, ns)

    def _delete_crd(self, resource: ResourceType, crd: Obj) -> tuple[Obj, bool]:
        name = crd["metadata"]["name"]
        if not crd["metadata"].get("deletionTimestamp"):
            crd = self._mark_deleting(resource, crd)
        served = self._crd_resource(crd)
        if served is not None:
            for obj in list(self.iter_objects(served, None)):
                meta = obj["metadata"]
                current = self.find(served, meta.get("namespace", ""), meta["name"])
                if current is not None and not current["metadata"].get("deletionTimestamp"):
                    self.delete(served, meta.get("namespace", ""), meta["name"])
            self._check_crd_finished(served)
        current = self.find(resource, "", name)
        return (current or crd), current is None

    def _crd_resource(self, crd: Obj) -> ResourceType | None:
        spec = crd.get("spec") or {}
        return self.registry.get(
            (spec.get("group", ""), (spec.get("names") or {}).get("plural", ""))
        )

    def _check_crd_finished(self, resource: ResourceType) -> None:
        crds = self.registry.get(CRD_KEY)
        assert crds is not None
        crd = self.find(crds, "", resource.qualified)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        if crd["metadata"].get("finalizers"):
            return
        if next(self.iter_objects(resource, None), None) is not None:
            return
        self._remove(crds, clone(crd), crd)
        self._unregister(resource.key)

    def _register_crd(self, crd: Obj) -> None:
        from trikopf.apiserver.resources import resource_from_crd

        resource = resource_from_crd(crd)
        previous = self.registry.get(resource.key)
        if previous is not None and not previous.custom:
            return
        self.registry.add(resource)
        self.wake_all()

    def _unregister(self, key: Key) -> None:
        self.registry.remove(key)
        self._raw.pop(key, None)
        for obj in self._data.pop(key, {}).values():
            self._by_uid.pop(obj["metadata"]["uid"], None)
        self._epochs[key] = self.epoch(key) + 1
        log = self._logs.pop(key, None)
        if log is not None:
            log.wake()

    # ---------------------------------------------------------------- persistence

    def snapshot(self) -> dict[str, Any]:
        objects = []
        for key, bucket in self._data.items():
            for obj in bucket.values():
                objects.append({"group": key[0], "plural": key[1], "object": obj})
        return {"resourceVersion": self.rv, "objects": objects}

    def restore(self, state: dict[str, Any]) -> None:
        """Load objects saved by :meth:`snapshot` (CRDs first, so their kinds exist)."""
        entries: list[dict[str, Any]] = list(state.get("objects") or ())
        entries.sort(key=lambda e: (e["group"], e["plural"]) != CRD_KEY)
        for entry in entries:
            key = (entry["group"], entry["plural"])
            obj = entry["object"]
            meta = obj["metadata"]
            self.bucket(key)[(meta.get("namespace", ""), meta["name"])] = obj
            self._index_owners(key, (meta.get("namespace", ""), meta["name"]), None, obj)
            self._by_uid[meta["uid"]] = (key, meta.get("namespace", ""), meta["name"])
            if key == CRD_KEY:
                self._register_crd(obj)
        self.rv = max(self.rv, int(state.get("resourceVersion", 1)))
        # The events before the restart are gone: resuming from them must get 410.
        self.history_floor = self.rv
        for log in self._logs.values():
            log.compacted_rv = self.rv

    def all_objects(self) -> Iterable[tuple[Key, Obj]]:
        for key, bucket in self._data.items():
            for obj in bucket.values():
                yield key, obj


def _check_uid(resource: ResourceType, name: str, uid: Any, meta: Obj) -> None:
    """Refuse a write whose UID precondition names another object than the stored one."""
    if uid and uid != meta["uid"]:
        raise errors.conflict(
            resource.group,
            resource.plural,
            name,
            f"Precondition failed: UID in precondition: {uid}, UID in object meta: {meta['uid']}",
        )


def _typed(resource: ResourceType, obj: Obj) -> Obj:
    """The object with apiVersion and kind set, and first (as the real server orders them)."""
    rest = {k: v for k, v in obj.items() if k not in ("apiVersion", "kind")}
    return {"apiVersion": resource.api_version(), "kind": resource.kind, **rest}


def _spec_part(resource: ResourceType, obj: Obj) -> Obj:
    """What a change of bumps the generation: everything but metadata (and status)."""
    skip = {"metadata", "apiVersion", "kind"}
    if "status" in resource.subresources or not resource.custom:
        skip.add("status")
    return {k: v for k, v in obj.items() if k not in skip}


def _crd_status(crd: Obj, old_status: dict[str, Any] | None = None) -> dict[str, Any]:
    now = now_timestamp()
    names = dict(crd["spec"]["names"])
    names.setdefault("singular", names["kind"].lower())
    names.setdefault("listKind", names["kind"] + "List")
    stored = [v["name"] for v in crd["spec"].get("versions") or () if v.get("storage")]
    previous = list((old_status or {}).get("storedVersions") or ())
    stored_versions = previous + [v for v in stored if v not in previous]
    old_conditions = {c.get("type"): c for c in (old_status or {}).get("conditions") or ()}

    def condition(type_: str, reason: str, message: str) -> dict[str, Any]:
        old = old_conditions.get(type_)
        return {
            "type": type_,
            "status": "True",
            "lastTransitionTime": old["lastTransitionTime"] if old else now,
            "reason": reason,
            "message": message,
        }

    return {
        "conditions": [
            condition("NamesAccepted", "NoConflicts", "no conflicts found"),
            condition(
                "Established", "InitialNamesAccepted", "the initial names have been accepted"
            ),
        ],
        "acceptedNames": names,
        "storedVersions": stored_versions,
    }


# Where a Job's pod template is, by kind: its pods must not restart in place.
_JOB_TEMPLATES: dict[tuple[str, str], tuple[str, ...]] = {
    ("batch", "jobs"): ("spec", "template", "spec"),
    ("batch", "cronjobs"): ("spec", "jobTemplate", "spec", "template", "spec"),
}


def _check_job_restart_policy(resource: ResourceType, obj: Obj) -> None:
    """422 for a Job (or a CronJob's job template) whose pods would restart ``Always``."""
    path = _JOB_TEMPLATES[resource.key]
    spec: Any = obj
    for name in path:
        spec = spec.get(name) if isinstance(spec, dict) else None
    policy = spec.get("restartPolicy") if isinstance(spec, dict) else None
    if policy is None or policy in ("OnFailure", "Never"):
        return
    field = ".".join((*path, "restartPolicy"))
    raise errors.invalid(
        resource.kind,
        resource.group,
        str(obj.get("metadata", {}).get("name", "")),
        [
            (
                "FieldValueNotSupported",
                field,
                f'Unsupported value: "{policy}": supported values: "OnFailure", "Never"',
            )
        ],
    )
