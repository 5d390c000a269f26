"""The types that handlers receive: read-only views of the object, the patch, and the memo.

``Body``, ``Spec``, ``Meta``, ``Status``, ``Labels`` and ``Annotations`` are live, read-only views
over the object as the watch delivered it: nothing is copied when a handler is called. To change
the object, write into ``patch`` (a :class:`Patch`): everything a round writes is sent together
after the handlers return.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from typing import Any

__all__ = [
    "Annotations",
    "Body",
    "Labels",
    "Logger",
    "Memo",
    "Meta",
    "Patch",
    "Spec",
    "Status",
]

Logger = logging.Logger | logging.LoggerAdapter  # type: ignore[type-arg]
"""What handlers receive as ``logger``: a per-object logger (a :class:`logging.LoggerAdapter`)."""

_EMPTY: Mapping[str, Any] = {}


class _View(Mapping[str, Any]):
    """A read-only mapping over a part of the raw object, without copying it."""

    __slots__ = ("_raw",)

    def __init__(self, raw: Mapping[str, Any] | None) -> None:
        self._raw: Mapping[str, Any] = raw if raw is not None else _EMPTY

    def __getitem__(self, key: str) -> Any:
        return self._raw[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._raw)

    def __len__(self) -> int:
        return len(self._raw)

    def __repr__(self) -> str:
        return repr(dict(self._raw))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return dict(self._raw) == dict(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]


class Spec(_View):
    """The object's ``spec`` (empty if it has none)."""

    __slots__ = ()


class Status(_View):
    """The object's ``status`` (empty if it has none)."""

    __slots__ = ()


class Labels(_View):
    """The object's ``metadata.labels``."""

    __slots__ = ()


class Annotations(_View):
    """The object's ``metadata.annotations``."""

    __slots__ = ()


class Meta(_View):
    """The object's ``metadata``, with shortcuts for the fields handlers use most."""

    __slots__ = ()

    @property
    def labels(self) -> Labels:
        return Labels(self._raw.get("labels"))

    @property
    def annotations(self) -> Annotations:
        return Annotations(self._raw.get("annotations"))

    @property
    def name(self) -> str | None:
        return self._raw.get("name")

    @property
    def namespace(self) -> str | None:
        return self._raw.get("namespace")

    @property
    def uid(self) -> str | None:
        return self._raw.get("uid")

    @property
    def creation_timestamp(self) -> str | None:
        return self._raw.get("creationTimestamp")

    @property
    def deletion_timestamp(self) -> str | None:
        return self._raw.get("deletionTimestamp")

    @property
    def finalizers(self) -> list[str]:
        return list(self._raw.get("finalizers") or ())


class Body(_View):
    """The whole object, read-only, with ``.spec``, ``.meta``/``.metadata`` and ``.status``."""

    __slots__ = ()

    @property
    def metadata(self) -> Meta:
        return Meta(self._raw.get("metadata"))

    meta = metadata

    @property
    def spec(self) -> Spec:
        return Spec(self._raw.get("spec"))

    @property
    def status(self) -> Status:
        return Status(self._raw.get("status"))

    @property
    def raw(self) -> Mapping[str, Any]:
        """The underlying parsed mapping (do not modify it: write into ``patch`` instead)."""
        return self._raw


class _Section(dict[str, Any]):
    """One part of a patch: a plain dict; ``None`` as a value removes the key (merge-patch)."""


class PatchMeta(_Section):
    """``patch.metadata``: with ``.labels`` and ``.annotations`` sections."""

    @property
    def labels(self) -> dict[str, Any]:
        return self.setdefault("labels", {})  # type: ignore[no-any-return]

    @property
    def annotations(self) -> dict[str, Any]:
        return self.setdefault("annotations", {})  # type: ignore[no-any-return]


class Patch(dict[str, Any]):
    """A JSON merge-patch that handlers fill in; sent with the rest of the round's changes.

    ``patch.spec["x"] = 1``, ``patch.status["phase"] = "Ready"``, ``patch.metadata.labels["a"] =
    "b"``; assigning ``None`` removes a key. Status goes to the status subresource when the
    resource has one.
    """

    __slots__ = ()

    @property
    def spec(self) -> dict[str, Any]:
        return self.setdefault("spec", {})  # type: ignore[no-any-return]

    @property
    def status(self) -> dict[str, Any]:
        return self.setdefault("status", {})  # type: ignore[no-any-return]

    @property
    def metadata(self) -> PatchMeta:
        section = self.get("metadata")
        if not isinstance(section, PatchMeta):
            section = PatchMeta(section or {})
            self["metadata"] = section
        return section

    meta = metadata


class Memo(dict[str, Any]):
    """A free-form in-memory store for handlers: ``memo.counter = 1``.

    The operator has one (given to startup, cleanup, login and probe handlers); each object gets
    a shallow copy of it when its handlers first run (as in Kopf), kept while the object lives
    and shared by that object's change handlers, daemons and timers. So plain assignments stay
    with their object, and mutable values that startup handlers put in (a list, a client) are
    shared by all. Keys are readable as attributes; a missing attribute raises
    :class:`AttributeError`.
    """

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(f"memo has no {name!r}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        self[name] = value

    def __delattr__(self, name: str) -> None:
        try:
            del self[name]
        except KeyError:
            raise AttributeError(f"memo has no {name!r}") from None
