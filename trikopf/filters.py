"""Filters that decide whether a handler applies to an object: pure checks, no I/O.

A filter value in ``labels={...}``, ``annotations={...}``, ``value=``, ``old=`` and ``new=`` is:

- a literal (a string, a number, ...): the value must be equal to it;
- :data:`PRESENT` / :data:`ABSENT`: the key or field must exist / must not exist;
- a callable ``fn(value, **kwargs) -> bool``: it decides (it receives the value, or ``None`` when
  absent, and the handler's keyword arguments).

``when=fn(**kwargs) -> bool`` sees the same keyword arguments as the handler.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "ABSENT",
    "PRESENT",
    "FilterValue",
    "Marker",
    "MetaFilter",
    "check_meta_filter",
    "check_value",
    "validate_filter_value",
    "validate_meta_filter",
]


class Marker(enum.Enum):
    """Markers for filters: a key or field must be present, or must be absent."""

    PRESENT = "present"
    ABSENT = "absent"

    def __repr__(self) -> str:
        return f"trikopf.{self.name}"


PRESENT = Marker.PRESENT
ABSENT = Marker.ABSENT

FilterValue = (
    str | int | float | bool | Marker | Callable[..., bool] | Mapping[str, Any] | list[Any]
)
MetaFilter = Mapping[str, FilterValue]

_MISSING: Any = object()


def check_value(expected: Any, actual: Any, kwargs: Mapping[str, Any]) -> bool:
    """Whether ``actual`` passes the filter ``expected`` (``_MISSING``/``None`` means absent)."""
    present = actual is not _MISSING and actual is not None
    if expected is PRESENT:
        return present
    if expected is ABSENT:
        return not present
    if callable(expected):
        return bool(expected(actual if present else None, **kwargs))
    return present and bool(actual == expected)


def check_meta_filter(
    filters: MetaFilter | None, values: Mapping[str, Any] | None, kwargs: Mapping[str, Any]
) -> bool:
    """Whether the object's ``labels``/``annotations`` (``values``) pass every key's filter."""
    if not filters:
        return True
    values = values or {}
    return all(
        check_value(expected, values.get(key, _MISSING), kwargs)
        for key, expected in filters.items()
    )


def validate_filter_value(what: str, value: Any) -> None:
    """Reject filter values that can never match, with a message naming the option."""
    if value is None:
        raise TypeError(
            f"{what}: None is not a filter; use trikopf.ABSENT for 'must be absent' "
            "or leave the option out"
        )


def validate_meta_filter(what: str, filters: Any) -> None:
    """Check a ``labels=``/``annotations=`` option: a mapping of string keys to filter values."""
    if filters is None:
        return
    if not isinstance(filters, Mapping):
        raise TypeError(f"{what}= must be a mapping of keys to filter values, got {filters!r}")
    for key, value in filters.items():
        if not isinstance(key, str) or not key:
            raise TypeError(f"{what}= keys must be non-empty strings, got {key!r}")
        validate_filter_value(f"{what}[{key!r}]", value)
