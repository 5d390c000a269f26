"""Reading the code blocks of the docs' Markdown pages, and running Python ones."""

from __future__ import annotations

import ast
import inspect
import pathlib
import re
from dataclasses import dataclass
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One fenced block of a page: ``info`` is what follows the fence (``python``, ``{toctree}``)."""

    page: str  # relative to docs/, e.g. "handlers.md"
    line: int  # of the opening fence, 1-based
    info: str
    text: str

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"


def pages() -> list[pathlib.Path]:
    """The hand-written pages (the API pages are generated from docstrings)."""
    return sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts and p.parts[-2] != "api")


def blocks(page: pathlib.Path) -> list[Block]:
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        match = FENCE.match(lines[i])
        if match is None:
            i += 1
            continue
        fence = match["fence"]
        j = i + 1
        while j < len(lines) and not lines[j].startswith(fence):
            j += 1
        assert j < len(lines), f"docs/{page.relative_to(DOCS)}:{i + 1}: the fence is never closed"
        text = "\n".join(lines[i + 1 : j]) + "\n"
        found.append(Block(str(page.relative_to(DOCS)), i + 1, match["info"].strip(), text))
        i = j + 1
    return found


def all_blocks() -> list[Block]:
    return [block for page in pages() for block in blocks(page)]


def python_block(page: str, marker: str) -> Block:
    """The one Python block of ``page`` that contains ``marker``."""
    matching = [
        b
        for b in blocks(DOCS / page)
        if b.info == "python" and marker in b.text  # the page's own wording, not ours
    ]
    assert len(matching) == 1, f"docs/{page}: {len(matching)} Python blocks contain {marker!r}"
    return matching[0]


async def run(block: Block, namespace: dict[str, Any], *, text: str | None = None) -> None:
    """Execute the block (top-level ``await`` and ``async with`` allowed) in ``namespace``."""
    source = block.text if text is None else text
    code = compile(
        source, f"<{block.where}>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT, dont_inherit=True
    )
    result = eval(code, namespace)
    if inspect.iscoroutine(result):
        await result
