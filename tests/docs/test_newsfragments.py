"""The changelog fragments are named and written so that towncrier collects every one of them.

towncrier silently skips a file whose name it does not understand (a typo in the type, a
missing issue number), so ``towncrier build --draft`` alone would not notice a lost entry.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from .codeblocks import ROOT

if sys.version_info >= (3, 11):
    import tomllib
else:  # pytest brings tomli on Python 3.10
    import tomli as tomllib

NAME = re.compile(r"^(?P<issue>[1-9][0-9]*)\.(?P<type>[a-z]+)(?:\.(?P<n>[1-9][0-9]*))?\.md$")


def towncrier_config() -> dict[str, Any]:
    with (ROOT / "pyproject.toml").open("rb") as f:
        config: dict[str, Any] = tomllib.load(f)["tool"]["towncrier"]
    return config


def test_the_fragment_types_are_feature_bugfix_doc_and_misc() -> None:
    config = towncrier_config()
    assert [t["directory"] for t in config["type"]] == ["feature", "bugfix", "doc", "misc"]
    assert config["directory"] == "newsfragments"
    assert (ROOT / config["filename"]).is_file()
    assert config["start_string"].strip() in (ROOT / config["filename"]).read_text()


def test_every_fragment_is_named_issue_type_md_and_says_something() -> None:
    types = {t["directory"] for t in towncrier_config()["type"]}
    fragments = sorted((ROOT / "newsfragments").iterdir())
    assert fragments, "newsfragments/ is empty"
    for path in fragments:
        if path.name in {".gitignore", ".gitkeep"}:
            continue
        match = NAME.match(path.name)
        assert match is not None, (
            f"newsfragments/{path.name}: name it <issue>.<type>.md or <issue>.<type>.<n>.md"
        )
        assert match["type"] in types, f"newsfragments/{path.name}: the type is one of {types}"
        text = path.read_text(encoding="utf-8").strip()
        assert text, f"newsfragments/{path.name} is empty"
        assert not text.startswith("#"), f"newsfragments/{path.name}: no headings in a fragment"
