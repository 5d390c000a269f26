"""JSON in and out: orjson when installed (fast), the standard library otherwise."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["clone", "dumps", "loads"]

orjson: Any
try:
    import orjson
except ImportError:  # pragma: no cover - orjson is in the test extras
    orjson = None


def _dumps_std(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


if orjson is not None:
    _orjson_dumps = orjson.dumps
    _orjson_loads = orjson.loads
    _OrjsonError: type[Exception] = orjson.JSONEncodeError
    _OrjsonDecodeError: type[Exception] = orjson.JSONDecodeError

    def dumps(obj: Any) -> bytes:
        """Compact JSON bytes."""
        try:
            return _orjson_dumps(obj)  # type: ignore[no-any-return,unused-ignore]
        except _OrjsonError:  # e.g. integers beyond 64 bits
            return _dumps_std(obj)

    def loads(data: bytes | str) -> Any:
        """Parse JSON; raises ValueError on malformed input."""
        try:
            return _orjson_loads(data)
        except _OrjsonDecodeError:
            return json.loads(data)  # big integers; real errors raise ValueError here

else:  # pragma: no cover
    dumps = _dumps_std

    def loads(data: bytes | str) -> Any:
        """Parse JSON; raises ValueError on malformed input."""
        return json.loads(data)


def clone(obj: Any) -> Any:
    """A deep copy of a JSON-shaped value."""
    return loads(dumps(obj))
