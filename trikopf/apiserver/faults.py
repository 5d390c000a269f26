"""Fault injection and the request log, for tests that script a misbehaving cluster."""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable
from typing import Any

import anyio
import attrs

__all__ = ["FailureRule", "Faults", "LatencyRule", "RequestRecord"]


@attrs.frozen(kw_only=True)
class RequestRecord:
    """One request the server answered (or is still streaming)."""

    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    time: float
    user_agent: str = ""

    @property
    def is_watch(self) -> bool:
        return self.query.get("watch", [""])[-1] in ("1", "true", "True") or "/watch/" in self.path


@attrs.define(eq=False, kw_only=True)
class FailureRule:
    method: str  # "*" or an HTTP method
    path: str  # a glob over the path, e.g. "/api/v1/namespaces/*/configmaps*"
    status: int
    remaining: int  # how many more requests fail
    retry_after: float | None = None
    message: str = ""
    watch: bool | None = None  # None: both; True: only watches; False: never watches

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        if self.watch is not None and self.watch != is_watch:
            return False
        return (self.method == "*" or self.method.upper() == method) and fnmatch.fnmatchcase(
            path, self.path
        )


@attrs.define(eq=False, kw_only=True)
class LatencyRule:
    method: str
    path: str
    seconds: float

    def matches(self, method: str, path: str) -> bool:
        return (self.method == "*" or self.method.upper() == method) and fnmatch.fnmatchcase(
            path, self.path
        )


@attrs.define(eq=False)
class Faults:
    """Scripted failures. Every control takes effect for the next matching requests.

    All controls are plain synchronous calls, usable from the test's own task while the
    server serves in its task group: ``fail_next``, ``add_latency``, ``drop_watches``,
    ``stall_watches`` / ``unstall_watches``, ``compact``, ``pause`` / ``resume``,
    ``clear``.
    """

    _wake: Callable[[], None]
    _drop: Callable[..., None]
    _compact: Callable[[], int]
    failures: list[FailureRule] = attrs.field(factory=list)
    latencies: list[LatencyRule] = attrs.field(factory=list)
    watches_stalled: bool = False
    paused: bool = False
    _resumed: anyio.Event | None = None

    def fail_next(
        self,
        count: int = 1,
        *,
        status: int = 500,
        method: str = "*",
        path: str = "*",
        retry_after: float | None = None,
        message: str = "",
        watch: bool | None = None,
    ) -> FailureRule:
        """Fail the next ``count`` requests matching ``method`` and the ``path`` glob.

        The answer is a ``Status`` with the given code (429 carries ``Retry-After``
        when ``retry_after`` is given); ``watch=True`` restricts it to watch requests,
        ``False`` to everything else.
        """
        if count < 1:
            raise ValueError("count must be positive")
        if not 400 <= status <= 599:
            raise ValueError("status must be an HTTP error code")
        rule = FailureRule(
            method=method,
            path=path,
            status=status,
            remaining=count,
            retry_after=retry_after,
            message=message,
            watch=watch,
        )
        self.failures.append(rule)
        return rule

    def take_failure(self, method: str, path: str, is_watch: bool) -> FailureRule | None:
        for rule in self.failures:
            if rule.remaining > 0 and rule.matches(method, path, is_watch):
                rule.remaining -= 1
                if rule.remaining == 0:
                    self.failures.remove(rule)
                return rule
        return None

    def add_latency(self, seconds: float, *, method: str = "*", path: str = "*") -> LatencyRule:
        """Delay every matching request by ``seconds`` before it is handled, until cleared."""
        if seconds < 0:
            raise ValueError("latency must not be negative")
        rule = LatencyRule(method=method, path=path, seconds=seconds)
        self.latencies.append(rule)
        return rule

    def latency_for(self, method: str, path: str) -> float:
        return sum(rule.seconds for rule in self.latencies if rule.matches(method, path))

    def drop_watches(self, *, abort: bool = False) -> None:
        """End every open watch stream now.

        By default each ends cleanly (the last chunk is sent, as when a real server ends
        a watch); with ``abort=True`` the connections are cut mid-response instead.
        """
        self._drop(abort=abort)

    def stall_watches(self) -> None:
        """Keep watch streams open but silent (no events, no bookmarks) until unstalled."""
        self.watches_stalled = True
        self._wake()

    def unstall_watches(self) -> None:
        """Let stalled watch streams deliver again, from where they stopped."""
        self.watches_stalled = False
        self._wake()

    def compact(self) -> int:
        """Forget the event history: watches from any older resourceVersion get 410.

        Returns the resourceVersion the history was compacted to.
        """
        return self._compact()

    def pause(self) -> None:
        """Hold every new request (and watch delivery) until :meth:`resume`."""
        self.paused = True
        self._wake()

    def resume(self) -> None:
        """Release the requests held by :meth:`pause`."""
        self.paused = False
        if self._resumed is not None:
            self._resumed.set()
            self._resumed = None
        self._wake()

    async def wait_until_resumed(self) -> None:
        """Return when the server is not paused (immediately if it is not)."""
        while self.paused:
            if self._resumed is None:
                self._resumed = anyio.Event()
            await self._resumed.wait()

    def clear(self) -> None:
        """Remove every failure and latency rule, unstall watches and resume."""
        self.failures.clear()
        self.latencies.clear()
        self.unstall_watches()
        self.resume()


@attrs.define(eq=False)
class RequestLog:
    """The requests answered so far, in order; a list with a few helpers."""

    records: list[RequestRecord] = attrs.field(factory=list)
    limit: int = 100_000

    def add(self, record: RequestRecord) -> None:
        self.records.append(record)
        if len(self.records) > self.limit:
            del self.records[: len(self.records) - self.limit]

    def __iter__(self) -> Any:
        return iter(list(self.records))

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, index: int) -> RequestRecord:
        return self.records[index]

    def matching(self, method: str = "*", path: str = "*") -> list[RequestRecord]:
        """Records whose method and path (a glob) match."""
        return [
            r
            for r in self.records
            if (method == "*" or r.method == method.upper()) and fnmatch.fnmatchcase(r.path, path)
        ]

    def clear(self) -> None:
        self.records.clear()


def now() -> float:
    return time.time()
