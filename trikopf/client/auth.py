"""Credentials at request time: tokens, token files, basic auth, exec plugins, TLS material.

:class:`Authenticator` turns a :class:`ConnectionInfo` into request headers and TLS material,
re-reading rotated token files and re-running exec plugins when their credential expires.
After a 401 the client calls :meth:`Authenticator.refresh` once: it drops cached credentials
and, when a :class:`CredentialsSource` was given (e.g. the operator's ``on.login`` handlers),
asks it for a new :class:`ConnectionInfo`.
"""

from __future__ import annotations

import base64
import datetime
import os
import pathlib
import ssl
import subprocess
import tempfile
import time
from typing import Any, Protocol

import anyio
import attrs

from trikopf.client import jsonlib
from trikopf.client.config import ConnectionInfo, ExecConfig
from trikopf.client.errors import ConfigError

__all__ = [
    "Authenticator",
    "CredentialsSource",
    "ExecCredential",
    "build_ssl_context",
    "run_exec_plugin",
]

EXEC_TIMEOUT = 60.0


class CredentialsSource(Protocol):
    """Provides connection info: first with ``previous=None``, again after a 401.

    Runs in the client's task; may await (e.g. call login handlers). Raising
    :class:`ConfigError` makes the request that needed it fail with that error.
    """

    async def __call__(self, *, previous: ConnectionInfo | None) -> ConnectionInfo: ...


@attrs.frozen(kw_only=True)
class ExecCredential:
    """What an exec plugin returned; ``expires_at`` is a POSIX time or ``None`` (never)."""

    token: str | None = attrs.field(default=None, repr=False)
    client_cert_data: bytes | None = attrs.field(default=None, repr=False)
    client_key_data: bytes | None = attrs.field(default=None, repr=False)
    expires_at: float | None = None

    def expired(self, *, margin: float = 10.0) -> bool:
        return self.expires_at is not None and time.time() + margin >= self.expires_at


def _parse_timestamp(value: str, what: str) -> float:
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    if "." in text:  # Python 3.10 accepts only 3 or 6 fractional digits: drop them
        head, _, rest = text.partition(".")
        digits = len(rest) - len(rest.lstrip("0123456789"))
        text = head + rest[digits:]
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{what}: expirationTimestamp {value!r} is not RFC 3339") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.timestamp()


def _exec_input(config: ExecConfig, info: ConnectionInfo) -> str:
    spec: dict[str, Any] = {"interactive": False}
    if config.provide_cluster_info:
        cluster: dict[str, Any] = {"server": info.server}
        if info.ca_data:
            cluster["certificate-authority-data"] = base64.b64encode(info.ca_data).decode()
        if info.insecure:
            cluster["insecure-skip-tls-verify"] = True
        if info.tls_server_name:
            cluster["tls-server-name"] = info.tls_server_name
        if info.proxy_url:
            cluster["proxy-url"] = info.proxy_url
        spec["cluster"] = cluster
    body = {"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec}
    return jsonlib.dumps(body).decode()


async def run_exec_plugin(config: ExecConfig, info: ConnectionInfo) -> ExecCredential:
    """Run an exec credential plugin once, never interactively, within :data:`EXEC_TIMEOUT`.

    Returns when the plugin exits. Raises :class:`ConfigError` with the plugin's stderr when
    it fails, cannot be started, times out, or prints something that is not an ExecCredential.
    """
    command = config.command
    if os.sep in command and not os.path.isabs(command) and config.base_dir:
        command = str(pathlib.Path(config.base_dir) / command)
    env = dict(os.environ)
    env.update(config.env)
    env["KUBERNETES_EXEC_INFO"] = _exec_input(config, info)
    what = f"exec plugin {config.command!r} of {info.origin}"
    try:
        with anyio.fail_after(EXEC_TIMEOUT):
            result = await anyio.run_process(
                [command, *config.args],
                env=env,
                check=False,
                stdin=subprocess.DEVNULL,
            )
    except TimeoutError:
        raise ConfigError(f"{what} did not finish within {EXEC_TIMEOUT:g}s") from None
    except OSError as exc:
        hint = f"; {config.install_hint.strip()}" if config.install_hint else ""
        raise ConfigError(f"{what} cannot be started: {exc.strerror or exc}{hint}") from None
    stderr = result.stderr.decode(errors="replace").strip()
    if result.returncode != 0:
        detail = f": {stderr}" if stderr else ""
        raise ConfigError(f"{what} failed with exit code {result.returncode}{detail}")
    try:
        body = jsonlib.loads(result.stdout)
    except ValueError:
        raise ConfigError(f"{what} printed something that is not JSON") from None
    if not isinstance(body, dict) or body.get("kind") != "ExecCredential":
        raise ConfigError(f"{what} printed JSON that is not an ExecCredential")
    if body.get("apiVersion") != config.api_version:
        raise ConfigError(
            f"{what} answered with apiVersion {body.get('apiVersion')!r}, "
            f"expected {config.api_version!r}"
        )
    status = body.get("status") or {}
    token = status.get("token") or None
    cert = status.get("clientCertificateData") or None
    key = status.get("clientKeyData") or None
    if token is None and (cert is None or key is None):
        raise ConfigError(f"{what} returned neither a token nor a client certificate and key")
    expires = status.get("expirationTimestamp")
    return ExecCredential(
        token=token,
        client_cert_data=cert.encode() if cert else None,
        client_key_data=key.encode() if key else None,
        expires_at=_parse_timestamp(expires, what) if expires else None,
    )


def build_ssl_context(
    info: ConnectionInfo, *, cert: bytes | None = None, key: bytes | None = None
) -> ssl.SSLContext:
    """The TLS context for ``info``: its CA (or the system's), verification, client certificate.

    Raises :class:`ConfigError` naming the piece that cannot be loaded (never its content).
    """
    # A cluster's own CA is the only one trusted for it, as with kubectl.
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    if info.insecure:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif not info.ca_data:
        context.load_default_certs()
    else:
        try:
            context.load_verify_locations(cadata=info.ca_data.decode("ascii", errors="replace"))
        except (ssl.SSLError, ValueError) as exc:
            raise ConfigError(
                f"the certificate authority of {info.origin} cannot be loaded: {exc}"
            ) from None
    cert = cert if cert is not None else info.client_cert_data
    key = key if key is not None else info.client_key_data
    if cert is not None and key is not None:
        # The ssl module loads certificates from files only: a private folder, gone right after.
        with tempfile.TemporaryDirectory(prefix="trikopf-") as folder:
            cert_file = pathlib.Path(folder) / "client.crt"
            key_file = pathlib.Path(folder) / "client.key"
            for path, data in ((cert_file, cert), (key_file, key)):
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as file:
                    file.write(data)
            try:
                context.load_cert_chain(cert_file, key_file)
            except (ssl.SSLError, ValueError):
                raise ConfigError(
                    f"the client certificate and key of {info.origin} cannot be loaded "
                    "(not PEM, or the key does not match the certificate)"
                ) from None
    return context


@attrs.define(eq=False)
class Authenticator:
    """Current credentials of one client; cheap to ask on every request.

    Not a task owner: it runs exec plugins in the caller's task, one at a time (a lock).
    """

    info: ConnectionInfo
    source: CredentialsSource | None = None
    _exec: ExecCredential | None = attrs.field(default=None, init=False)
    _token: str | None = attrs.field(default=None, init=False, repr=False)
    _token_mtime: float | None = attrs.field(default=None, init=False)
    _lock: anyio.Lock = attrs.field(factory=anyio.Lock, init=False)
    generation: int = attrs.field(default=0, init=False)  # bumped when credentials change

    @classmethod
    async def start(
        cls, info: ConnectionInfo | None, source: CredentialsSource | None
    ) -> Authenticator:
        """Resolve the first credentials (asking the source, running the exec plugin)."""
        if info is None:
            if source is None:
                raise ConfigError("a connection or a credentials source is needed")
            info = await source(previous=None)
        auth = cls(info, source)
        if info.exec is not None:
            auth._exec = await run_exec_plugin(info.exec, info)
        return auth

    def tls_material(self) -> tuple[bytes | None, bytes | None]:
        """The client certificate and key currently in force (exec-provided first)."""
        if self._exec is not None and self._exec.client_cert_data is not None:
            return self._exec.client_cert_data, self._exec.client_key_data
        return self.info.client_cert_data, self.info.client_key_data

    def _read_token_file(self, path: str) -> str:
        try:
            mtime = os.stat(path).st_mtime
            if self._token is None or mtime != self._token_mtime:
                self._token = pathlib.Path(path).read_text().strip()
                self._token_mtime = mtime
        except OSError as exc:
            raise ConfigError(
                f"cannot read the token file {path} of {self.info.origin}: {exc.strerror or exc}"
            ) from None
        return self._token

    async def authorization(self) -> str | None:
        """The ``Authorization`` header value for the next request, or ``None``.

        May run the exec plugin when its credential expired (awaits; raises ConfigError).
        """
        info = self.info
        if info.exec is not None:
            current = self._exec
            if current is None or current.expired():
                async with self._lock:
                    if self._exec is None or self._exec.expired():
                        self._exec = await run_exec_plugin(info.exec, info)
                        self.generation += 1
                current = self._exec
            if current.token:
                return f"Bearer {current.token}"
        if info.token:
            return f"Bearer {info.token}"
        if info.token_path:
            return f"Bearer {self._read_token_file(info.token_path)}"
        if info.username is not None and info.password is not None:
            pair = f"{info.username}:{info.password}".encode()
            return f"Basic {base64.b64encode(pair).decode()}"
        return None

    async def refresh(self, failed_generation: int) -> None:
        """Forget cached credentials after a 401 and get fresh ones (once per generation).

        Concurrent requests that failed with the same credentials share one refresh.
        """
        async with self._lock:
            if self.generation != failed_generation:
                return  # someone else refreshed already
            if self.source is not None:
                self.info = await self.source(previous=self.info)
            self._token = None
            self._token_mtime = None
            if self.info.exec is not None:
                self._exec = await run_exec_plugin(self.info.exec, self.info)
            else:
                self._exec = None
            self.generation += 1
