"""Routing and request handling: HTTP requests in, Kubernetes API answers out."""

from __future__ import annotations

import base64
import binascii
import contextlib
import functools
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
import attrs
import yaml

from trikopf._util.http_server import Request, Response
from trikopf.apiserver import discovery, errors
from trikopf.apiserver.errors import ApiError
from trikopf.apiserver.faults import Faults, RequestLog, RequestRecord, now
from trikopf.apiserver.jsonio import dumps, loads
from trikopf.apiserver.resources import NAMESPACE_KEY, ResourceType
from trikopf.apiserver.store import Store, Track, now_timestamp
from trikopf.apiserver.store import clone as store_clone
from trikopf.apiserver.watch import WatchRequest, stream_watch

__all__ = ["ApiApp"]

logger = logging.getLogger(__name__)

JSON = "application/json"
_JSON_HEADERS = [("Content-Type", JSON), ("Cache-Control", "no-cache, private")]
_HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
_TRUE = ("true", "1", "True")
_PATCH_TYPES = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


@attrs.frozen(kw_only=True)
class Route:
    resource: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None
    legacy_watch: bool = False


def json_response(status: int, body: Any, headers: list[tuple[str, str]] | None = None) -> Response:
    return Response(status=status, headers=[*_JSON_HEADERS, *(headers or ())], body=dumps(body))


def error_response(error: ApiError) -> Response:
    return json_response(error.code, error.status(), error.headers)


def http_error_response(status: int, message: str) -> Response:
    """Malformed or oversized requests, answered as Status bodies."""
    if status == 413:
        return error_response(ApiError(413, f"Request entity too large: {message}"))
    return error_response(ApiError(status, message))


@attrs.define(eq=False)
class ApiApp:
    """The handler behind :func:`serve_http` for one embedded API server."""

    store: Store
    faults: Faults
    requests: RequestLog
    token: str | None = None
    bookmark_interval: float = 60.0
    address: str = "127.0.0.1:0"

    async def handle(self, request: Request) -> Response:
        """Answer one request; never raises for the client's mistakes."""
        response = await self._handle(request)
        self.requests.add(
            RequestRecord(
                method=request.method,
                path=request.path,
                query=request.query,
                status=response.status,
                time=now(),
                user_agent=request.headers.get("user-agent") or "",
            )
        )
        return response

    async def _handle(self, request: Request) -> Response:
        path = request.path
        if path in _HEALTH_PATHS:
            return Response(status=200, headers=[("Content-Type", "text/plain")], body=b"ok")
        if self.token is not None:
            header = request.headers.get("authorization") or ""
            if not hmac.compare_digest(header.encode(), f"Bearer {self.token}".encode()):
                return error_response(ApiError(401, "Unauthorized", reason="Unauthorized"))
        if self.faults.paused:
            await self.faults.wait_until_resumed()
        delay = self.faults.latency_for(request.method, path)
        if delay:
            await anyio.sleep(delay)
        is_watch = request.query_value("watch", "") in _TRUE or "/watch/" in path
        failure = self.faults.take_failure(request.method, path, is_watch)
        if failure is not None:
            return _injected_failure(failure.status, failure.retry_after, failure.message)
        try:
            return self._route(request)
        except ApiError as exc:
            return error_response(exc)
        except Exception as exc:
            logger.exception("The embedded API server failed on %s %s", request.method, path)
            return error_response(ApiError(500, f"Internal error occurred: {exc!r}"))

    # ------------------------------------------------------------------ routing

    def _route(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        if path == "/version":
            return json_response(200, discovery.version_info())
        if parts and parts[0] == "openapi":
            return self._openapi(request)
        if parts in (["api"], ["apis"]):
            aggregated = discovery.aggregated_version(request.headers.get("accept"))
            if aggregated is not None:
                document = discovery.aggregated_discovery(
                    self.store.registry, core=parts == ["api"], version=aggregated
                )
                media_type = (
                    f"application/json;g=apidiscovery.k8s.io;v={aggregated};"
                    "as=APIGroupDiscoveryList"
                )
                return Response(
                    status=200,
                    headers=[("Content-Type", media_type), ("Cache-Control", "no-cache, private")],
                    body=dumps(document),
                )
        if parts == ["api"]:
            return json_response(200, discovery.api_versions(self.address))
        if parts == ["apis"]:
            return json_response(200, discovery.api_group_list(self.store.registry))
        if len(parts) == 2 and parts[0] == "apis":
            group_body = discovery.api_group(self.store.registry, parts[1])
            if group_body is None:
                raise _not_found_path()
            return json_response(200, group_body)
        if parts[:1] == ["api"] and len(parts) >= 2:
            group, version, rest = "", parts[1], parts[2:]
        elif parts[:1] == ["apis"] and len(parts) >= 3:
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise _not_found_path()
        if not rest:
            resources = discovery.api_resource_list(self.store.registry, group, version)
            if resources is None:
                raise _not_found_path()
            return json_response(200, resources)
        route = self._resolve(group, version, rest)
        return self._dispatch(request, route)

    def _resolve(self, group: str, version: str, rest: list[str]) -> Route:
        registry = self.store.registry
        legacy_watch = False
        if rest[0] == "watch":
            legacy_watch = True
            rest = rest[1:]
            if not rest:
                raise _not_found_path()
        namespace: str | None = None
        if (
            rest[0] == "namespaces"
            and len(rest) >= 3
            and not (len(rest) == 3 and rest[2] in ("status", "finalize"))
        ):
            namespace = rest[1]
            rest = rest[2:]
        if len(rest) > 3:
            raise _not_found_path()
        resource = registry.lookup(group, version, rest[0])
        if resource is None:
            raise _not_found_path()
        if resource.namespaced != (namespace is not None) and (
            namespace is not None or len(rest) > 1
        ):
            raise _not_found_path()  # cluster-scoped under a namespace, or a named object
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and (subresource not in resource.subresources or legacy_watch):
            raise _not_found_path()
        return Route(
            resource=resource,
            version=version,
            namespace=namespace,
            name=name,
            subresource=subresource,
            legacy_watch=legacy_watch,
        )

    def _dispatch(self, request: Request, route: Route) -> Response:
        method = request.method
        _check_accept(request)
        if route.legacy_watch:
            if method != "GET":
                raise _method_not_allowed(route)
            return self._watch(request, route)
        if route.subresource == "scale":
            return self._scale(request, route)
        if method in ("GET", "HEAD"):
            if route.name is None:
                if request.query_value("watch", "") in _TRUE:
                    return self._watch(request, route)
                return self._list(request, route)
            return self._get(request, route)
        if route.resource.namespaced and route.namespace is None:
            raise _method_not_allowed(route)
        if method == "POST" and route.name is None:
            return self._create(request, route)
        if method == "PUT" and route.name is not None:
            return self._replace(request, route)
        if method == "PATCH" and route.name is not None:
            return self._patch(request, route)
        if method == "DELETE" and route.subresource is None:
            if route.name is None:
                return self._delete_collection(request, route)
            return self._delete(request, route)
        raise _method_not_allowed(route)

    # ------------------------------------------------------------------ reads

    def _out(self, route: Route, obj: dict[str, Any]) -> dict[str, Any]:
        api_version = route.resource.api_version(route.version)
        if obj.get("apiVersion") != api_version:
            return {**obj, "apiVersion": api_version}
        return obj

    def _get(self, request: Request, route: Route) -> Response:
        assert route.name is not None
        obj = self.store.get(route.resource, route.namespace or "", route.name)
        table = _table_version(request)
        if table and route.subresource is None:
            return json_response(200, self._table(request, route, [obj], table, False, None, None))
        return _respond(request, 200, self._out(route, obj))

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

    def _check_not_too_large(self, asked: int) -> None:
        if asked > self.store.rv:
            raise ApiError(
                504,
                f"Too large resource version: {asked}, current: {self.store.rv}",
                reason="Timeout",
                details={
                    "causes": [
                        {
                            "reason": "ResourceVersionTooLarge",
                            "message": "Too large resource version",
                        }
                    ],
                    "retryAfterSeconds": 1,
                },
            )

    def _list(self, request: Request, route: Route) -> Response:
        resource = route.resource
        matcher = self._matcher(request, route)
        limit_text = request.query_value("limit", "") or ""
        try:
            limit = int(limit_text) if limit_text else 0
        except ValueError:
            raise ApiError(400, f"limit: Invalid value: {limit_text!r}") from None
        rv_text = request.query_value("resourceVersion", "") or ""
        if rv_text not in ("", "0"):
            self._check_not_too_large(_parse_rv(rv_text))
        list_rv = self.store.rv
        start: tuple[str, str] | None = None
        token = request.query_value("continue", "") or ""
        if token:
            list_rv, start = _decode_continue(token)
            log_floor = self.store.log(resource.key).compacted_rv
            if list_rv < log_floor:
                raise ApiError(
                    410,
                    "The provided continue parameter is too old to display a consistent list"
                    " result. You can start a new list without the continue parameter.",
                    reason="Expired",
                )
        items: list[dict[str, Any]] = []
        next_token: str | None = None
        remaining = 0
        if token:
            # Later pages show the cluster as it was at the first page's version.
            objects = self.store.objects_at(resource, route.namespace, list_rv)
        else:
            objects = list(self.store.iter_objects(resource, route.namespace))
        for obj in objects:
            meta = obj["metadata"]
            key = (meta.get("namespace", ""), meta["name"])
            if start is not None and key <= start:
                continue
            if matcher is not None and not matcher(obj):
                continue
            if limit and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
        if limit and remaining:
            last = items[-1]["metadata"]
            next_token = _encode_continue(list_rv, (last.get("namespace", ""), last["name"]))
        table = _table_version(request)
        if table:
            body = self._table(request, route, items, table, True, next_token, remaining or None)
            body["metadata"]["resourceVersion"] = str(list_rv)
            return json_response(200, body)
        api_version = resource.api_version(route.version)
        metadata: dict[str, Any] = {"resourceVersion": str(list_rv)}
        if next_token:
            metadata["continue"] = next_token
            metadata["remainingItemCount"] = remaining
        if _wants_yaml(request):
            if resource.custom:
                out_items = [self._out(route, obj) for obj in items]
            else:
                out_items = [_without_type(obj) for obj in items]
            body = {
                "kind": resource.list_kind,
                "apiVersion": api_version,
                "metadata": metadata,
                "items": out_items,
            }
            return _respond(request, 200, body)
        # JSON lists are assembled from each object's stored bytes, serialised only once.
        store = self.store
        storage_head = b'{"apiVersion":%s,"kind":%s,' % (
            dumps(resource.api_version()),
            dumps(resource.kind),
        )
        parts: list[bytes] = []
        for obj in items:
            raw = store.raw_of(resource, obj)
            if resource.custom:
                parts.append(
                    raw if api_version == resource.api_version() else dumps(self._out(route, obj))
                )
            elif raw.startswith(storage_head):
                parts.append(b"{" + raw[len(storage_head) :])  # no kind/apiVersion in items
            else:
                parts.append(dumps(_without_type(obj)))
        data = b'{"kind":%s,"apiVersion":%s,"metadata":%s,"items":[%s]}' % (
            dumps(resource.list_kind),
            dumps(api_version),
            dumps(metadata),
            b",".join(parts),
        )
        return Response(status=200, headers=list(_JSON_HEADERS), body=data)

    def _table(
        self,
        request: Request,
        route: Route,
        objects: list[dict[str, Any]],
        api_version: str,
        is_list: bool,
        continue_: str | None,
        remaining: int | None,
    ) -> dict[str, Any]:
        from trikopf.apiserver import tables

        resource = route.resource
        columns = resource.printer_columns.get(route.version) if resource.custom else None
        try:
            return tables.render_table(
                [self._out(route, obj) for obj in objects],
                kind_is_list=is_list,
                printer_columns=list(columns)
                if columns is not None
                else ([] if resource.custom else None),
                resource_version=str(self.store.rv),
                continue_=continue_,
                group=resource.group,
                kind=resource.kind,
                include_object=request.query_value("includeObject", "Metadata") or "Metadata",
                api_version=api_version,
                remaining_item_count=remaining,
            )
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None

    def _watch(self, request: Request, route: Route) -> Response:
        matcher = self._matcher(request, route)
        if route.name is not None:
            name = route.name
            inner = matcher

            def matcher(obj: dict[str, Any]) -> bool:
                return obj["metadata"]["name"] == name and (inner is None or inner(obj))

        rv_text = request.query_value("resourceVersion", "") or ""
        if rv_text not in ("", "0"):
            # A version from the future (e.g. from before a restart without a state file)
            # would otherwise wait silently for events that never come: the client must relist.
            self._check_not_too_large(_parse_rv(rv_text))
        timeout_text = request.query_value("timeoutSeconds", "") or ""
        try:
            timeout = float(int(timeout_text)) if timeout_text else None
        except ValueError:
            raise ApiError(400, f"timeoutSeconds: Invalid value: {timeout_text!r}") from None
        watch_request = WatchRequest(
            resource=route.resource,
            version=route.version,
            namespace=route.namespace,
            matcher=matcher,
            resource_version=rv_text,
            allow_bookmarks=(request.query_value("allowWatchBookmarks", "") or "") in _TRUE,
            timeout=timeout if timeout and timeout > 0 else None,
            bookmark_interval=self.bookmark_interval,
            send_initial_events=(request.query_value("sendInitialEvents", "") or "") in _TRUE,
        )
        store, faults = self.store, self.faults
        table = _table_version(request)
        if table and route.subresource is None:
            # kubectl get --watch asks for Tables: each event carries a one-row Table.
            def render(obj: dict[str, Any]) -> dict[str, Any]:
                return self._table(request, route, [obj], table, False, None, None)

            return Response(
                status=200,
                headers=[("Content-Type", JSON), ("Cache-Control", "no-cache, private")],
                stream=lambda: _tabulated(stream_watch(store, faults, watch_request), render),
            )
        return Response(
            status=200,
            headers=[("Content-Type", JSON), ("Cache-Control", "no-cache, private")],
            stream=lambda: stream_watch(store, faults, watch_request),
        )

    # ------------------------------------------------------------------ writes

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
        from trikopf.apiserver import apply, managedfields

        assert route.name is not None
        if not request.query_value("fieldManager"):
            raise ApiError(
                400, "PATCH, application/apply-patch+yaml requires fieldManager to be set"
            )
        body = _parse_body(request.body, "application/yaml", route)
        if not isinstance(body, dict):
            raise ApiError(400, "the applied configuration must be an object")
        metadata = body.get("metadata")
        if isinstance(metadata, dict) and metadata.get("managedFields") is not None:
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
        existing = self.store.find(resource, namespace, route.name)
        if existing is None:
            if route.subresource is not None:
                raise errors.not_found(resource.group, resource.plural, route.name)
            body.setdefault("metadata", {})["name"] = route.name
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
    ) -> Any:
        """Who writes (the field manager) and the type that ownership is computed with."""
        from trikopf.apiserver import apply, managedfields

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
        from trikopf.apiserver import apply

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

    # ------------------------------------------------------------------ openapi

    def _openapi(self, request: Request) -> Response:
        try:
            from trikopf.apiserver import openapi  # type: ignore[attr-defined,unused-ignore]
        except ImportError:
            raise _not_found_path() from None
        resources = []
        for resource in self.store.registry.all():
            for version in resource.versions:
                resources.append(
                    openapi.OpenApiResource(
                        group=resource.group,
                        version=version,
                        kind=resource.kind,
                        plural=resource.plural,
                        namespaced=resource.namespaced,
                        schema=resource.schemas.get(version) if resource.custom else None,
                        subresources=frozenset(resource.subresources),
                    )
                )
        # kubectl 1.27 reads /openapi/v2 only as protobuf: the Accept header decides.
        answer = openapi.handle_openapi(
            request.path, resources, accept=request.headers.get("accept")
        )
        if answer is None:
            raise _not_found_path()
        status, body, content_type = answer
        return Response(status=status, headers=[("Content-Type", content_type)], body=body)


# ---------------------------------------------------------------------- helpers


def _injected_failure(status: int, retry_after: float | None, message: str) -> Response:
    reasons = {
        429: ("TooManyRequests", "Too many requests, please try again later."),
        500: ("InternalError", "Internal error occurred: injected failure"),
        503: ("ServiceUnavailable", "The server is currently unable to handle the request"),
        504: ("Timeout", "The server was unable to return a response in the time allotted"),
    }
    reason, default_message = reasons.get(status, (None, f"injected failure ({status})"))
    headers: list[tuple[str, str]] = []
    details: dict[str, Any] | None = None
    if retry_after is not None:
        seconds = max(0, round(retry_after))
        headers.append(("Retry-After", str(seconds)))
        details = {"retryAfterSeconds": seconds}
    return error_response(
        ApiError(
            status, message or default_message, reason=reason, details=details, headers=headers
        )
    )


def _not_found_path() -> ApiError:
    return ApiError(404, "the server could not find the requested resource", details={})


def _method_not_allowed(route: Route) -> ApiError:
    return ApiError(
        405,
        "the server does not allow this method on the requested resource",
        details={"kind": route.resource.plural},
    )


def _parse_rv(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise ApiError(
            400, f'resourceVersion: Invalid value: "{text}": must be a non-negative integer'
        )
    return value


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    raw = dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": [key[0], key[1]]})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = loads(raw)
        rv = int(data["rv"])
        start = data["start"]
        return rv, (str(start[0]), str(start[1]))
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        raise ApiError(
            400, "continue key is not valid: the continue token could not be decoded"
        ) from None


def _content_type(request: Request) -> str:
    return (request.headers.get("content-type") or JSON).split(";")[0].strip().lower()


def _parse_body(body: bytes, content_type: str, route: Route | None) -> Any:
    if content_type in ("application/yaml", "application/apply-patch+yaml"):
        try:
            return yaml.safe_load(body.decode("utf-8"))
        except (yaml.YAMLError, UnicodeDecodeError) as exc:
            raise ApiError(
                400, f"the body of the request could not be decoded as YAML: {exc}"
            ) from None
    try:
        return loads(body)
    except ValueError as exc:
        what = f" (must be of type {route.resource.kind})" if route is not None else ""
        raise ApiError(
            400,
            f"the object provided is unrecognized{what}: couldn't get version/kind; json parse"
            f" error: {exc}",
        ) from None


def _read_object(request: Request, route: Route) -> dict[str, Any]:
    content_type = _content_type(request)
    protobuf = content_type == "application/vnd.kubernetes.protobuf"
    if content_type in ("application/json", "*/*", ""):
        content_type = JSON
    elif content_type not in ("application/yaml",) and not protobuf:
        raise ApiError(
            415,
            "the body of the request was in an unknown format - accepted media types include:"
            " application/json, application/yaml",
        )
    if not request.body.strip():
        raise ApiError(400, "the body of the request is empty")
    if protobuf:
        # kubectl >= 1.31 creates built-in kinds with protobuf bodies (kubectl create ...).
        from trikopf.apiserver import protobuf as kube_protobuf

        try:
            body: Any = kube_protobuf.decode_object(request.body)
        except kube_protobuf.ProtobufError as exc:
            raise ApiError(
                415,
                f"the body of the request was in an unknown format ({exc}) - accepted media"
                " types include: application/json, application/yaml",
            ) from None
    else:
        body = _parse_body(request.body, content_type, route)
    resource = route.resource
    if not isinstance(body, dict):
        raise ApiError(
            400,
            f"the object provided is unrecognized (must be of type {resource.kind}): couldn't get"
            " version/kind; json parse error: the body is not a JSON object",
        )
    kind = body.get("kind")
    if kind is not None and kind != resource.kind:
        raise ApiError(
            400,
            f"the object provided is unrecognized (must be of type {resource.kind}): kind"
            f" {kind!r} does not match",
        )
    api_version = body.get("apiVersion")
    if api_version is not None:
        group, _, version = str(api_version).rpartition("/")
        if group != resource.group or version not in resource.versions:
            raise ApiError(
                400,
                f"the API version in the data ({api_version}) does not match the expected API"
                f" version ({resource.api_version(route.version)})",
            )
    return body


def _dry_run(request: Request) -> bool:
    values = request.query.get("dryRun") or []
    for value in values:
        if value != "All":
            raise ApiError(400, f'dryRun: Unsupported value: "{value}": supported values: "All"')
    return bool(values)


def _check_accept(request: Request) -> None:
    accept = request.headers.get("accept") or ""
    if not accept:
        return
    for media_range in accept.split(","):
        media_type = media_range.split(";")[0].strip().lower()
        if media_type in ("application/json", "*/*", "application/*", "application/yaml", ""):
            return
        if media_type.startswith("application/json"):
            return
    raise ApiError(
        406,
        "only the following media types are accepted: application/json, application/yaml",
    )


def _table_version(request: Request) -> str | None:
    accept = request.headers.get("accept")
    if not accept or "as=Table" not in accept:
        return None
    from trikopf.apiserver import tables

    return tables.table_version(accept)


async def _tabulated(
    chunks: AsyncIterator[bytes], render: Callable[[dict[str, Any]], dict[str, Any]]
) -> AsyncIterator[bytes]:
    """Re-render a watch stream's events as Tables; closes the inner stream when closed."""
    from trikopf.apiserver import tables

    headers = True
    async with contextlib.aclosing(chunks):  # type: ignore[type-var]
        async for chunk in chunks:
            lines = []
            for line in chunk.splitlines(keepends=True):
                if line.strip():
                    lines.append(tables.tabulate_watch_line(line, render, headers=headers))
                    headers = headers and b'"type":"BOOKMARK"' in line
            yield b"".join(lines)


def _with_warnings(response: Response, warnings: list[str]) -> Response:
    """Add ``Warning: 299 - "..."`` headers, as the real server sends for unknown fields."""
    if not warnings:
        return response
    extra = [("Warning", "299 - " + dumps(text).decode()) for text in warnings]
    return attrs.evolve(response, headers=[*response.headers, *extra])


def _without_type(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}


def _wants_yaml(request: Request) -> bool:
    accept = (request.headers.get("accept") or "").split(",")[0].split(";")[0].strip().lower()
    return accept == "application/yaml"


def _respond(request: Request, status: int, body: Any) -> Response:
    if _wants_yaml(request):
        text = yaml.safe_dump(body, sort_keys=False)
        return Response(
            status=status, headers=[("Content-Type", "application/yaml")], body=text.encode()
        )
    return json_response(status, body)
