"""The identity of one Kubernetes API resource (group, version, plural) and its URL paths."""

from __future__ import annotations

import attrs

__all__ = ["Resource"]


@attrs.frozen(kw_only=True, cache_hash=True)
class Resource:
    """One served resource of the Kubernetes API, as discovery describes it.

    ``group`` is ``""`` for the core group. Instances are hashable values: use them as dict keys
    for watchers and caches (the hash is computed once: a round looks the resource up in the
    registry several times). Build them from discovery (``ApiClient.resolve``) or directly.
    """

    group: str
    version: str
    plural: str
    kind: str
    singular: str = ""
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    subresources: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset()

    @property
    def api_version(self) -> str:
        """``"v1"`` for the core group, ``"group/version"`` otherwise (as in ``apiVersion``)."""
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def name(self) -> str:
        """``plural.group`` (``pods`` for the core group), as CRDs and RBAC name resources."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    def path(
        self,
        *,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        """The URL path of this resource's collection, one object, or one object's subresource.

        ``namespace`` is ignored for cluster-scoped resources; ``None`` for a namespaced resource
        means all namespaces (valid for list and watch only). ``subresource`` needs ``name``.
        """
        if subresource is not None and name is None:
            raise ValueError(f"subresource {subresource!r} of {self.name} needs an object name")
        prefix = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        parts = [prefix]
        if self.namespaced and namespace is not None:
            parts.append(f"namespaces/{namespace}")
        parts.append(self.plural)
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/".join(parts)

    def __str__(self) -> str:
        return (
            f"{self.plural}.{self.version}.{self.group}"
            if self.group
            else f"{self.plural}.{self.version}"
        )
