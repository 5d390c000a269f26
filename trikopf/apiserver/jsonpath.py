"""JSONPath as the API server evaluates it for CRD ``additionalPrinterColumns``.

The subset printer columns use: fields (``.spec.x``, ``.metadata.labels['a/b']``, escaped dots),
indexes and slices (``.items[0]``, ``.items[-1]``, ``.items[0:2]``), wildcards (``[*]``, ``.*``)
and equality filters (``[?(@.type=="Ready")]``). Pure; no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["JsonPathError", "evaluate_jsonpath"]


class JsonPathError(ValueError):
    """A printer-column JSONPath that cannot be parsed."""


_Step = Callable[[Any], list[Any]]

_FILTER_RE = re.compile(
    r"""^\?\(\s*@((?:\.[A-Za-z0-9_\-/]+|\['[^']*'\])*)\s*(==|!=)\s*(?:"([^"]*)"|'([^']*)'|(-?\d+(?:\.\d+)?)|(true|false))\s*\)$"""
)


def _field_step(name: str) -> _Step:
    def step(node: Any) -> list[Any]:
        if isinstance(node, Mapping) and name in node:
            return [node[name]]
        return []

    return step


def _wildcard(node: Any) -> list[Any]:
    if isinstance(node, Mapping):
        return list(node.values())
    if isinstance(node, list):
        return list(node)
    return []


def _index_step(text: str) -> _Step:
    if ":" in text:
        start_text, _, end_text = text.partition(":")
        start = int(start_text) if start_text.strip() else None
        end = int(end_text) if end_text.strip() else None

        def slice_step(node: Any) -> list[Any]:
            return list(node[start:end]) if isinstance(node, list) else []

        return slice_step
    index = int(text)

    def step(node: Any) -> list[Any]:
        if isinstance(node, list) and -len(node) <= index < len(node):
            return [node[index]]
        return []

    return step


def _filter_step(expression: str) -> _Step:
    match = _FILTER_RE.match(expression.strip())
    if match is None:
        raise JsonPathError(f"unsupported filter expression: [{expression}]")
    path, op, dq, sq, number, boolean = match.groups()
    steps = _parse_steps(path) if path else []
    expected: Any
    if dq is not None or sq is not None:
        expected = dq if dq is not None else sq
    elif number is not None:
        expected = float(number)
    else:
        expected = boolean == "true"

    def matches(item: Any) -> bool:
        values = _walk([item], steps)
        if not values:
            return op == "!="
        value = values[0]
        if isinstance(expected, float) and not isinstance(value, bool):
            equal = isinstance(value, (int, float)) and float(value) == expected
        else:
            equal = type(value) is type(expected) and value == expected
        return equal if op == "==" else not equal

    def step(node: Any) -> list[Any]:
        items = (
            node
            if isinstance(node, list)
            else list(node.values())
            if isinstance(node, Mapping)
            else []
        )
        return [item for item in items if matches(item)]

    return step


def _parse_steps(path: str) -> list[_Step]:
    steps: list[_Step] = []
    pos = 0
    while pos < len(path):
        char = path[pos]
        if char == ".":
            pos += 1
            if pos < len(path) and path[pos] == "*":
                steps.append(_wildcard)
                pos += 1
                continue
            name: list[str] = []
            while pos < len(path) and path[pos] not in ".[":
                if path[pos] == "\\" and pos + 1 < len(path):
                    pos += 1  # an escaped dot is part of the name (label keys)
                name.append(path[pos])
                pos += 1
            if name:
                steps.append(_field_step("".join(name)))
        elif char == "[":
            end = _closing_bracket(path, pos)
            inner = path[pos + 1 : end].strip()
            pos = end + 1
            if inner == "*":
                steps.append(_wildcard)
            elif inner.startswith("?"):
                steps.append(_filter_step(inner))
            elif len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
                steps.append(_field_step(inner[1:-1]))
            else:
                try:
                    steps.append(_index_step(inner))
                except ValueError:
                    raise JsonPathError(f"invalid array index: [{inner}]") from None
        else:
            raise JsonPathError(f"unexpected {char!r} at position {pos} in {path!r}")
    return steps


def _closing_bracket(path: str, start: int) -> int:
    depth = 0
    quote: str | None = None
    for index in range(start, len(path)):
        char = path[index]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
            if depth == 0:
                return index
    raise JsonPathError(f"unclosed bracket in {path!r}")


def _walk(nodes: list[Any], steps: Sequence[_Step]) -> list[Any]:
    for step in steps:
        nodes = [result for node in nodes for result in step(node)]
    return nodes


def evaluate_jsonpath(obj: Mapping[str, Any], path: str) -> list[Any]:
    """Evaluate a printer-column JSONPath (``.spec.x``, ``.a[0]``, ``.a[*].b``, filters).

    Curly braces around the expression (``{.spec.x}``) are accepted, as kubectl writes them.
    """
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    if text and not text.startswith((".", "[")):
        raise JsonPathError(f"JSONPath must start with '.' or '[': {path!r}")
    return _walk([obj], _parse_steps(text))
