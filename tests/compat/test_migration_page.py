"""Every name that ``docs/migrating-from-kopf.md`` promises exists on ``trikopf``, as promised."""

from __future__ import annotations

import importlib
import inspect
import pathlib
import re
from typing import Any

import pytest

import trikopf

PAGE = pathlib.Path(__file__).parents[2] / "docs" / "migrating-from-kopf.md"


def _section(marker: str) -> str:
    text = PAGE.read_text()
    start = text.index(f"<!-- {marker}:begin -->")
    end = text.index(f"<!-- {marker}:end -->")
    return text[start:end]


def _resolve(dotted: str) -> Any:
    """``kopf.on.create`` → ``trikopf.on.create``; submodules are imported as needed."""
    parts = dotted.split(".")[1:]
    obj: Any = trikopf
    path = "trikopf"
    for part in parts:
        path = f"{path}.{part}"
        obj = getattr(obj, part) if hasattr(obj, part) else importlib.import_module(path)
    return obj


NAMES = sorted(set(re.findall(r"`(kopf(?:\.\w+)+)", _section("names"))))
OPTIONS = [
    (row[0], row[1:])
    for line in _section("options").splitlines()
    if line.startswith("| `kopf")
    for row in [re.findall(r"`([\w.]+)`", line)]
]
SETTINGS = sorted(set(re.findall(r"`settings\.(\w+\.[\w.]+)`", _section("settings"))))


def test_the_page_lists_the_names_options_and_settings_it_promises() -> None:
    assert len(NAMES) > 60
    assert len(OPTIONS) == 12
    assert len(SETTINGS) > 15


@pytest.mark.parametrize("dotted", NAMES)
def test_every_name_on_the_migration_page_exists_on_trikopf(dotted: str) -> None:
    try:
        _resolve(dotted)
    except (AttributeError, ImportError) as exc:
        pytest.fail(f"{dotted} is promised by the migration page but missing: {exc}")


@pytest.mark.parametrize(("decorator", "options"), OPTIONS, ids=[d for d, _ in OPTIONS])
def test_every_decorator_takes_the_options_the_page_lists(
    decorator: str, options: list[str]
) -> None:
    parameters = inspect.signature(_resolve(decorator)).parameters
    missing = [option for option in options if option not in parameters]
    assert missing == []


@pytest.mark.parametrize("path", SETTINGS)
def test_every_settings_path_on_the_page_can_be_read_and_written(path: str) -> None:
    settings = trikopf.OperatorSettings()
    *groups, name = path.split(".")
    target: Any = settings
    for group in groups:
        target = getattr(target, group)
    value = getattr(target, name)
    setattr(target, name, value)  # assigning the default back passes the validators
    assert getattr(target, name) == value
