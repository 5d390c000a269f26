"""The one cattrs converter: attrs bodies ↔ Kubernetes JSON (camelCase on the wire).

Every attrs class structured or unstructured by trikopf goes through :data:`converter`. Its one
hook factory renames ``snake_case`` attributes to ``camelCase`` keys (a trailing underscore is
dropped, so ``continue_`` is ``continue``), drops unknown keys when reading, and omits attributes
at their default when writing. Bodies that the framework reads keep the raw mapping beside them;
writes go out as patches, so dropped unknown fields are never lost on the server.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override

__all__ = [
    "SpecError",
    "converter",
    "structure",
    "structure_spec",
    "to_camel",
    "unstructure",
]

T = TypeVar("T")


def to_camel(name: str) -> str:
    """``owner_references`` → ``ownerReferences``; ``continue_`` → ``continue``."""
    name = name.rstrip("_")
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


_ALWAYS_WRITTEN = frozenset({"api_version", "kind"})

DROP_NULLS = "__trikopf_drop_nulls__"
"""A class attribute: when true, ``null`` values are read as absent (the field's default)."""


def _make_converter() -> cattrs.Converter:
    conv = cattrs.Converter(detailed_validation=True)

    def structure_factory(cls: type[Any]) -> Callable[[Any, type[Any]], Any]:
        overrides = {a.name: override(rename=to_camel(a.name)) for a in attrs.fields(cls)}
        fn = make_dict_structure_fn(cls, conv, **overrides)  # type: ignore[arg-type]
        if not getattr(cls, DROP_NULLS, False):
            return fn

        def without_nulls(raw: Any, target: type[Any]) -> Any:
            # The API writes `null` for absent lists and maps (`labels: null`): take defaults.
            if isinstance(raw, Mapping):
                raw = {k: v for k, v in raw.items() if v is not None}
            return fn(raw, target)

        return without_nulls

    def unstructure_factory(cls: type[Any]) -> Callable[[Any], Any]:
        # apiVersion and kind identify a body on the wire: always written, even at default.
        overrides = {
            a.name: override(
                rename=to_camel(a.name),
                omit_if_default=False if a.name in _ALWAYS_WRITTEN else None,
            )
            for a in attrs.fields(cls)
        }
        return make_dict_unstructure_fn(
            cls,
            conv,
            _cattrs_omit_if_default=True,
            **overrides,  # type: ignore[arg-type]
        )

    conv.register_structure_hook_factory(attrs.has, structure_factory)
    conv.register_unstructure_hook_factory(attrs.has, unstructure_factory)
    return conv


converter: cattrs.Converter = _make_converter()


def structure(raw: Mapping[str, Any], cls: type[T]) -> T:
    """Build an attrs body from its wire mapping (camelCase keys); unknown keys are dropped."""
    return converter.structure(raw, cls)


def unstructure(obj: Any) -> dict[str, Any]:
    """The wire mapping of an attrs body: camelCase keys, attributes at their default omitted."""
    result: dict[str, Any] = converter.unstructure(obj)
    return result


class SpecError(ValueError):
    """A raw mapping does not fit the attrs class a handler asked for.

    ``errors`` lists one message per offending field, each naming the field by its path in
    the object (``spec.replicas``).
    """

    def __init__(self, cls: type[Any], errors: list[str]) -> None:
        self.cls = cls
        self.errors = errors
        detail = "; ".join(errors)
        super().__init__(f"cannot read {cls.__qualname__}: {detail}")


def _field_errors(exc: BaseException, path: str) -> list[str]:
    """Walk cattrs' detailed validation errors into ``path: problem`` lines (wire names)."""
    messages: list[str] = []
    if isinstance(exc, cattrs.ClassValidationError):
        with_notes, others = exc.group_exceptions()
        for sub, attr_note in with_notes:
            messages.extend(_field_errors(sub, f"{path}.{to_camel(attr_note.name)}"))
        for sub in others:
            messages.extend(_field_errors(sub, path))
        return messages
    if isinstance(exc, cattrs.IterableValidationError):
        item_notes, others = exc.group_exceptions()
        for sub, item_note in item_notes:
            messages.extend(_field_errors(sub, f"{path}[{item_note.index!r}]"))
        for sub in others:
            messages.extend(_field_errors(sub, path))
        return messages
    if isinstance(exc, KeyError):
        return [f"{path}: required field is missing"]
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return [f"{path}: unknown fields {sorted(exc.extra_fields)}"]
    text = str(exc) or type(exc).__name__
    return [f"{path}: {text}"]


def structure_spec(raw: Any, cls: type[T], *, path: str = "spec") -> T:
    """Structure a user's raw spec into their attrs class ``cls``.

    Raises :class:`SpecError` whose message names every offending field by its wire path
    (``spec.template.replicas: invalid literal for int()``); unknown keys are ignored.
    """
    if not isinstance(raw, Mapping):
        raise SpecError(cls, [f"{path}: expected an object, got {type(raw).__name__}"])
    try:
        return converter.structure(raw, cls)
    except Exception as exc:
        raise SpecError(cls, _field_errors(exc, path) or [f"{path}: {exc}"]) from None
