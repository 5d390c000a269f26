"""``python -m trikopf [OPTIONS] FILE.py ... | -m MODULE``: run an operator from the shell.

The command loads the handlers (files or modules register into the default registry as they are
imported), sets up logging, optionally starts the embedded API server (``--dev-cluster``) and
applies manifests (``--apply``), then runs :func:`trikopf.operate` until SIGINT/SIGTERM (a second
signal stops at once). Failures to start print one line, ``trikopf: error: ...``, and exit with
status 1 (2 for a bad command line or handlers file); ``--debug`` adds the traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import importlib
import importlib.util
import json
import logging
import os
import pathlib
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import AsyncIterator, Sequence
from typing import Any

import anyio

from trikopf._util.collector import tune_garbage_collector

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "load_handlers", "main"]

logger = logging.getLogger("trikopf.cli")

LOG_FORMATS = ("plain", "full", "json")
_PLAIN = "[%(asctime)s] %(levelname)-7s %(message)s"
_FULL = "[%(asctime)s] %(name)-20.20s [%(levelname)-7s] %(message)s"
# Record attributes that belong to logging itself; the rest are extras worth showing in JSON.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "taskName"}


class UsageError(Exception):
    """A problem with the command line or the handler files: one line for the user."""


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, the object, and any extras."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.datetime.fromtimestamp(record.created, datetime.timezone.utc)
            .isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        obj = {
            key[4:]: value
            for key in ("k8s_namespace", "k8s_name", "k8s_uid")
            if (value := record.__dict__.get(key)) is not None
        }
        if obj:
            data["object"] = obj
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith(("k8s_", "_")) and key not in data:
                data[key] = value if isinstance(value, (str, int, float, bool)) else repr(value)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``logging.Formatter`` whose default time text is made once per second, not per record.

    ``asctime`` reads as the stock formatter's (local time, ``,mmm`` milliseconds); only the part
    up to the second is cached, so consecutive records of one second share one ``strftime``.
    Single-threaded use per handler is assumed, as the handler's lock already serialises it.
    """

    _second = -1
    _second_text = ""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        if datefmt is not None:
            return super().formatTime(record, datefmt)
        second = int(record.created)
        if second != self._second:
            self._second_text = time.strftime(self.default_time_format, self.converter(second))
            self._second = second
        msec_format = self.default_msec_format
        if msec_format is None:
            return self._second_text
        return msec_format % (self._second_text, record.msecs)


def configure_logging(*, level: int = logging.INFO, fmt: str = "plain") -> None:
    """Send trikopf's (and the handlers') logs to stderr in one of the formats.

    ``plain``: time, level, message (messages about an object start with ``[ns/name]``);
    ``full``: also the logger's name; ``json``: one JSON object per line.
    """
    if fmt not in LOG_FORMATS:
        raise UsageError(f"unknown log format {fmt!r}; use one of {', '.join(LOG_FORMATS)}")
    handler = logging.StreamHandler(sys.stderr)
    if fmt == "json":
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(TextFormatter(_PLAIN if fmt == "plain" else _FULL))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    # The HTTP libraries are very chatty below WARNING unless debugging.
    for noisy in ("httpx", "httpcore", "hpack"):
        logging.getLogger(noisy).setLevel(
            logging.DEBUG if level <= logging.DEBUG else logging.WARNING
        )


def load_handlers(paths: Sequence[str], modules: Sequence[str]) -> None:
    """Import handler files and modules (their decorators register the handlers).

    Raises :class:`UsageError` with one line naming the file and the problem (a missing file, a
    syntax error with its line, or the exception the module raised while being imported).
    """
    for index, raw in enumerate(paths):
        path = pathlib.Path(raw)
        if not path.is_file():
            raise UsageError(f"no such handlers file: {raw}")
        # Like `python FILE.py`: the file's folder is importable (for its helper modules).
        folder = str(path.resolve().parent)
        if folder not in sys.path:
            sys.path.insert(0, folder)
        name = f"__trikopf_handlers_{index}__"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise UsageError(f"cannot load {raw} as Python")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except SyntaxError as exc:
            raise UsageError(f"syntax error in {raw}, line {exc.lineno}: {exc.msg}") from exc
        except Exception as exc:
            raise UsageError(f"{raw} failed while being imported: {_one_line(exc)}") from exc
    if modules and "" not in sys.path:
        sys.path.insert(0, "")
    for name in modules:
        try:
            importlib.import_module(name)
        except SyntaxError as exc:
            raise UsageError(
                f"syntax error in module {name} ({exc.filename}, line {exc.lineno}): {exc.msg}"
            ) from exc
        except ModuleNotFoundError as exc:
            if exc.name == name or name.startswith(f"{exc.name}."):
                raise UsageError(f"no module named {name!r}") from exc
            raise UsageError(
                f"module {name} failed while being imported: {_one_line(exc)}"
            ) from exc
        except Exception as exc:
            raise UsageError(
                f"module {name} failed while being imported: {_one_line(exc)}"
            ) from exc


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _endpoint(option: str, default_path: str) -> Any:
    """An argparse type: ``http://HOST:PORT/PATH``, checked now so a typo fails at once."""

    def check(value: str) -> str:
        from trikopf.engines.serving import parse_endpoint

        try:
            parse_endpoint(value, what=option, default_path=default_path)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None
        return value

    return check


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trikopf",
        description="Run a Kubernetes operator from handler files or modules.",
        epilog=(
            "Quick start without a cluster: python -m trikopf --dev-cluster "
            "--apply examples/crd.yaml --apply examples/obj.yaml examples/01-minimal/example.py"
        ),
    )
    parser.add_argument("files", nargs="*", metavar="FILE.py", help="handler files to load")
    parser.add_argument(
        "-m",
        "--module",
        action="append",
        default=[],
        metavar="MODULE",
        help="a handler module to import (repeatable)",
    )
    where = parser.add_argument_group("where")
    where.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="serve this namespace; globs (team-*) and negations (!kube-*) work; repeatable",
    )
    where.add_argument(
        "-A", "--all-namespaces", action="store_true", help="serve the whole cluster (default)"
    )
    where.add_argument("--kubeconfig", metavar="PATH", help="the kubeconfig to use")
    where.add_argument("--context", metavar="NAME", help="the kubeconfig context to use")
    where.add_argument(
        "--standalone",
        action="store_true",
        help="run without peering or leader election (the only mode so far)",
    )
    where.add_argument(
        "--dev-cluster",
        action="store_true",
        help="start the embedded API server in this process and print its kubeconfig path",
    )
    where.add_argument(
        "--dev-kubeconfig",
        metavar="PATH",
        help="where --dev-cluster writes its kubeconfig (default: a new folder of this process "
        "in the temp folder, $TMPDIR/trikopf-dev-<pid>-*/kubeconfig, removed at exit, so that "
        "dev clusters on one machine never share the file)",
    )
    where.add_argument(
        "--apply",
        action="append",
        default=[],
        metavar="FILE",
        help="apply these manifests before the handlers start, CRDs first (repeatable)",
    )
    out = parser.add_argument_group("logging")
    level = out.add_mutually_exclusive_group()
    level.add_argument(
        "-v", "--verbose", action="store_true", help="more detail (DEBUG for trikopf)"
    )
    level.add_argument(
        "--debug", action="store_true", help="everything, and tracebacks of failures"
    )
    level.add_argument("-q", "--quiet", action="store_true", help="warnings and errors only")
    out.add_argument("--log-format", choices=LOG_FORMATS, default="plain", help="default: plain")
    serving = parser.add_argument_group("health and metrics")
    serving.add_argument(
        "--liveness",
        metavar="URL",
        type=_endpoint("--liveness", "/healthz"),
        help="serve liveness (with the probes' results) at this URL, e.g. "
        "http://0.0.0.0:8080/healthz; /readyz answers on the same host and port",
    )
    serving.add_argument(
        "--metrics",
        metavar="URL",
        type=_endpoint("--metrics", "/metrics"),
        help="serve Prometheus metrics at this URL, e.g. http://0.0.0.0:8080/metrics",
    )
    parser.add_argument(
        "--backend",
        choices=("trio", "asyncio"),
        default="trio",
        help="the event loop: trio (default) or asyncio for handlers that use asyncio",
    )
    return parser


@contextlib.asynccontextmanager
async def _dev_cluster(path: str | None) -> AsyncIterator[pathlib.Path]:
    """Serve the embedded API server while the block runs; yield its kubeconfig's path.

    Without ``path`` the kubeconfig goes into a folder of its own (private to this user, named
    after this process) that is removed when the block exits: a second dev cluster on the same
    machine gets another folder instead of overwriting the first one's file.
    """
    from trikopf.apiserver import open_apiserver

    own_folder: pathlib.Path | None = None
    if path:
        target = pathlib.Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
    else:
        own_folder = pathlib.Path(tempfile.mkdtemp(prefix=f"trikopf-dev-{os.getpid()}-"))
        target = own_folder / "kubeconfig"
    try:
        async with open_apiserver() as server:
            written = server.write_kubeconfig(target)
            print(
                f"trikopf: the embedded API server runs at {server.url}\n"
                f"trikopf: for kubectl:  export KUBECONFIG={written}",
                file=sys.stderr,
                flush=True,
            )
            yield written
    finally:
        if own_folder is not None:
            shutil.rmtree(own_folder, ignore_errors=True)


def _has_login_handlers() -> bool:
    from trikopf.registry import Activity, get_default_registry

    return bool(get_default_registry().activity_handlers(Activity.AUTHENTICATION))


async def _run(args: argparse.Namespace) -> None:
    from trikopf.client import (
        ApiConnectionError,
        ClientSettings,
        ConfigError,
        discover,
        load_kubeconfig,
        open_client,
    )
    from trikopf.reactor.discovery import StartupError
    from trikopf.reactor.manifests import apply_manifests, load_manifests
    from trikopf.reactor.running import operate
    from trikopf.settings import OperatorSettings

    settings = OperatorSettings()
    settings.serving.liveness = args.liveness
    settings.serving.metrics = args.metrics
    documents = load_manifests(args.apply)
    async with contextlib.AsyncExitStack() as stack:
        kubeconfig = args.kubeconfig
        if args.dev_cluster:
            kubeconfig = str(await stack.enter_async_context(_dev_cluster(args.dev_kubeconfig)))
        if not (kubeconfig or args.context) and _has_login_handlers():
            # The on.login handlers give the credentials (once the startup handlers have run).
            if documents:
                raise UsageError("--apply needs --kubeconfig when login handlers log in")
            await operate(
                settings=settings,
                namespaces=args.namespace,
                clusterwide=args.all_namespaces,
                handle_signals=True,
            )
            return
        try:
            if kubeconfig or args.context:
                connection = load_kubeconfig(kubeconfig, context=args.context)
            else:
                connection = discover()
        except ConfigError as exc:
            raise StartupError(f"bad cluster configuration: {exc}") from exc
        # Fail fast when there is no cluster, instead of the operator's patient retries.
        probe_settings = ClientSettings(retry_attempts=2, retry_timeout=5.0, connect_timeout=5.0)
        async with open_client(connection, settings=probe_settings) as probe:
            try:
                await probe.resources(refresh=True)
            except ApiConnectionError as exc:
                raise StartupError(
                    f"cannot reach the Kubernetes API at {connection.server} "
                    f"(from {connection.origin}): {exc}"
                ) from exc
        if documents:
            async with open_client(connection) as client:
                await apply_manifests(client, documents)
        await operate(
            settings=settings,
            namespaces=args.namespace,
            clusterwide=args.all_namespaces,
            connection=connection,
            handle_signals=True,
        )


def main(argv: Sequence[str] | None = None) -> int:
    """The command's entry point; returns the exit status (0 after a clean stop)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["run"]:  # Kopf's spelling: `kopf run handlers.py`
        argv = argv[1:]
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.INFO
    if args.debug:
        level = logging.DEBUG
    elif args.quiet:
        level = logging.WARNING
    configure_logging(level=level, fmt=args.log_format)
    if args.verbose:
        # --verbose: trikopf's own detail, not every library's.
        logging.getLogger("trikopf").setLevel(logging.DEBUG)
    if not args.files and not args.module:
        parser.print_usage(sys.stderr)
        print(
            "trikopf: error: give a handlers file (FILE.py) or a module (-m MODULE)",
            file=sys.stderr,
        )
        return 2
    try:
        from trikopf.reactor.namespaces import NamespaceSelector

        try:
            NamespaceSelector.parse(args.namespace, clusterwide=args.all_namespaces)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        load_handlers(args.files, args.module)
        _tune_garbage_collector()
        anyio.run(_run, args, backend=args.backend)
    except BaseException as exc:
        if _interrupted(exc):
            # Ctrl+C before the operator handles signals itself (while starting): no traceback.
            print("trikopf: interrupted while starting", file=sys.stderr, flush=True)
            return 130
        if not isinstance(exc, Exception):
            raise
        leaf = _single_leaf(exc)
        if args.debug:
            traceback.print_exception(type(leaf), leaf, leaf.__traceback__, file=sys.stderr)
        print(f"trikopf: error: {_describe(leaf)}", file=sys.stderr, flush=True)
        return 2 if isinstance(leaf, UsageError) else 1
    return 0


def _tune_garbage_collector() -> None:
    """Apply :func:`trikopf.tune_garbage_collector` unless ``TRIKOPF_GC=default`` says not to.

    The CLI owns its process, so it opts in on the user's behalf; see the helper for what
    changes and why.
    """
    if os.environ.get("TRIKOPF_GC", "") == "default":
        return
    tune_garbage_collector()


def _interrupted(exc: BaseException) -> bool:
    """Whether ``exc`` is a KeyboardInterrupt, maybe wrapped in exception groups."""
    inner = getattr(exc, "exceptions", None)
    if inner is None:
        return isinstance(exc, KeyboardInterrupt)
    return bool(inner) and all(_interrupted(sub) for sub in inner)


def _single_leaf(exc: BaseException) -> BaseException:
    while (inner := getattr(exc, "exceptions", None)) and len(inner) == 1:
        exc = inner[0]
    return exc


def _describe(exc: BaseException) -> str:
    from trikopf.client.errors import ApiConnectionError, ClientError
    from trikopf.reactor.discovery import StartupError

    if isinstance(exc, (UsageError, StartupError)):
        return str(exc)
    if isinstance(exc, ApiConnectionError):
        return f"cannot reach the Kubernetes API: {exc}"
    if isinstance(exc, ClientError):
        return f"the Kubernetes API refused to start the operator: {exc}"
    if isinstance(exc, ValueError):
        return str(exc)
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else 'unexpected failure'} (use --debug for details)"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
