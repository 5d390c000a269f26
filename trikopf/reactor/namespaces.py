"""Which namespaces the operator serves: names, globs and negations. Pure, no I/O.

``NamespaceSelector.parse(["team-*", "!team-test"])`` serves every namespace whose name starts
with ``team-`` except ``team-test``. A list of negations only (``["!kube-*"]``) serves every
namespace but those. An empty list, or ``clusterwide=True``, serves the whole cluster with one
cluster-wide watch per resource.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable

import attrs

__all__ = ["NamespaceSelector"]

_GLOB_CHARS = frozenset("*?[")
# A DNS-1123 label, with glob characters allowed in place of letters.
_PATTERN_RE = re.compile(r"^[a-z0-9*?\[\]\-!]+$")


@attrs.frozen(kw_only=True)
class NamespaceSelector:
    """The namespaces one operator serves.

    - ``clusterwide``: one watch per resource over all namespaces; patterns are not used.
    - ``include``: names or globs; a namespace is served if it matches one of them (or if there
      are none, when only exclusions were given).
    - ``exclude``: names or globs (given as ``!pattern``); a namespace matching one is never
      served.
    """

    clusterwide: bool = False
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def parse(cls, patterns: Iterable[str], *, clusterwide: bool = False) -> NamespaceSelector:
        """Build a selector from CLI-style patterns; raise ``ValueError`` on malformed ones."""
        include: list[str] = []
        exclude: list[str] = []
        for raw in patterns:
            pattern = raw.strip()
            if not pattern or not _PATTERN_RE.match(pattern) or "!" in pattern[1:]:
                raise ValueError(
                    f"invalid namespace pattern {raw!r}: use a namespace name, a glob such as "
                    "'team-*', or a negation such as '!kube-*'"
                )
            if pattern.startswith("!"):
                if len(pattern) == 1:
                    raise ValueError(f"invalid namespace pattern {raw!r}: nothing after '!'")
                exclude.append(pattern[1:])
            else:
                include.append(pattern)
        if clusterwide and (include or exclude):
            raise ValueError("cluster-wide operation cannot be combined with namespace patterns")
        if not include and not exclude:
            clusterwide = True
        return cls(clusterwide=clusterwide, include=tuple(include), exclude=tuple(exclude))

    @property
    def is_static(self) -> bool:
        """Whether the served namespaces are a fixed list of names (no need to watch them)."""
        return (
            not self.clusterwide
            and not self.exclude
            and all(not (_GLOB_CHARS & set(p)) for p in self.include)
        )

    @property
    def static_names(self) -> tuple[str, ...]:
        """The fixed names when :attr:`is_static`, in the order given, without repeats."""
        return tuple(dict.fromkeys(self.include))

    def matches(self, namespace: str) -> bool:
        """Whether objects in ``namespace`` are served by this operator."""
        if self.clusterwide:
            return True
        if any(fnmatch.fnmatchcase(namespace, p) for p in self.exclude):
            return False
        if not self.include:
            return True
        return any(fnmatch.fnmatchcase(namespace, p) for p in self.include)

    def __str__(self) -> str:
        if self.clusterwide:
            return "cluster-wide"
        return ", ".join([*self.include, *(f"!{p}" for p in self.exclude)])
