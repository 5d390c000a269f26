"""Validation of names, metadata and CRDs, answered with the real server's 422 wording."""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Any

from trikopf.apiserver import errors

if TYPE_CHECKING:
    from trikopf.apiserver.resources import Registry, ResourceType

__all__ = ["validate_crd", "validate_metadata", "validate_name"]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN_RE = re.compile(rf"{_LABEL}(\.{_LABEL})*")
_LABEL_RE = re.compile(_LABEL)
_QUALIFIED_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_LABEL_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")

_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or"
    " '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used"
    " for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and"
    " must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex"
    " used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)


def _is_subdomain(name: str) -> list[str]:
    problems = []
    if len(name) > 253:
        problems.append("must be no more than 253 characters")
    if not _SUBDOMAIN_RE.fullmatch(name):
        problems.append(_SUBDOMAIN_MESSAGE)
    return problems


def _is_label(name: str) -> list[str]:
    problems = []
    if len(name) > 63:
        problems.append("must be no more than 63 characters")
    if not _LABEL_RE.fullmatch(name):
        problems.append(_LABEL_MESSAGE)
    return problems


def validate_name(resource: ResourceType, name: str) -> None:
    """422 Invalid unless ``name`` suits the resource (DNS-1123 subdomain or label)."""
    problems = _is_label(name) if resource.name_is_label else _is_subdomain(name)
    if problems:
        raise errors.invalid(
            resource.kind,
            resource.group,
            name,
            [
                ("FieldValueInvalid", "metadata.name", f'Invalid value: "{name}": {p}')
                for p in problems
            ],
        )


@functools.lru_cache(maxsize=4096)
def _label_key_problems(key: str) -> tuple[str, ...]:
    return tuple(_find_label_key_problems(key))


def _find_label_key_problems(key: str) -> list[str]:
    prefix, slash, name = key.rpartition("/")
    problems = []
    if slash and (not prefix or _is_subdomain(prefix)):
        problems.append("prefix part " + (_SUBDOMAIN_MESSAGE if prefix else "must be non-empty"))
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > 63:
        problems.append("name part must be no more than 63 characters")
    elif not _QUALIFIED_NAME_RE.fullmatch(name):
        problems.append(
            "name part must consist of alphanumeric characters, '-', '_' or '.', and must start"
            " and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or"
            " '123-abc', regex used for validation is"
            " '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
        )
    return problems


def validate_metadata(resource: ResourceType, name: str, meta: dict[str, Any]) -> None:
    """Check the shapes of labels, annotations, finalizers and owner references."""
    causes: list[tuple[str, str, str]] = []
    for field in ("labels", "annotations"):
        value = meta.get(field)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise errors.bad_request(
                f'{resource.kind} in version "{resource.storage_version}" cannot be handled as'
                f" a {resource.kind}: metadata.{field} must be a map of strings to strings"
            )
        for key, item in value.items():
            for problem in _label_key_problems(key):
                causes.append(
                    ("FieldValueInvalid", f"metadata.{field}", f'Invalid value: "{key}": {problem}')
                )
            if field == "labels":
                if len(item) > 63:
                    causes.append(
                        (
                            "FieldValueInvalid",
                            "metadata.labels",
                            f'Invalid value: "{item}": must be no more than 63 characters',
                        )
                    )
                elif not _LABEL_VALUE_RE.fullmatch(item):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            "metadata.labels",
                            f'Invalid value: "{item}": a valid label must be an empty string or'
                            " consist of alphanumeric characters, '-', '_' or '.', and must start"
                            " and end with an alphanumeric character",
                        )
                    )
    finalizers = meta.get("finalizers")
    if finalizers is not None and (
        not isinstance(finalizers, list) or not all(isinstance(f, str) for f in finalizers)
    ):
        raise errors.bad_request("metadata.finalizers must be a list of strings")
    refs = meta.get("ownerReferences")
    if refs is not None:
        if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
            raise errors.bad_request("metadata.ownerReferences must be a list of objects")
        for i, ref in enumerate(refs):
            for required in ("apiVersion", "kind", "name", "uid"):
                if not ref.get(required):
                    causes.append(
                        (
                            "FieldValueRequired",
                            f"metadata.ownerReferences[{i}].{required}",
                            "Required value",
                        )
                    )
    if causes:
        raise errors.invalid(resource.kind, resource.group, name, causes)


def validate_crd(
    crd: dict[str, Any], registry: Registry, *, old: dict[str, Any] | None = None
) -> None:
    """422 Invalid unless the CRD is complete and consistent."""
    name = crd["metadata"]["name"]
    causes: list[tuple[str, str, str]] = []
    spec = crd.get("spec")
    if not isinstance(spec, dict):
        causes.append(("FieldValueRequired", "spec", "Required value"))
        raise errors.invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
    group = spec.get("group")
    names: dict[str, Any] = spec["names"] if isinstance(spec.get("names"), dict) else {}
    plural = names.get("plural")
    kind = names.get("kind")
    if not group or not isinstance(group, str):
        causes.append(("FieldValueRequired", "spec.group", "Required value"))
    elif "." not in group:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.group",
                f'Invalid value: "{group}": should be a domain with at least one dot',
            )
        )
    if not plural or not isinstance(plural, str):
        causes.append(("FieldValueRequired", "spec.names.plural", "Required value"))
    elif _is_label(plural):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.names.plural",
                f'Invalid value: "{plural}": {_LABEL_MESSAGE}',
            )
        )
    if not kind or not isinstance(kind, str):
        causes.append(("FieldValueRequired", "spec.names.kind", "Required value"))
    singular = names.get("singular")
    if singular is not None and (not isinstance(singular, str) or _is_label(singular)):
        causes.append(
            (
                "FieldValueInvalid",
                "spec.names.singular",
                f'Invalid value: "{singular}": {_LABEL_MESSAGE}',
            )
        )
    if spec.get("scope") not in ("Namespaced", "Cluster"):
        causes.append(
            (
                "FieldValueNotSupported",
                "spec.scope",
                f'Unsupported value: "{spec.get("scope")}": supported values: "Cluster", "Namespaced"',
            )
        )
    versions = spec.get("versions")
    if not isinstance(versions, list) or not versions:
        causes.append(
            (
                "FieldValueInvalid",
                "spec.versions",
                "Invalid value: must have exactly one version marked as storage version",
            )
        )
    else:
        storage = [v for v in versions if isinstance(v, dict) and v.get("storage")]
        if len(storage) != 1:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.versions",
                    "Invalid value: must have exactly one version marked as storage version",
                )
            )
        for i, version in enumerate(versions):
            if (
                not isinstance(version, dict)
                or not isinstance(version.get("name"), str)
                or not version.get("name")
            ):
                causes.append(("FieldValueRequired", f"spec.versions[{i}].name", "Required value"))
            elif not isinstance(version.get("served"), bool):
                causes.append(
                    ("FieldValueRequired", f"spec.versions[{i}].served", "Required value")
                )
            elif not isinstance((version.get("schema") or {}).get("openAPIV3Schema"), dict):
                causes.append(
                    (
                        "FieldValueRequired",
                        f"spec.versions[{i}].schema.openAPIV3Schema",
                        "Required value: schemas are required",
                    )
                )
    if plural and group and isinstance(plural, str) and isinstance(group, str):
        if name != f"{plural}.{group}":
            causes.append(
                (
                    "FieldValueInvalid",
                    "metadata.name",
                    f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                )
            )
        existing = registry.get((group, plural))
        if existing is not None and not existing.custom:
            causes.append(
                (
                    "FieldValueInvalid",
                    "spec.names.plural",
                    f'Invalid value: "{plural}": the resource is built in',
                )
            )
    if old is not None:
        old_spec = old.get("spec") or {}
        if old_spec.get("group") != (spec.get("group")):
            causes.append(("FieldValueInvalid", "spec.group", "Invalid value: field is immutable"))
        if (old_spec.get("names") or {}).get("plural") != plural:
            causes.append(
                ("FieldValueInvalid", "spec.names.plural", "Invalid value: field is immutable")
            )
        if old_spec.get("scope") != spec.get("scope"):
            causes.append(("FieldValueInvalid", "spec.scope", "Invalid value: field is immutable"))
    if causes:
        raise errors.invalid("CustomResourceDefinition", "apiextensions.k8s.io", name, causes)
