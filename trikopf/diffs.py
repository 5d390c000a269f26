"""Diffs between two versions of an object's essence, as handlers receive them in ``diff=``.

A :class:`Diff` is a sequence of :class:`DiffItem` tuples ``(operation, field, old, new)``:

```python
for op, field, old, new in diff:
    if op == "change" and field == ("spec", "size"):
        ...
```

``field`` is a tuple of keys from the object's root. Mappings are compared key by key; any other
value (lists included) is compared as a whole. Everything here is pure and does no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any, NamedTuple, overload

__all__ = [
    "Diff",
    "DiffItem",
    "DiffOperation",
    "FieldPath",
    "diff",
    "parse_field",
    "reduce",
    "resolve",
]

FieldPath = tuple[str, ...]


class DiffOperation(str, enum.Enum):
    """What happened to one field: it appeared, it changed its value, or it disappeared."""

    ADD = "add"
    CHANGE = "change"
    REMOVE = "remove"

    def __str__(self) -> str:
        return self.value


class DiffItem(NamedTuple):
    """One difference: ``operation`` at ``field``, from ``old`` to ``new`` (``None`` if absent)."""

    operation: DiffOperation
    field: FieldPath
    old: Any
    new: Any


class Diff(Sequence[DiffItem]):
    """An immutable, ordered sequence of :class:`DiffItem`; empty when nothing changed."""

    __slots__ = ("_items",)

    def __init__(self, items: Iterable[DiffItem] = ()) -> None:
        self._items: tuple[DiffItem, ...] = tuple(items)

    @overload
    def __getitem__(self, index: int) -> DiffItem: ...
    @overload
    def __getitem__(self, index: slice) -> Diff: ...
    def __getitem__(self, index: int | slice) -> DiffItem | Diff:
        if isinstance(index, slice):
            return Diff(self._items[index])
        return self._items[index]

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[DiffItem]:
        return iter(self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Diff):
            return self._items == other._items
        if isinstance(other, (list, tuple)):
            return list(self._items) == [tuple(item) for item in other]
        return NotImplemented

    def __hash__(self) -> int:
        return hash(self._items)

    def __repr__(self) -> str:
        return f"Diff({list(self._items)!r})"


def parse_field(field: str | Sequence[str] | None) -> FieldPath:
    """Turn ``"spec.a.b"`` or ``["spec", "a", "b"]`` into ``("spec", "a", "b")``.

    Raises :class:`ValueError` for an empty path or empty segments (``"spec..a"``).
    """
    if field is None:
        return ()
    parts: tuple[str, ...]
    parts = tuple(field.split(".")) if isinstance(field, str) else tuple(field)
    if not parts or any(not isinstance(p, str) or not p for p in parts):
        raise ValueError(f"A field path needs non-empty dot-separated keys, got {field!r}")
    return parts


def resolve(obj: Mapping[str, Any] | None, field: FieldPath, default: Any = None) -> Any:
    """The value at ``field`` inside ``obj``, or ``default`` when any key on the way is absent."""
    value: Any = obj
    for key in field:
        if not isinstance(value, Mapping) or key not in value:
            return default
        value = value[key]
    return value


def diff(old: Any, new: Any, *, field: FieldPath = ()) -> Diff:
    """The differences that turn ``old`` into ``new``, with paths prefixed by ``field``.

    Mappings are walked key by key (keys in ``old``'s order, then the new ones); other values are
    compared with ``==``. A missing value and ``None`` are the same thing (as in merge-patches).
    """
    return Diff(_walk(old, new, field))


def _walk(old: Any, new: Any, path: FieldPath) -> Iterator[DiffItem]:
    if old == new:
        return
    if old is None:
        yield DiffItem(DiffOperation.ADD, path, None, new)
    elif new is None:
        yield DiffItem(DiffOperation.REMOVE, path, old, None)
    elif isinstance(old, Mapping) and isinstance(new, Mapping):
        for key, value in old.items():
            yield from _walk(value, new.get(key), (*path, key))
        for key, value in new.items():
            if key not in old:
                yield from _walk(None, value, (*path, key))
    else:
        yield DiffItem(DiffOperation.CHANGE, path, old, new)


def reduce(d: Diff, field: FieldPath) -> Diff:
    """The part of a diff that is inside ``field``, with paths made relative to ``field``.

    A change of a parent (``spec`` replaced as a whole) is narrowed down to the field's own values.
    """
    if not field:
        return d
    items: list[DiffItem] = []
    for op, path, old, new in d:
        if path[: len(field)] == field:
            items.append(DiffItem(op, path[len(field) :], old, new))
        elif field[: len(path)] == path:
            rest = field[len(path) :]
            items.extend(diff(resolve(old, rest), resolve(new, rest)))
    return Diff(items)
