"""Write requests of the embedded API server: create, replace, patch, apply, scale, delete.

:class:`WriteHandlers` is a part of :class:`~trikopf.apiserver.app.ApiApp` (a mixin): each
method answers one request synchronously, under the store's rules, and records field
ownership (:mod:`trikopf.apiserver.apply`) on every write that stores an object.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import attrs

from trikopf._util.http_server import Request, Response
from trikopf.apiserver import apply, errors, managedfields
from trikopf.apiserver.errors import ApiError
from trikopf.apiserver.http_io import (
    _PATCH_TYPES,
    _TRUE,
    Route,
    _content_type,
    _dry_run,
    _method_not_allowed,
    _parse_body,
    _read_object,
    _respond,
    _with_warnings,
)
from trikopf.apiserver.resources import NAMESPACE_KEY
from trikopf.apiserver.store import Store, Track, now_timestamp
from trikopf.apiserver.store import clone as store_clone

__all__ = ["WriteHandlers"]


class WriteHandlers:
    """The write half of the request handler (and what reads share); needs ``self.store``."""

    __slots__ = ()
    store: Store

    def _matcher(self, request: Request, route: Route) -> Callable[[dict[str, Any]], bool] | None:
        label_text = request.query_value("labelSelector", "") or ""
        field_text = request.query_value("fieldSelector", "") or ""
        if not label_text and not field_text:
            return None
        from trikopf.apiserver import selectors

        try:
            labels = selectors.parse_label_selector(label_text) if label_text else None
            fields = selectors.parse_field_selector(field_text) if field_text else None
            if fields is not None:
                fields.check_supported(
                    group=route.resource.group,
                    kind=route.resource.kind,
                    extra=route.resource.selectable_fields.get(route.version, ()),
                )
        except selectors.SelectorError as exc:
            raise ApiError(400, str(exc)) from None

        def matches(obj: dict[str, Any]) -> bool:
            if labels is not None and not labels.matches(obj["metadata"].get("labels") or {}):
                return False
            return fields is None or fields.matches(obj)

        return matches

    def _out(self, route: Route, obj: dict[str, Any]) -> dict[str, Any]:
        api_version = route.resource.api_version(route.version)
        if obj.get("apiVersion") != api_version:
            return {**obj, "apiVersion": api_version}
        return obj

    def _create(self, request: Request, route: Route) -> Response:
        if route.subresource is not None:
            raise _method_not_allowed(route)
        body = _read_object(request, route)
        body, warnings = self._field_validation(request, route, body)
        obj = self.store.create(
            route.resource,
            route.namespace or "",
            body,
            dry_run=_dry_run(request),
            copy=False,
            track=self._tracker(request, route),
        )
        return _with_warnings(_respond(request, 201, self._out(route, obj)), warnings)

    def _replace(self, request: Request, route: Route) -> Response:
        assert route.name is not None
        body = _read_object(request, route)
        body, warnings = self._field_validation(request, route, body)
        obj = self.store.update(
            route.resource,
            route.namespace or "",
            route.name,
            body,
            subresource=route.subresource,
            dry_run=_dry_run(request),
            track=self._tracker(request, route),
        )
        return _with_warnings(_respond(request, 200, self._out(route, obj)), warnings)

    def _patch(self, request: Request, route: Route) -> Response:
        from trikopf.apiserver import patching

        assert route.name is not None
        resource = route.resource
        content_type = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
        if content_type not in _PATCH_TYPES:
            accepted = ["application/json-patch+json", "application/merge-patch+json"]
            if patching.supports_strategic_merge_patch(group=resource.group, kind=resource.kind):
                accepted.append("application/strategic-merge-patch+json")
            accepted.append("application/apply-patch+yaml")
            raise ApiError(
                415,
                "the body of the request was in an unknown format - accepted media types"
                f" include: {', '.join(accepted)}",
            )
        namespace = route.namespace or ""
        dry_run = _dry_run(request)
        if content_type == "application/apply-patch+yaml":
            return self._apply(request, route, namespace, dry_run)
        if request.query_value("force") is not None:
            raise _patch_options_invalid("force", "may not be specified for non-apply patch")
        patch = _parse_body(request.body, content_type, route)
        current = self.store.get(resource, namespace, route.name)
        try:
            patched = patching.apply_patch(
                content_type, current, patch, group=resource.group, kind=resource.kind
            )
        except patching.PatchError as exc:
            raise ApiError(exc.code, str(exc)) from None
        if not isinstance(patched, dict):
            raise ApiError(422, "the patch must produce an object")
        patched, warnings = self._field_validation(request, route, patched)
        obj = self.store.update(
            resource,
            namespace,
            route.name,
            patched,
            subresource=route.subresource,
            dry_run=dry_run,
            require_version=False,
            track=self._tracker(request, route),
        )
        return _with_warnings(_respond(request, 200, self._out(route, obj)), warnings)

    def _scale(self, request: Request, route: Route) -> Response:
        """GET, PUT and PATCH of the ``scale`` subresource (an autoscaling/v1 Scale)."""
        from trikopf.apiserver import patching
        from trikopf.apiserver.scale import apply_scale, to_scale

        assert route.name is not None
        resource, version = route.resource, route.version
        namespace = route.namespace or ""
        current = self.store.get(resource, namespace, route.name)
        if request.method in ("GET", "HEAD"):
            return _respond(request, 200, to_scale(resource, version, current))
        if request.method == "PUT":
            scale = _parse_body(request.body, _content_type(request), route)
        elif request.method == "PATCH":
            content_type = _content_type(request)
            patch = _parse_body(request.body, content_type, route)
            if content_type == "application/strategic-merge-patch+json":
                content_type = "application/merge-patch+json"  # Scale has no merge keys
            try:
                scale = patching.apply_patch(
                    content_type,
                    to_scale(resource, version, current),
                    patch,
                    group="autoscaling",
                    kind="Scale",
                )
            except patching.PatchError as exc:
                raise ApiError(exc.code, str(exc)) from None
        else:
            raise _method_not_allowed(route)
        updated = apply_scale(resource, version, current, scale)
        obj = self.store.update(
            resource,
            namespace,
            route.name,
            updated,
            dry_run=_dry_run(request),
            require_version=False,
            track=self._tracker(request, route),
        )
        return _respond(request, 200, to_scale(resource, version, obj))

    def _apply(self, request: Request, route: Route, namespace: str, dry_run: bool) -> Response:
        """Server-side apply: merge by the type's list semantics, own, prune, refuse conflicts."""
        assert route.name is not None
        if not request.query_value("fieldManager"):
            raise ApiError(
                400, "PATCH, application/apply-patch+yaml requires fieldManager to be set"
            )
        body = _parse_body(request.body, "application/yaml", route)
        if not isinstance(body, dict):
            raise ApiError(400, "the applied configuration must be an object")
        metadata = body.get("metadata")
        if metadata is None:
            body.pop("metadata", None)  # null: as if not given
        elif not isinstance(metadata, dict):
            raise errors.bad_request("metadata must be an object")  # as the store says it
        elif metadata.get("managedFields") is not None:
            raise ApiError(400, "metadata.managedFields must be nil")
        resource = route.resource
        write = self._write(
            request, route, operation="Apply", force=request.query_value("force") in _TRUE
        )
        applied = managedfields.field_set(
            body,
            write.schema,
            subresource=route.subresource,
            has_status="status" in resource.subresources,
        )
        write = attrs.evolve(write, applied=frozenset(applied))
        track = functools.partial(apply.record, write=write)
        if write.manager == "kubectl":
            track = functools.partial(_record_keeping_last_applied, write=write, config=body)
        existing = self.store.find(resource, namespace, route.name)
        if existing is None:
            if route.subresource is not None:
                raise errors.not_found(resource.group, resource.plural, route.name)
            meta = body.setdefault("metadata", {})
            if meta.get("name") and meta["name"] != route.name:
                raise errors.bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the URL"
                    f" ({route.name})"
                )
            meta["name"] = route.name
            obj = self.store.create(resource, namespace, body, dry_run=dry_run, track=track)
            return _respond(request, 201, self._out(route, obj))
        merged = apply.merge_object(store_clone(existing), body, write.schema)
        apply.prune(merged, apply.stale_fields(existing, write))
        merged, warnings = self._field_validation(request, route, merged)
        obj = self.store.update(
            resource,
            namespace,
            route.name,
            merged,
            subresource=route.subresource,
            dry_run=dry_run,
            require_version=False,
            track=track,
        )
        return _with_warnings(_respond(request, 200, self._out(route, obj)), warnings)

    def _write(
        self, request: Request, route: Route, *, operation: str = "Update", force: bool = False
    ) -> apply.Write:
        """Who writes (the field manager) and the type that ownership is computed with."""
        resource = route.resource
        manager = request.query_value("fieldManager") or apply.manager_from_user_agent(
            request.headers.get("user-agent") or ""
        )
        if len(manager) > 128:
            raise ApiError(422, "fieldManager: Too long: may not be longer than 128 characters")
        return apply.Write(
            manager=manager or "unknown",
            operation=operation,
            api_version=resource.api_version(route.version),
            subresource=route.subresource,
            schema=managedfields.schema_for(
                group=resource.group,
                kind=resource.kind,
                crd_schema=resource.schemas.get(route.version) if resource.custom else None,
            ),
            time=now_timestamp(),
            force=force,
        )

    def _tracker(self, request: Request, route: Route) -> Track:
        return functools.partial(apply.record, write=self._write(request, route))

    def _delete_options(self, request: Request) -> tuple[str | None, dict[str, Any] | None, bool]:
        propagation = request.query_value("propagationPolicy") or None
        preconditions: dict[str, Any] | None = None
        dry_run = _dry_run(request)
        orphan = request.query_value("orphanDependents")
        if orphan is not None and propagation is None:
            propagation = "Orphan" if orphan in _TRUE else "Background"
        if request.body.strip():
            options = _parse_body(request.body, _content_type(request), None)
            if not isinstance(options, dict):
                raise ApiError(400, "DeleteOptions must be an object")
            propagation = options.get("propagationPolicy") or propagation
            if options.get("orphanDependents") is not None and not options.get("propagationPolicy"):
                propagation = "Orphan" if options["orphanDependents"] else "Background"
            preconditions = options.get("preconditions") or None
            opts_dry = options.get("dryRun") or []
            if opts_dry:
                if opts_dry != ["All"]:
                    raise ApiError(400, f"dryRun: Unsupported value: {opts_dry!r}")
                dry_run = True
        return propagation, preconditions, dry_run

    def _delete(self, request: Request, route: Route) -> Response:
        assert route.name is not None
        propagation, preconditions, dry_run = self._delete_options(request)
        resource = route.resource
        obj, gone = self.store.delete(
            resource,
            route.namespace or "",
            route.name,
            propagation=propagation,
            preconditions=preconditions,
            dry_run=dry_run,
        )
        if gone and not resource.custom and resource.key != NAMESPACE_KEY:
            details: dict[str, Any] = {"name": route.name}
            if resource.group:
                details["group"] = resource.group
            details["kind"] = resource.plural
            details["uid"] = obj["metadata"]["uid"]
            status = {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Success",
                "details": details,
            }
            return _respond(request, 200, status)
        return _respond(request, 200, self._out(route, obj))

    def _delete_collection(self, request: Request, route: Route) -> Response:
        resource = route.resource
        if "deletecollection" not in resource.verbs:
            raise _method_not_allowed(route)
        matcher = self._matcher(request, route)
        propagation, _, dry_run = self._delete_options(request)
        deleted = []
        for obj in list(self.store.iter_objects(resource, route.namespace)):
            if matcher is not None and not matcher(obj):
                continue
            meta = obj["metadata"]
            if self.store.find(resource, meta.get("namespace", ""), meta["name"]) is None:
                continue  # collected with an owner deleted earlier in this loop
            last, _ = self.store.delete(
                resource,
                meta.get("namespace", ""),
                meta["name"],
                propagation=propagation,
                dry_run=dry_run,
            )
            deleted.append(self._out(route, last))
        body = {
            "kind": resource.list_kind,
            "apiVersion": resource.api_version(route.version),
            "metadata": {"resourceVersion": str(self.store.rv)},
            "items": deleted,
        }
        return _respond(request, 200, body)

    def _field_validation(
        self, request: Request, route: Route, body: dict[str, Any]
    ) -> tuple[dict[str, Any], list[str]]:
        """Server-side field validation (``fieldValidation``, kubectl's default: Strict).

        Strict refuses unknown fields with 400; Warn (the default) and Ignore drop them, Warn
        also returns the warnings for ``Warning`` headers. Known fields pass unchanged.
        """
        from trikopf.apiserver import openapi

        resource = route.resource
        described = openapi.OpenApiResource(
            group=resource.group,
            version=route.version,
            kind=resource.kind,
            plural=resource.plural,
            namespaced=resource.namespaced,
            schema=resource.schemas.get(route.version) if resource.custom else None,
        )
        try:
            warnings = openapi.check_fields(
                body, described, request.query_value("fieldValidation") or None
            )
        except openapi.FieldValidationError as exc:
            raise ApiError(exc.code, exc.message) from None
        schema = openapi.resource_schema(described)
        if warnings or openapi.unknown_fields(body, schema):
            body = openapi.prune_unknown_fields(body, schema)
        if resource.custom and described.schema:
            from trikopf.apiserver.defaulting import apply_defaults

            body = apply_defaults(store_clone(body), described.schema)
        return body, warnings


def _patch_options_invalid(field: str, message: str) -> ApiError:
    """422 for a query parameter that this kind of patch does not take."""
    return ApiError(
        422,
        f'PatchOptions.meta.k8s.io "" is invalid: {field}: Forbidden: {message}',
        details={
            "group": "meta.k8s.io",
            "kind": "PatchOptions",
            "causes": [
                {
                    "reason": "FieldValueForbidden",
                    "message": f"Forbidden: {message}",
                    "field": field,
                }
            ],
        },
    )


def _record_keeping_last_applied(
    old: dict[str, Any] | None, new: dict[str, Any], *, write: apply.Write, config: dict[str, Any]
) -> None:
    """kubectl's server-side apply: ownership, then its client-side annotation kept in step.

    As on a real server, an object that still has ``last-applied-configuration`` from a
    client-side apply gets it rewritten to this configuration (after the ownership is
    computed, so that the annotation's owner does not change).
    """
    apply.record(old, new, write)
    if old is None or apply.LAST_APPLIED not in (old["metadata"].get("annotations") or {}):
        return
    annotations = new["metadata"].setdefault("annotations", {})
    annotations[apply.LAST_APPLIED] = apply.last_applied_of(config)
