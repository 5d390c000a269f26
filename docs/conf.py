"""Sphinx configuration for trikopf's documentation (Markdown pages through MyST).

Build: ``nox -s docs`` (warnings are errors), or
``python -m sphinx -W --keep-going -b html docs docs/_build/html``.

Cross-references into the documentation of trio, httpx, attrs and cattrs come from intersphinx,
which has to download those projects' inventories. The build machines reach no documentation
hosts, so the inventories are only fetched when ``TRIKOPF_DOCS_INTERSPHINX=1`` is set (for a
release build with network access). Without it the build needs nothing from outside: such
references render as plain code instead of links, and nitpicky mode (off) does not complain.
"""

from __future__ import annotations

import os
import pathlib
import sys
from typing import Any

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent

# autodoc imports the package from the working tree even when it is not installed.
sys.path.insert(0, str(ROOT))

import trikopf  # noqa: E402

project = "trikopf"
author = "The trikopf developers"
copyright = "the trikopf developers"
release = trikopf.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.intersphinx",
    "sphinxcontrib_trio",
]

source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# MyST: ```{directive} fences as written in the pages, plus ::: fences and heading anchors so
# that links like [handlers](handlers.md#selecting-resources) resolve.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# autodoc: members in source order, signatures with the annotations as written.
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_default_options = {"show-inheritance": True}  # members: listed per page
autodoc_preserve_defaults = True
# sphinxcontrib-trio marks async functions, async context managers and iterators through
# autodoc documenters; Sphinx 9 uses them only in the class-based autodoc.
autodoc_use_legacy_class_based = True

# Nitpicky mode stays off: the signatures of the public API name many internal and standard
# library types that have no page (and no inventory offline). What must resolve are the
# references that the hand-written pages make to trikopf's own names; _check_page_reference
# below turns those into warnings (errors with -W) while the signatures stay lenient.
nitpicky = False

_INTERSPHINX = {
    "python": ("https://docs.python.org/3", None),
    "trio": ("https://trio.readthedocs.io/en/stable", None),
    "anyio": ("https://anyio.readthedocs.io/en/stable", None),
    "httpx": ("https://www.python-httpx.org", None),
    "attrs": ("https://www.attrs.org/en/stable", None),
    "cattrs": ("https://catt.rs/en/stable", None),
}
intersphinx_mapping = _INTERSPHINX if os.environ.get("TRIKOPF_DOCS_INTERSPHINX") == "1" else {}
intersphinx_timeout = 10

html_theme = "alabaster"
html_title = f"trikopf {release}"
html_static_path: list[str] = []


def _check_page_reference(app: Any, env: Any, node: Any, contnode: Any) -> None:
    """Warn about a ``{py:...}`` reference to a trikopf name, written in a page, that resolves nowhere."""
    if node.get("refdomain") != "py" or node.get("refdoc", "").startswith("api/"):
        return None
    target = str(node.get("reftarget", "")).lstrip("~.")
    if target.split(".")[0] != "trikopf":
        return None  # another project's name: a link only when intersphinx is on
    from sphinx.util import logging

    logging.getLogger(__name__).warning(
        "reference to %s (%s) resolves to no documented name; document it in docs/api/ or "
        "link to a public name",
        target,
        node.get("reftype"),
        location=node,
        type="trikopf",
        subtype="page-reference",
    )
    return None


def setup(app: Any) -> dict[str, Any]:
    app.connect("missing-reference", _check_page_reference)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
