"""One JSON parse per body: orjson when installed (the ``fast`` extra), else the stdlib."""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable
from typing import Any

__all__ = ["BACKEND", "dumps", "loads"]


def _std_dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


loads: Callable[[bytes | bytearray | str], Any]
dumps: Callable[[Any], bytes]

try:
    _orjson = importlib.import_module("orjson")
except ImportError:  # pragma: no cover - exercised where orjson is absent
    BACKEND = "json"
    loads = json.loads
    dumps = _std_dumps
else:
    BACKEND = "orjson"
    loads = _orjson.loads
    dumps = _orjson.dumps
