"""Where the cluster is and how to authenticate: kubeconfig, in-cluster, or explicit.

A :class:`ConnectionInfo` is a plain value; nothing here does network I/O. Secrets (tokens,
passwords, private keys) are hidden from ``repr`` and never put into error messages.
"""

from __future__ import annotations

import base64
import binascii
import os
import pathlib
from collections.abc import Mapping, Sequence
from typing import Any

import attrs
import yaml

from trikopf.client.errors import ConfigError

__all__ = [
    "INCLUSTER_DIR",
    "ConnectionInfo",
    "ExecConfig",
    "discover",
    "load_incluster",
    "load_kubeconfig",
]

INCLUSTER_DIR = pathlib.Path("/var/run/secrets/kubernetes.io/serviceaccount")


def _hidden(value: object) -> str:
    return "None" if value is None else "'<hidden>'"


@attrs.frozen(kw_only=True)
class ExecConfig:
    """An exec credential plugin from a kubeconfig user (``users[].user.exec``)."""

    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = attrs.field(default=(), repr=False)
    api_version: str = "client.authentication.k8s.io/v1"
    interactive_mode: str = "Never"
    provide_cluster_info: bool = False
    install_hint: str | None = None
    base_dir: str | None = None  # relative commands resolve against the kubeconfig's folder


@attrs.frozen(kw_only=True)
class ConnectionInfo:
    """Everything needed to reach and authenticate to one API server.

    Build it with :func:`load_kubeconfig`, :func:`load_incluster`, :func:`discover`, or
    directly (e.g. in an ``on.login`` handler). ``ca_data``/``client_cert_data``/
    ``client_key_data`` are PEM bytes. ``token_path`` is re-read when the file changes
    (service-account token rotation). Secrets never show in ``repr``.
    """

    server: str
    ca_path: str | None = None
    ca_data: bytes | None = attrs.field(default=None, repr=False)
    insecure: bool = False
    tls_server_name: str | None = None
    proxy_url: str | None = None
    token: str | None = attrs.field(default=None, repr=_hidden)
    token_path: str | None = None
    client_cert_path: str | None = None
    client_key_path: str | None = None
    client_cert_data: bytes | None = attrs.field(default=None, repr=False)
    client_key_data: bytes | None = attrs.field(default=None, repr=_hidden)
    username: str | None = None
    password: str | None = attrs.field(default=None, repr=_hidden)
    exec: ExecConfig | None = None
    namespace: str = "default"
    context: str | None = None
    origin: str = "explicit"  # where it came from, for error messages

    def __attrs_post_init__(self) -> None:
        if not self.server.startswith(("http://", "https://")):
            raise ConfigError(
                f"server {self.server!r} of {self.origin} must start with http:// or https://"
            )
        if self.proxy_url and not self.proxy_url.startswith(("http://", "https://")):
            raise ConfigError(
                f"proxy-url {self.proxy_url!r} of {self.origin}: "
                "only http:// and https:// proxies work (no SOCKS)"
            )


# --- kubeconfig ---------------------------------------------------------------------------


def _kubeconfig_paths(path: str | os.PathLike[str] | Sequence[str] | None) -> list[pathlib.Path]:
    if path is not None:
        if isinstance(path, str | os.PathLike):
            return [pathlib.Path(path).expanduser()]
        return [pathlib.Path(p).expanduser() for p in path]
    env = os.environ.get("KUBECONFIG")
    if env:
        return [pathlib.Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [pathlib.Path("~/.kube/config").expanduser()]


def _read_yaml(path: pathlib.Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read kubeconfig {path}: {exc.strerror or exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = ""
        mark = getattr(exc, "problem_mark", None)
        if mark is not None:
            where = f" at line {mark.line + 1}, column {mark.column + 1}"
        raise ConfigError(f"kubeconfig {path} is not valid YAML{where}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"kubeconfig {path} must be a mapping, not {type(data).__name__}")
    return data


def _named(
    doc: Mapping[str, Any], key: str, item: str, path: pathlib.Path
) -> list[tuple[str, dict[str, Any]]]:
    entries = doc.get(key) or []
    if not isinstance(entries, list):
        raise ConfigError(f"kubeconfig {path}: {key} must be a list")
    result = []
    for index, entry in enumerate(entries):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            raise ConfigError(f"kubeconfig {path}: {key}[{index}] has no name")
        body = entry.get(item) or {}
        if not isinstance(body, dict):
            raise ConfigError(f"kubeconfig {path}: {key}[{index}].{item} must be a mapping")
        result.append((entry["name"], {**body, "__dir__": str(path.parent)}))
    return result


@attrs.frozen
class _Merged:
    clusters: dict[str, dict[str, Any]]
    users: dict[str, dict[str, Any]]
    contexts: dict[str, dict[str, Any]]
    current_context: str | None
    sources: list[pathlib.Path]


def _merge(paths: list[pathlib.Path], *, explicit: bool) -> _Merged:
    # As kubectl merges KUBECONFIG: the first file to define a name (or current-context) wins.
    clusters: dict[str, dict[str, Any]] = {}
    users: dict[str, dict[str, Any]] = {}
    contexts: dict[str, dict[str, Any]] = {}
    current: str | None = None
    found: list[pathlib.Path] = []
    for path in paths:
        if not path.exists() and not explicit and len(paths) > 1:
            continue  # kubectl ignores missing files in a KUBECONFIG list
        doc = _read_yaml(path)
        found.append(path)
        for name, body in _named(doc, "clusters", "cluster", path):
            clusters.setdefault(name, body)
        for name, body in _named(doc, "users", "user", path):
            users.setdefault(name, body)
        for name, body in _named(doc, "contexts", "context", path):
            contexts.setdefault(name, body)
        if current is None and doc.get("current-context"):
            current = str(doc["current-context"])
    if not found:
        listed = ", ".join(str(p) for p in paths)
        raise ConfigError(f"none of the kubeconfig files exists: {listed}")
    return _Merged(clusters, users, contexts, current, found)


def _resolve_path(base: str, value: Any, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{what} must be a non-empty path")
    path = pathlib.Path(value).expanduser()
    if not path.is_absolute():
        path = pathlib.Path(base) / path
    return str(path)


def _decode(value: Any, what: str) -> bytes:
    if not isinstance(value, str):
        raise ConfigError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(value, validate=False)
    except (binascii.Error, ValueError):
        raise ConfigError(f"{what} is not valid base64") from None


def _read_file(path: str, what: str) -> bytes:
    try:
        return pathlib.Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def _exec_config(raw: Any, where: str, base_dir: str) -> ExecConfig:
    if not isinstance(raw, dict) or not isinstance(raw.get("command"), str):
        raise ConfigError(f"{where}: exec needs a command")
    api_version = raw.get("apiVersion") or "client.authentication.k8s.io/v1beta1"
    if api_version not in (
        "client.authentication.k8s.io/v1",
        "client.authentication.k8s.io/v1beta1",
    ):
        raise ConfigError(f"{where}: exec apiVersion {api_version!r} is not supported")
    env: list[tuple[str, str]] = []
    for item in raw.get("env") or []:
        if not isinstance(item, dict) or "name" not in item:
            raise ConfigError(f"{where}: exec env entries need a name and a value")
        env.append((str(item["name"]), str(item.get("value", ""))))
    mode = raw.get("interactiveMode") or "IfAvailable"
    if mode == "Always":
        raise ConfigError(
            f"{where}: the exec plugin {raw['command']!r} needs an interactive terminal "
            "(interactiveMode: Always), which an operator never has"
        )
    return ExecConfig(
        command=raw["command"],
        args=tuple(str(a) for a in raw.get("args") or ()),
        env=tuple(env),
        api_version=api_version,
        interactive_mode=mode,
        provide_cluster_info=bool(raw.get("provideClusterInfo", False)),
        install_hint=raw.get("installHint"),
        base_dir=base_dir,
    )


def load_kubeconfig(
    path: str | os.PathLike[str] | Sequence[str] | None = None,
    *,
    context: str | None = None,
) -> ConnectionInfo:
    """Read a kubeconfig (or ``KUBECONFIG``'s files merged as kubectl merges them).

    ``context`` picks a context instead of ``current-context``. Certificate and token files are
    read now, so a broken file fails here with a message naming it; exec plugins run later, when
    the client needs a credential. Raises :class:`ConfigError`.
    """
    paths = _kubeconfig_paths(path)
    merged = _merge(paths, explicit=path is not None)
    files = ", ".join(str(p) for p in merged.sources)
    name = context or merged.current_context
    if not name:
        raise ConfigError(f"kubeconfig {files} sets no current-context and none was given")
    if name not in merged.contexts:
        known = ", ".join(sorted(merged.contexts)) or "none"
        raise ConfigError(f"context {name!r} is not in kubeconfig {files} (contexts: {known})")
    ctx = merged.contexts[name]
    cluster_name = ctx.get("cluster")
    if not cluster_name or cluster_name not in merged.clusters:
        raise ConfigError(f"context {name!r} refers to unknown cluster {cluster_name!r} in {files}")
    cluster = merged.clusters[cluster_name]
    user_name = ctx.get("user")
    user: dict[str, Any] = {}
    if user_name:
        if user_name not in merged.users:
            raise ConfigError(f"context {name!r} refers to unknown user {user_name!r} in {files}")
        user = merged.users[user_name]

    where_c = f"cluster {cluster_name!r}"
    where_u = f"user {user_name!r}"
    server = cluster.get("server")
    if not isinstance(server, str) or not server:
        raise ConfigError(f"{where_c} in {files} has no server")

    ca_path = None
    ca_data = None
    if cluster.get("certificate-authority-data"):
        ca_data = _decode(
            cluster["certificate-authority-data"], f"{where_c} certificate-authority-data"
        )
    elif cluster.get("certificate-authority"):
        ca_path = _resolve_path(
            cluster["__dir__"], cluster["certificate-authority"], f"{where_c} certificate-authority"
        )
        ca_data = _read_file(ca_path, f"certificate authority of {where_c}")

    cert_data = key_data = None
    cert_path = key_path = None
    if user.get("client-certificate-data"):
        cert_data = _decode(user["client-certificate-data"], f"{where_u} client-certificate-data")
    elif user.get("client-certificate"):
        cert_path = _resolve_path(
            user["__dir__"], user["client-certificate"], f"{where_u} client-certificate"
        )
        cert_data = _read_file(cert_path, f"client certificate of {where_u}")
    if user.get("client-key-data"):
        key_data = _decode(user["client-key-data"], f"{where_u} client-key-data")
    elif user.get("client-key"):
        key_path = _resolve_path(user["__dir__"], user["client-key"], f"{where_u} client-key")
        key_data = _read_file(key_path, f"client key of {where_u}")
    if (cert_data is None) != (key_data is None):
        missing = "client-key" if key_data is None else "client-certificate"
        raise ConfigError(
            f"{where_u} in {files} has a client certificate or key without its {missing}"
        )

    token = user.get("token") or None
    token_path = None
    if not token and user.get("tokenFile"):
        token_path = _resolve_path(user["__dir__"], user["tokenFile"], f"{where_u} tokenFile")
        _read_file(token_path, f"token file of {where_u}")  # fail now, not on the first request
    exec_config = None
    if user.get("exec"):
        exec_config = _exec_config(user["exec"], f"{where_u} in {files}", user["__dir__"])
    if user.get("auth-provider"):
        provider = (user["auth-provider"] or {}).get("name", "?")
        raise ConfigError(
            f"{where_u} uses the auth-provider {provider!r}, which was removed from kubectl; "
            "use an exec credential plugin instead"
        )

    return ConnectionInfo(
        server=server.rstrip("/"),
        ca_path=ca_path,
        ca_data=ca_data,
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        tls_server_name=cluster.get("tls-server-name") or None,
        proxy_url=cluster.get("proxy-url") or None,
        token=token,
        token_path=token_path,
        client_cert_path=cert_path,
        client_key_path=key_path,
        client_cert_data=cert_data,
        client_key_data=key_data,
        username=user.get("username") or None,
        password=user.get("password") or None,
        exec=exec_config,
        namespace=ctx.get("namespace") or "default",
        context=name,
        origin=f"context {name!r} of kubeconfig {files}",
    )


# --- in-cluster ---------------------------------------------------------------------------


def load_incluster(
    *,
    environ: Mapping[str, str] | None = None,
    secrets_dir: str | os.PathLike[str] = INCLUSTER_DIR,
) -> ConnectionInfo:
    """The pod's service account: ``KUBERNETES_SERVICE_HOST``/``_PORT`` and its mounted files.

    The token is given as a path, so the client re-reads it when the kubelet rotates it.
    Raises :class:`ConfigError` when not in a cluster or when a file is unreadable.
    """
    env = os.environ if environ is None else environ
    host = env.get("KUBERNETES_SERVICE_HOST")
    port = env.get("KUBERNETES_SERVICE_PORT")
    if not host or not port:
        raise ConfigError(
            "not running in a cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set"
        )
    folder = pathlib.Path(secrets_dir)
    token_path = folder / "token"
    _read_file(str(token_path), "service account token")
    ca_path = folder / "ca.crt"
    ca_data = _read_file(str(ca_path), "service account CA certificate")
    namespace = "default"
    ns_file = folder / "namespace"
    if ns_file.exists():
        namespace = ns_file.read_text().strip() or "default"
    netloc = f"[{host}]" if ":" in host else host
    return ConnectionInfo(
        server=f"https://{netloc}:{port}",
        ca_path=str(ca_path),
        ca_data=ca_data,
        token_path=str(token_path),
        namespace=namespace,
        origin=f"in-cluster service account ({folder})",
    )


def discover(*, context: str | None = None) -> ConnectionInfo:
    """Find the cluster as kubectl would: ``KUBECONFIG`` or ``~/.kube/config``, else in-cluster.

    Raises :class:`ConfigError` naming both places when neither is usable.
    """
    if os.environ.get("KUBECONFIG") or pathlib.Path("~/.kube/config").expanduser().exists():
        return load_kubeconfig(context=context)
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        return load_incluster()
    raise ConfigError(
        "no cluster configured: KUBECONFIG is not set, ~/.kube/config does not exist, "
        "and this is not a pod (KUBERNETES_SERVICE_HOST is not set)"
    )
