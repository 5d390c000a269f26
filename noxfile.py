"""The test matrix: Python 3.10-3.13 (each on Trio and asyncio), lint, types, benchmarks.

The interpreters come from pyenv when it is there: their folders are put on this
process's PATH, so nothing on the machine itself changes. A missing interpreter
is an error, never a skip.
"""

from __future__ import annotations

import os
import pathlib

import nox

PYTHONS = ["3.10", "3.11", "3.12", "3.13"]

nox.options.error_on_missing_interpreters = True
nox.options.sessions = ["tests", "lint", "typecheck", "docs"]
nox.options.default_venv_backend = "venv"


def _put_pyenv_interpreters_on_path() -> None:
    root = pathlib.Path(os.environ.get("PYENV_ROOT", pathlib.Path.home() / ".pyenv"))
    versions = root / "versions"
    if not versions.is_dir():
        return
    wanted: list[str] = []
    for python in PYTHONS:
        found = sorted(
            (p for p in versions.glob(f"{python}.*") if (p / "bin" / f"python{python}").exists()),
            key=lambda p: [int(x) if x.isdigit() else 0 for x in p.name.split(".")],
        )
        if found:
            wanted.append(str(found[-1] / "bin"))
    os.environ["PATH"] = os.pathsep.join([*wanted, os.environ.get("PATH", "")])


_put_pyenv_interpreters_on_path()


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    """Run the test suite on Trio and asyncio."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    """Ruff (lint and formatting), the layer contract (import-linter), the changelog fragments."""
    session.install("ruff>=0.6", "import-linter>=2.1", "towncrier>=24.7")
    paths = ["trikopf", "tests", "examples", "benchmarks", "docs/conf.py", "noxfile.py"]
    session.run("ruff", "check", *paths)
    session.run("ruff", "format", "--check", *paths)
    # The contracts of [tool.importlinter]; the package is found from the working directory.
    session.run("lint-imports", "--no-cache")
    # Every fragment in newsfragments/ renders (tests/docs/test_newsfragments.py checks names).
    session.run("towncrier", "build", "--draft", "--version", "next")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    """Sphinx + MyST: build the HTML docs into docs/_build/html, warnings as errors.

    Offline by default; TRIKOPF_DOCS_INTERSPHINX=1 also links to trio, httpx, attrs and cattrs
    (it downloads their inventories; see docs/conf.py).
    """
    session.install("-e", ".[docs,test]")  # pytest: the API pages document the fixtures
    # -E: read every page each time, so that no warning hides in a cached environment.
    strict = ["-E", "-W", "--keep-going", "-b", "html"]
    session.run("python", "-m", "sphinx", *strict, "docs", "docs/_build/html", *session.posargs)


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    """mypy --strict over the library."""
    session.install("-e", ".[test]", "mypy>=1.10", "types-PyYAML")
    session.run("mypy")


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """The benchmark suite: trikopf beside Kopf and the no-framework limit.

    Not a default session. `nox -s bench -- --full` for the large sizes; any other arguments
    go to benchmarks/run.py (e.g. `nox -s bench -- throughput limits`).
    """
    # Everything the suite and benchmarks/profile.py use; Kopf is the latest release.
    session.install("-e", ".[fast]", "kopf", "lightkube", "orjson", "matplotlib", "httpx", "py-spy")
    session.run("python", "benchmarks/run.py", *session.posargs)
