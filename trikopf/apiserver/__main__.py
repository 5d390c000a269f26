"""``python -m trikopf.apiserver``: serve until SIGINT/SIGTERM, write a kubeconfig, print the URL."""

from __future__ import annotations

import argparse
import signal
import sys

import anyio

from trikopf.apiserver.server import open_apiserver


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m trikopf.apiserver",
        description="Run trikopf's embedded Kubernetes API server (state in memory).",
    )
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: pick one)")
    parser.add_argument("--kubeconfig", required=True, help="where to write the kubeconfig")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--token", default=None, help="require this bearer token")
    parser.add_argument("--tls", action="store_true", help="serve HTTPS with a fresh CA")
    parser.add_argument("--state-file", default=None, help="persist objects to this file")
    parser.add_argument(
        "--bookmark-interval", type=float, default=60.0, help="seconds between watch bookmarks"
    )
    parser.add_argument(
        "--history-window", type=int, default=10_000, help="events retained per resource"
    )
    parser.add_argument(
        "--backend", choices=("trio", "asyncio"), default="trio", help="the async backend"
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    async with open_apiserver(
        host=args.host,
        port=args.port,
        token=args.token,
        tls=args.tls,
        state_file=args.state_file,
        bookmark_interval=args.bookmark_interval,
        history_window=args.history_window,
    ) as server:
        path = server.write_kubeconfig(args.kubeconfig)
        print(f"Serving the Kubernetes API at {server.url}", flush=True)
        print(f"Kubeconfig written to {path}", flush=True)
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                print(f"Stopping on {signal.Signals(signum).name}", flush=True)
                return


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 0 <= args.port <= 65535:
        print("error: --port must be between 0 and 65535", file=sys.stderr)
        return 2
    try:
        anyio.run(_serve, args, backend=args.backend)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
