"""The embedded API server as an async context manager: :func:`open_apiserver`."""

from __future__ import annotations

import base64
import contextlib
import functools
import ipaddress
import os
import pathlib
from collections.abc import AsyncIterator
from typing import Any

import anyio
import attrs
import yaml

from trikopf._util.http_server import serve_http
from trikopf.apiserver.app import ApiApp, http_error_response
from trikopf.apiserver.faults import Faults, RequestLog
from trikopf.apiserver.jsonio import dumps, loads
from trikopf.apiserver.resources import ResourceType
from trikopf.apiserver.store import Store, clone
from trikopf.apiserver.tls import ServerCertificates, make_certificates

__all__ = ["ApiServer", "open_apiserver"]


@attrs.define(eq=False)
class ApiServer:
    """A running embedded API server (see :func:`open_apiserver`)."""

    store: Store
    faults: Faults
    requests: RequestLog
    host: str
    token: str | None
    certificates: ServerCertificates | None
    port: int = 0
    state_file: pathlib.Path | None = None

    @property
    def url(self) -> str:
        scheme = "https" if self.certificates is not None else "http"
        host = self.host
        try:
            if ipaddress.ip_address(host).version == 6:
                host = f"[{host}]"
        except ValueError:
            pass
        return f"{scheme}://{host}:{self.port}"

    @property
    def ca_pem(self) -> bytes | None:
        """The PEM of the CA that signed the server's certificate (``None`` without TLS)."""
        return self.certificates.ca_pem if self.certificates is not None else None

    @property
    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig (as a dict) that kubectl and trikopf accept, context ``trikopf``."""
        cluster: dict[str, Any] = {"server": self.url}
        if self.certificates is not None:
            cluster["certificate-authority-data"] = base64.b64encode(
                self.certificates.ca_pem
            ).decode()
        user: dict[str, Any] = {"token": self.token} if self.token is not None else {}
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "trikopf", "cluster": cluster}],
            "users": [{"name": "trikopf", "user": user}],
            "contexts": [
                {
                    "name": "trikopf",
                    "context": {"cluster": "trikopf", "user": "trikopf", "namespace": "default"},
                }
            ],
            "current-context": "trikopf",
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> pathlib.Path:
        """Write :attr:`kubeconfig` as YAML to ``path`` (mode 0600); returns the path."""
        target = pathlib.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(self.kubeconfig, sort_keys=False)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        return target

    def resource(self, name: str) -> ResourceType:
        """A served resource by plural, singular, kind, short name or ``plural.group``."""
        resource = self.store.registry.find(name)
        if resource is None:
            raise LookupError(f"no such resource is served: {name!r}")
        return resource

    def objects(self, resource: str, namespace: str | None = None) -> list[dict[str, Any]]:
        """Copies of the stored objects of a resource (one namespace or all), in key order."""
        return [clone(obj) for obj in self.store.iter_objects(self.resource(resource), namespace)]

    def get_object(
        self, resource: str, name: str, namespace: str | None = None
    ) -> dict[str, Any] | None:
        """A copy of one stored object, or ``None`` if there is none."""
        found = self.store.find(self.resource(resource), namespace or "", name)
        return clone(found) if found is not None else None

    def create_object(self, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Store an object directly (no HTTP; events are sent as for any create).

        The resource comes from the body's ``apiVersion`` and ``kind``; the namespace from
        the argument or the body (``default`` for namespaced kinds if neither says).
        """
        api_version = str(body.get("apiVersion", ""))
        group = api_version.rpartition("/")[0]
        for resource in self.store.registry.all():
            if resource.group == group and resource.kind == body.get("kind"):
                ns = namespace or (body.get("metadata") or {}).get("namespace") or "default"
                return clone(self.store.create(resource, ns if resource.namespaced else "", body))
        raise LookupError(f"no served resource has kind {body.get('kind')!r} in {api_version!r}")

    def save_state(self) -> None:
        """Write the objects to the state file now (atomically), if there is one."""
        if self.state_file is None:
            return
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_bytes(dumps(self.store.snapshot()))
        os.replace(tmp, self.state_file)


@contextlib.asynccontextmanager
async def open_apiserver(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str | None = None,
    tls: bool = False,
    history_window: int = 10_000,
    bookmark_interval: float = 60.0,
    state_file: str | os.PathLike[str] | None = None,
    max_body_size: int = 3 * 1024 * 1024,
) -> AsyncIterator[ApiServer]:
    """Run an embedded Kubernetes API server for the duration of the ``async with`` block.

    Starts the HTTP server in its own task group (one task per connection) and returns
    once it listens; ``port=0`` picks a free port. The block's exit (or cancellation of
    the enclosing scope) closes the listener and every connection and watch stream.
    ``history_window`` is how many events each resource retains for watches (older
    versions get 410 Gone); ``bookmark_interval`` is the seconds between BOOKMARK events
    on idle watches that ask for them. With ``state_file``, objects are loaded from it at
    start and written back shortly after every change and at exit.
    """
    if history_window < 1:
        raise ValueError("history_window must be positive")
    state_path = pathlib.Path(state_file) if state_file is not None else None
    dirty = _Dirty()
    store = Store(history_window=history_window, on_change=dirty.mark if state_path else None)
    if state_path is not None and state_path.exists():
        try:
            state = loads(state_path.read_bytes())
        except ValueError as exc:
            raise ValueError(f"the state file {state_path} is not valid JSON: {exc}") from None
        store.restore(state)
    store.bootstrap()
    faults = Faults(store.wake_all, store.drop_watches, store.compact)
    requests = RequestLog()
    certificates = make_certificates([host]) if tls else None
    server = ApiServer(
        store=store,
        faults=faults,
        requests=requests,
        host=host,
        token=token,
        certificates=certificates,
        state_file=state_path,
    )
    app = ApiApp(
        store=store,
        faults=faults,
        requests=requests,
        token=token,
        bookmark_interval=bookmark_interval,
    )
    async with anyio.create_task_group() as tg:
        server.port = await tg.start(
            functools.partial(
                serve_http,
                app.handle,
                host=host,
                port=port,
                ssl_context=certificates.server_context() if certificates else None,
                max_body_size=max_body_size,
                error_responder=http_error_response,
            )
        )
        app.address = f"{host}:{server.port}"
        if state_path is not None:
            tg.start_soon(_persist, server, dirty)
        try:
            yield server
        finally:
            tg.cancel_scope.cancel()
    server.save_state()


@attrs.define(eq=False)
class _Dirty:
    event: anyio.Event | None = None
    pending: bool = False

    def mark(self) -> None:
        self.pending = True
        if self.event is not None:
            self.event.set()

    async def wait(self) -> None:
        while not self.pending:
            self.event = anyio.Event()
            await self.event.wait()
        self.pending = False


async def _persist(server: ApiServer, dirty: _Dirty) -> None:
    """Save the state shortly after changes, batching bursts of writes; runs until cancelled."""
    while True:
        await dirty.wait()
        await anyio.sleep(0.2)
        server.save_state()
