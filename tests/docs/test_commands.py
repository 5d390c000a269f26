"""The command lines shown in the docs use options that the commands really have."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import pytest

from .codeblocks import all_blocks, pages

# `python -m trikopf ...` and `python3 -m trikopf.apiserver ...`, in blocks and inline code.
COMMAND = re.compile(r"python3? -m (?P<module>trikopf(?:\.apiserver)?)\b(?P<args>[^`\n]*)")
OPTION = re.compile(r"(?<![\w-])(--[a-z][a-z0-9-]*)")


def shell_lines() -> list[tuple[str, str]]:
    """(where, line) for every shell-like line of a block, continuations joined."""
    found = []
    for block in all_blocks():
        if block.info not in {"", "sh", "console", "text", "bash", "shell"}:
            continue
        joined = re.sub(r"\\\n\s*", " ", block.text)  # backslash continuations
        joined = re.sub(r"\n[ \t]+(?=\[?--)", " ", joined)  # indented option lines of a synopsis
        found.extend((block.where, line) for line in joined.splitlines())
    for page in pages():
        text = page.read_text(encoding="utf-8")
        for span in re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", text, flags=re.S)):
            found.append((f"docs/{page.name}", span))
    return found


def documented_options() -> dict[str, set[tuple[str, str]]]:
    """Per module, the ``--options`` the docs show it with, and where."""
    options: dict[str, set[tuple[str, str]]] = {"trikopf": set(), "trikopf.apiserver": set()}
    for where, line in shell_lines():
        for match in COMMAND.finditer(line):
            args = match["args"].split(" #")[0]  # a trailing shell comment is prose
            for option in OPTION.findall(args):
                options[match["module"]].add((option, where))
    return options


def help_text(module: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", module, "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_docs_show_both_commands_with_options() -> None:
    options = documented_options()
    assert {o for o, _ in options["trikopf"]} >= {"--dev-cluster", "--apply", "--liveness"}
    assert {o for o, _ in options["trikopf.apiserver"]} >= {"--port", "--kubeconfig"}


@pytest.mark.parametrize("module", ["trikopf", "trikopf.apiserver"])
def test_every_option_the_docs_show_is_one_the_command_accepts(module: str) -> None:
    known = set(OPTION.findall(help_text(module)))
    unknown = sorted(
        f"{where}: python -m {module} {option}"
        for option, where in documented_options()[module]
        if option not in known
    )
    assert not unknown, "options the command does not have:\n" + "\n".join(unknown)


def test_the_shell_lines_are_split_like_a_shell_would() -> None:
    # The docs' command lines are pasted into shells: their quoting must be balanced.
    for where, line in shell_lines():
        if COMMAND.search(line):
            shlex.split(line.split(" #")[0].lstrip("$ "))  # raises on unbalanced quotes
            assert where.startswith("docs/")
