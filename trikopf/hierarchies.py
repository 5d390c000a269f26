"""Helpers for objects that a handler creates on behalf of its own object (Kopf's ``kopf.adopt``).

A handler that makes a child object (a Pod, a ConfigMap, ...) usually wants it owned by the
object being handled, so that Kubernetes garbage-collects it with its owner, named after it, in
the same namespace, and labelled like it. These helpers edit plain dicts (the bodies about to be
sent to the API) in place; they do no I/O and start nothing::

    @trikopf.on.create("kopfexamples")
    async def create_fn(body, **_):
        pod = {"apiVersion": "v1", "kind": "Pod", "spec": {...}}
        trikopf.adopt(pod)      # owner: the object of the running handler
        ...                     # create the pod with any client

``objs`` is one dict or a list/tuple of dicts. ``owner`` defaults to the object whose handler
is running (it is known inside handlers of objects, including daemons and timers, also in
worker threads of sync handlers); outside of handlers it must be given.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from typing import Any

__all__ = [
    "adjust_namespace",
    "adopt",
    "append_owner_reference",
    "build_object_reference",
    "build_owner_reference",
    "current_owner",
    "harmonize_naming",
    "label",
    "remove_owner_reference",
]

Objs = MutableMapping[str, Any] | Iterable[MutableMapping[str, Any]]

# The body of the object whose handler runs in this context (set around each handler call).
current_owner: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "trikopf_current_owner", default=None
)


def _each(objs: Any) -> Iterator[MutableMapping[str, Any]]:
    if isinstance(objs, Mapping):
        items: Iterable[Any] = [objs]
    elif isinstance(objs, (str, bytes)) or not isinstance(objs, Iterable):
        raise TypeError(f"Expected a dict or a list of dicts to adjust, got {objs!r}")
    else:
        items = objs
    for obj in items:
        if not isinstance(obj, MutableMapping):
            raise TypeError(
                f"Only plain (mutable) dicts can be adjusted, got {type(obj).__name__}: {obj!r}"
            )
        yield obj


def _meta(obj: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    meta = obj.get("metadata")
    if meta is None:
        meta = obj["metadata"] = {}
    return meta


def _owner(owner: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if owner is None:
        owner = current_owner.get()
    if owner is None:
        raise LookupError(
            "No owner: give owner= explicitly, or call this from a handler of an object "
            "(the object of the running handler is the default owner)"
        )
    return owner


def _owner_meta(owner: Mapping[str, Any]) -> Mapping[str, Any]:
    return owner.get("metadata") or {}


def build_object_reference(body: Mapping[str, Any]) -> dict[str, Any]:
    """A reference to ``body`` as used in Events' ``involvedObject`` (no namespace if none)."""
    meta = _owner_meta(body)
    ref = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
        "namespace": meta.get("namespace"),
    }
    return {key: value for key, value in ref.items() if value is not None}


def build_owner_reference(
    body: Mapping[str, Any], *, controller: bool = True, block_owner_deletion: bool = True
) -> dict[str, Any]:
    """An entry for another object's ``metadata.ownerReferences`` that points to ``body``.

    Raises :class:`ValueError` when ``body`` lacks what a reference needs (apiVersion, kind,
    name, uid): a reference without a uid would be refused by the API server anyway.
    """
    meta = _owner_meta(body)
    ref = {
        "apiVersion": body.get("apiVersion"),
        "kind": body.get("kind"),
        "name": meta.get("name"),
        "uid": meta.get("uid"),
    }
    missing = [key for key, value in ref.items() if not value]
    if missing:
        raise ValueError(f"The owner has no {', '.join(missing)}; it cannot own objects")
    ref["controller"] = controller
    ref["blockOwnerDeletion"] = block_owner_deletion
    return ref


def append_owner_reference(
    objs: Objs,
    owner: Mapping[str, Any] | None = None,
    *,
    controller: bool = True,
    block_owner_deletion: bool = True,
) -> None:
    """Make ``owner`` an owner of each object (once: an existing reference is kept as it is)."""
    ref = build_owner_reference(
        _owner(owner), controller=controller, block_owner_deletion=block_owner_deletion
    )
    for obj in _each(objs):
        refs = _meta(obj).setdefault("ownerReferences", [])
        if not any(isinstance(r, Mapping) and r.get("uid") == ref["uid"] for r in refs):
            refs.append(dict(ref))


def remove_owner_reference(objs: Objs, owner: Mapping[str, Any] | None = None) -> None:
    """Drop ``owner`` from the owners of each object (nothing happens where it is absent)."""
    uid = _owner_meta(_owner(owner)).get("uid")
    for obj in _each(objs):
        meta = _meta(obj)
        refs = meta.get("ownerReferences")
        if refs:
            meta["ownerReferences"] = [
                r for r in refs if not (isinstance(r, Mapping) and r.get("uid") == uid)
            ]


def harmonize_naming(
    objs: Objs, name: str | None = None, *, forced: bool = False, strict: bool = False
) -> None:
    """Name each object after ``name`` (the owner's name by default).

    Objects that already have a ``name`` or ``generateName`` keep it unless ``forced``. With
    ``strict``, ``metadata.name`` becomes exactly ``name`` (only one such object can exist);
    otherwise ``metadata.generateName`` becomes ``name-`` and the API server adds a suffix.
    """
    if name is None:
        name = _owner_meta(_owner(None)).get("name")
    if not name:
        raise ValueError("No name to harmonize with: give name= or an owner with a name")
    for obj in _each(objs):
        meta = _meta(obj)
        if not forced and (meta.get("name") or meta.get("generateName")):
            continue
        if strict:
            meta["name"] = name
            meta.pop("generateName", None)
        else:
            meta["generateName"] = f"{name}-"
            meta.pop("name", None)


def adjust_namespace(objs: Objs, namespace: str | None = None, *, forced: bool = False) -> None:
    """Put each object into ``namespace`` (the owner's by default), unless it names one already.

    A cluster-scoped owner has no namespace: then nothing is changed.
    """
    if namespace is None:
        namespace = _owner_meta(_owner(None)).get("namespace")
    if namespace is None:
        return
    for obj in _each(objs):
        meta = _meta(obj)
        if forced or not meta.get("namespace"):
            meta["namespace"] = namespace


def label(
    objs: Objs,
    labels: Mapping[str, str | None] | None = None,
    *,
    forced: bool = False,
    nested: str | Sequence[str] | None = None,
) -> None:
    """Give each object ``labels`` (the owner's labels by default) where it lacks them.

    An existing label keeps its value unless ``forced``. ``nested`` names inner templates
    (``"spec.template"`` of a Deployment or Job) whose ``metadata.labels`` get them too.
    """
    if labels is None:
        labels = _owner_meta(_owner(None)).get("labels") or {}
    paths = [nested] if isinstance(nested, str) else list(nested or ())
    for obj in _each(objs):
        targets = [obj]
        for path in paths:
            inner: MutableMapping[str, Any] = obj
            for part in path.split("."):
                inner = inner.setdefault(part, {})
                if not isinstance(inner, MutableMapping):
                    raise TypeError(f"{path!r} of {obj!r} is not a mapping; it cannot be labelled")
            targets.append(inner)
        for target in targets:
            existing = _meta(target).setdefault("labels", {})
            for key, value in labels.items():
                if forced or key not in existing:
                    existing[key] = value


def adopt(
    objs: Objs,
    owner: Mapping[str, Any] | None = None,
    *,
    forced: bool = False,
    strict: bool = False,
    nested: str | Sequence[str] | None = None,
) -> None:
    """Make each object a child of ``owner`` (the running handler's object by default).

    All of the above at once: an owner reference (so the child is garbage-collected with its
    owner), a name after the owner's (``generateName``, or the exact name with ``strict``), the
    owner's namespace, and the owner's labels (also on the ``nested`` templates).
    """
    owner = _owner(owner)
    meta = _owner_meta(owner)
    objs = list(_each(objs))  # a generator would be used up by the first step
    append_owner_reference(objs, owner)
    if meta.get("name"):
        harmonize_naming(objs, meta["name"], forced=forced, strict=strict)
    if meta.get("namespace"):
        adjust_namespace(objs, meta["namespace"], forced=forced)
    label(objs, meta.get("labels") or {}, forced=forced, nested=nested)
