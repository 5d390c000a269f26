"""Requests and responses of the embedded API server: parsing bodies, answering in JSON or YAML."""

from __future__ import annotations

import base64
import binascii
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import attrs
import yaml

from trikopf._util.http_server import Request, Response
from trikopf.apiserver.errors import ApiError
from trikopf.apiserver.jsonio import dumps, loads
from trikopf.apiserver.resources import ResourceType

JSON = "application/json"
_JSON_HEADERS = [("Content-Type", JSON), ("Cache-Control", "no-cache, private")]
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
