"""OpenAPI documents for kubectl, and server-side field validation against them.

What kubectl asks for, and how this module answers (see ``docs/apiserver.md``):

- ``GET /openapi/v3``: an index of group-version documents, each linked with a content hash
  (``/openapi/v3/apis/kopf.dev/v1?hash=...``) so that kubectl's cache stays correct when CRDs
  change. kubectl >= 1.27 reads it for ``explain`` and to learn that the server validates
  fields itself (the ``fieldValidation`` parameter of PATCH), so that ``apply`` needs no
  client-side schema.
- ``GET /openapi/v3/api/v1``, ``/openapi/v3/apis/{group}/{version}``: paths with the
  ``x-kubernetes-group-version-kind`` of every operation and ``components.schemas`` holding the
  built-in kinds' compact schemas and each CRD version's ``openAPIV3Schema``.
- ``GET /openapi/v2``: the same as one Swagger 2.0 document. kubectl 1.27 asks for it in
  protobuf (``application/com.github.proto-openapi.spec.v2@v1.0+protobuf``), which is encoded
  here by hand (no protobuf dependency); JSON for everyone else.

PATCH operations deliberately do not list ``application/strategic-merge-patch+json``: kubectl
then computes ``apply`` patches from its compiled-in types for built-in kinds and uses merge
patches for custom resources, exactly as against a real cluster, without depending on the
completeness of these compact schemas.

Pure functions; no I/O and no tasks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final

import attrs

from trikopf.apiserver.openapi_protobuf import encode_v2_protobuf
from trikopf.apiserver.openapi_schemas import OBJECT_META, builtin_schema, schema_name

__all__ = [
    "FieldValidationError",
    "OpenApiResource",
    "check_fields",
    "handle_openapi",
    "prune_unknown_fields",
    "resource_schema",
    "unknown_fields",
]

PROTOBUF_V2: Final = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"
PROTOBUF_V3: Final = "application/com.github.proto-openapi.spec.v3@v1.0+protobuf"
# Go's mime parser refuses "@" in a response's Content-Type; real servers answer with this.
PROTOBUF_V2_RESPONSE: Final = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"
KUBERNETES_VERSION: Final = "v1.32.0"


@attrs.frozen(kw_only=True)
class OpenApiResource:
    """One served resource version as OpenAPI describes it.

    ``schema`` is the CRD version's ``openAPIV3Schema``; ``None`` for built-in kinds (their
    compact schema is used) or for CRDs without one (an open object).
    """

    group: str
    version: str
    kind: str
    plural: str
    namespaced: bool
    schema: dict[str, Any] | None = None
    subresources: frozenset[str] = frozenset()

    @property
    def group_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def document_path(self) -> str:
        """The v3 index key: ``api/v1`` or ``apis/{group}/{version}``."""
        return f"apis/{self.group}/{self.version}" if self.group else f"api/{self.version}"


def resource_schema(resource: OpenApiResource) -> dict[str, Any]:
    """The full schema of a resource version, with apiVersion, kind and metadata described."""
    builtin = builtin_schema(resource.group, resource.version, resource.kind)
    if builtin is not None and resource.schema is None:
        schema = dict(builtin)
    else:
        schema = dict(
            resource.schema or {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
        )
        properties = dict(schema.get("properties") or {})
        properties.setdefault(
            "apiVersion",
            {
                "type": "string",
                "description": "The versioned schema of this representation of an object.",
            },
        )
        properties.setdefault(
            "kind",
            {
                "type": "string",
                "description": "The REST resource this object represents, in CamelCase.",
            },
        )
        # The user's schema may say little about metadata; the server knows all of it.
        properties["metadata"] = {
            **OBJECT_META,
            **{k: v for k, v in (properties.get("metadata") or {}).items() if k == "description"},
        }
        schema["properties"] = properties
        schema.setdefault("type", "object")
    schema["x-kubernetes-group-version-kind"] = [
        {"group": resource.group, "kind": resource.kind, "version": resource.version}
    ]
    return schema


# --- field validation -------------------------------------------------------------------------


class FieldValidationError(ValueError):
    """Unknown or duplicate fields under ``fieldValidation=Strict``, or a bad directive (400)."""

    def __init__(self, message: str, code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _branches(schema: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    yield schema
    for combinator in ("allOf", "anyOf", "oneOf"):
        for branch in schema.get(combinator) or ():
            if isinstance(branch, Mapping):
                yield from _branches(branch)


def _walk_unknown(
    value: Any, schema: Mapping[str, Any] | None, path: str, found: list[str], prune: bool
) -> Any:
    """Collect (and, when pruning, drop) fields the schema does not know. Returns the value."""
    if schema is None:
        return value
    branches = list(_branches(schema))
    preserve = any(b.get("x-kubernetes-preserve-unknown-fields") for b in branches)
    if isinstance(value, dict):
        properties: dict[str, Any] = {}
        additional: Any = None
        for branch in branches:
            properties.update(branch.get("properties") or {})
            if branch.get("additionalProperties") not in (None, False):
                additional = branch["additionalProperties"]
        if any(b.get("x-kubernetes-embedded-resource") for b in branches):
            properties.setdefault("apiVersion", {"type": "string"})
            properties.setdefault("kind", {"type": "string"})
            properties.setdefault("metadata", OBJECT_META)
        if (
            not properties
            and additional is None
            and not preserve
            and not any(b.get("type") == "object" for b in branches)
        ):
            return value  # no structure declared here at all (e.g. int-or-string): nothing to say
        result = {}
        for key, item in value.items():
            child = f"{path}.{key}" if path else key
            if key in properties:
                result[key] = _walk_unknown(item, properties[key], child, found, prune)
            elif isinstance(additional, Mapping):
                result[key] = _walk_unknown(item, additional, child, found, prune)
            elif additional is True or preserve:
                result[key] = item
            else:
                found.append(child)
                if not prune:
                    result[key] = item
        return result
    if isinstance(value, list):
        items = next((b["items"] for b in branches if isinstance(b.get("items"), Mapping)), None)
        if items is None:
            return value
        return [
            _walk_unknown(item, items, f"{path}[{index}]", found, prune)
            for index, item in enumerate(value)
        ]
    return value


def unknown_fields(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """The dotted paths (``spec.foo``, ``spec.items[0].bar``) of fields the schema lacks."""
    found: list[str] = []
    _walk_unknown(dict(obj), schema, "", found, prune=False)
    return found


def prune_unknown_fields(obj: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of the object without the fields its schema does not know (structural pruning)."""
    found: list[str] = []
    result = _walk_unknown(dict(obj), schema, "", found, prune=True)
    assert isinstance(result, dict)
    return result


_DIRECTIVES = ("Ignore", "Warn", "Strict")


def check_fields(
    obj: Mapping[str, Any],
    resource: OpenApiResource,
    directive: str | None,
) -> list[str]:
    """Apply the ``fieldValidation`` query parameter to an incoming object.

    Returns the warnings to send (``Warning: 299 - "unknown field \\"spec.x\\""``) under
    ``Warn`` (the default when the parameter is absent); raises
    :class:`FieldValidationError` under ``Strict``; returns nothing under ``Ignore``. The
    caller prunes the unknown fields in every non-failing case, as a real server drops them.
    """
    directive = directive or "Warn"
    if directive not in _DIRECTIVES:
        raise FieldValidationError(
            f'fieldValidation: Unsupported value: "{directive}": supported values: '
            '"Ignore", "Strict", "Warn"'
        )
    if directive == "Ignore":
        return []
    fields = unknown_fields(obj, resource_schema(resource))
    messages = [f'unknown field "{field}"' for field in fields]
    if directive == "Strict" and messages:
        raise FieldValidationError(
            f'{resource.kind} in version "{resource.version}" cannot be handled as a '
            f"{resource.kind}: strict decoding error: {', '.join(messages)}"
        )
    return messages


# --- documents ----------------------------------------------------------------------------------


def _gvk(resource: OpenApiResource) -> dict[str, str]:
    return {"group": resource.group, "version": resource.version, "kind": resource.kind}


def _paths_of(resource: OpenApiResource) -> tuple[str, str]:
    prefix = (
        f"/apis/{resource.group}/{resource.version}"
        if resource.group
        else f"/api/{resource.version}"
    )
    if resource.namespaced:
        collection = f"{prefix}/namespaces/{{namespace}}/{resource.plural}"
    else:
        collection = f"{prefix}/{resource.plural}"
    return collection, f"{collection}/{{name}}"


_WRITE_PARAMETERS = ("dryRun", "fieldManager", "fieldValidation")
_PATCH_TYPES = (
    "application/json-patch+json",
    "application/merge-patch+json",
    "application/apply-patch+yaml",
)


def _operation_id(verb: str, resource: OpenApiResource) -> str:
    group = "".join(part.capitalize() for part in (resource.group or "core").split(".")[:1])
    scope = "Namespaced" if resource.namespaced else ""
    return f"{verb}{group}{resource.version.capitalize()}{scope}{resource.kind}"


def _v3_operation(
    verb: str,
    action: str,
    resource: OpenApiResource,
    ref: str,
    *,
    body: Sequence[str] = (),
    query: Sequence[str] = (),
    suffix: str = "",
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": _operation_id(verb, resource) + suffix,
        "x-kubernetes-action": action,
        "x-kubernetes-group-version-kind": _gvk(resource),
        "parameters": [
            {"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
            for name in query
        ],
        "responses": {
            "200": {"description": "OK", "content": {"application/json": {"schema": {"$ref": ref}}}}
        },
    }
    if body:
        operation["requestBody"] = {
            "content": {
                ct: {"schema": {"$ref": ref} if ct == "application/json" else {"type": "object"}}
                for ct in body
            },
            "required": True,
        }
    return operation


def _v3_paths(resource: OpenApiResource, ref: str) -> dict[str, Any]:
    collection, item = _paths_of(resource)
    path_params = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
    if resource.namespaced:
        path_params.append(
            {"name": "namespace", "in": "path", "required": True, "schema": {"type": "string"}}
        )
    paths = {
        collection: {
            "get": _v3_operation(
                "list",
                "list",
                resource,
                ref,
                query=(
                    "labelSelector",
                    "fieldSelector",
                    "limit",
                    "continue",
                    "resourceVersion",
                    "watch",
                ),
            ),
            "post": _v3_operation(
                "create", "post", resource, ref, body=("application/json",), query=_WRITE_PARAMETERS
            ),
            "parameters": path_params[1:],
        },
        item: {
            "get": _v3_operation("read", "get", resource, ref),
            "put": _v3_operation(
                "replace", "put", resource, ref, body=("application/json",), query=_WRITE_PARAMETERS
            ),
            "patch": _v3_operation(
                "patch",
                "patch",
                resource,
                ref,
                body=_PATCH_TYPES,
                query=(*_WRITE_PARAMETERS, "force"),
            ),
            "delete": _v3_operation(
                "delete",
                "delete",
                resource,
                ref,
                query=("dryRun", "gracePeriodSeconds", "propagationPolicy"),
            ),
            "parameters": path_params,
        },
    }
    if "status" in resource.subresources:
        paths[f"{item}/status"] = {
            "get": _v3_operation("read", "get", resource, ref, suffix="Status"),
            "put": _v3_operation(
                "replace",
                "put",
                resource,
                ref,
                body=("application/json",),
                query=_WRITE_PARAMETERS,
                suffix="Status",
            ),
            "patch": _v3_operation(
                "patch",
                "patch",
                resource,
                ref,
                body=_PATCH_TYPES,
                query=(*_WRITE_PARAMETERS, "force"),
                suffix="Status",
            ),
            "parameters": path_params,
        }
    return paths


def _v3_document(resources: Sequence[OpenApiResource]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for resource in resources:
        name = schema_name(resource.group, resource.version, resource.kind)
        schemas[name] = resource_schema(resource)
        paths.update(_v3_paths(resource, f"#/components/schemas/{name}"))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def _dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def _v3_documents(resources: Sequence[OpenApiResource]) -> dict[str, bytes]:
    grouped: dict[str, list[OpenApiResource]] = {}
    for resource in resources:
        grouped.setdefault(resource.document_path, []).append(resource)
    return {path: _dumps(_v3_document(members)) for path, members in grouped.items()}


def _v3_index(documents: Mapping[str, bytes]) -> bytes:
    paths = {
        path: {
            "serverRelativeURL": f"/openapi/v3/{path}?hash={hashlib.sha512(body).hexdigest()[:128].upper()}"
        }
        for path, body in sorted(documents.items())
    }
    return _dumps({"paths": paths})


def _v2_schema(schema: Any) -> Any:
    """A v3 schema as Swagger 2.0 allows it (drop what v2 cannot say, as the real server does)."""
    if isinstance(schema, list):
        return [_v2_schema(item) for item in schema]
    if not isinstance(schema, Mapping):
        return schema
    result = {}
    for key, value in schema.items():
        if key in ("nullable", "anyOf", "oneOf", "not"):
            continue
        if key == "$ref" and isinstance(value, str):
            value = value.replace("#/components/schemas/", "#/definitions/")
        result[key] = _v2_schema(value) if key != "x-kubernetes-group-version-kind" else value
    return result


def _v2_document(resources: Sequence[OpenApiResource]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    definitions: dict[str, Any] = {}
    for resource in resources:
        name = schema_name(resource.group, resource.version, resource.kind)
        definitions[name] = _v2_schema(resource_schema(resource))
        ref = {"$ref": f"#/definitions/{name}"}
        collection, item = _paths_of(resource)

        def op(
            verb: str,
            action: str,
            query: Sequence[str],
            body: bool = False,
            *,
            _resource: OpenApiResource = resource,
            _ref: dict[str, str] = ref,
        ) -> dict[str, Any]:
            parameters: list[dict[str, Any]] = [
                {"name": name, "in": "query", "type": "string", "uniqueItems": True}
                for name in query
            ]
            if body:
                parameters.insert(
                    0,
                    {"name": "body", "in": "body", "required": True, "schema": {"type": "object"}},
                )
            return {
                "operationId": _operation_id(verb, _resource),
                "produces": ["application/json", "application/yaml"],
                "parameters": parameters,
                "responses": {"200": {"description": "OK", "schema": _ref}},
                "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": _gvk(_resource),
            }

        paths[collection] = {
            "get": op("list", "list", ("labelSelector", "fieldSelector", "limit", "continue")),
            "post": op("create", "post", _WRITE_PARAMETERS, True),
        }
        paths[item] = {
            "get": op("read", "get", ()),
            "put": op("replace", "put", _WRITE_PARAMETERS, True),
            "patch": op("patch", "patch", (*_WRITE_PARAMETERS, "force"), True),
            "delete": op("delete", "delete", ("dryRun", "propagationPolicy")),
        }
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": KUBERNETES_VERSION},
        "paths": paths,
        "definitions": definitions,
    }


# --- the HTTP entry point ---------------------------------------------------------------------


def _not_found(path: str) -> tuple[int, bytes, str]:
    status = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    }
    return 404, _dumps(status), "application/json"


def _wants(accept: str | None, media_type: str) -> bool:
    return bool(accept) and any(
        part.split(";")[0].strip() == media_type for part in (accept or "").split(",")
    )


def handle_openapi(
    path: str,
    resources: Sequence[OpenApiResource],
    *,
    accept: str | None = None,
) -> tuple[int, bytes, str] | None:
    """Answer ``/openapi/v2`` and ``/openapi/v3[/...]`` requests; ``None`` for other paths.

    ``path`` may carry a query string (ignored: the ``hash`` of v3 links only busts caches).
    Returns ``(status, body, content_type)``.
    """
    path = path.split("?", 1)[0].rstrip("/") or "/"
    if path == "/openapi/v2":
        document = _v2_document(resources)
        if _wants(accept, PROTOBUF_V2):
            return 200, encode_v2_protobuf(document), PROTOBUF_V2_RESPONSE
        return 200, _dumps(document), "application/json"
    if path == "/openapi/v3":
        return 200, _v3_index(_v3_documents(resources)), "application/json"
    if path.startswith("/openapi/v3/"):
        documents = _v3_documents(resources)
        body = documents.get(path[len("/openapi/v3/") :])
        if body is None:
            return _not_found(path)
        return 200, body, "application/json"
    if path.startswith("/openapi/"):
        return _not_found(path)
    return None
