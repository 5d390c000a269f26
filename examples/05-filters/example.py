"""Filters: handlers that apply only to objects with certain labels, annotations or specs."""

from __future__ import annotations

from typing import Any

import trikopf


@trikopf.on.create("kopfexamples", labels={"somelabel": "somevalue"})
def with_label_fn(**_: Any) -> str:
    return "the label has the value"


@trikopf.on.create("kopfexamples", labels={"somelabel": trikopf.ABSENT})
def without_label_fn(**_: Any) -> str:
    return "there is no such label"


@trikopf.on.create("kopfexamples", annotations={"someannotation": trikopf.PRESENT})
def with_annotation_fn(**_: Any) -> str:
    return "the annotation is there"


def is_long(spec: trikopf.Spec, **_: Any) -> bool:
    return len(spec.get("items", [])) > 1


@trikopf.on.create("kopfexamples", when=is_long)
def long_fn(spec: trikopf.Spec, **_: Any) -> int:
    return len(spec["items"])
