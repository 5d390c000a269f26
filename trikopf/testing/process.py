"""Run ``python -m trikopf ...`` as a subprocess and watch what it says."""

from __future__ import annotations

import contextlib
import math
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence

import anyio
import anyio.abc
import attrs

__all__ = ["OperatorProcess", "open_operator_process"]


@attrs.define(eq=False)
class OperatorProcess:
    """A running ``python -m trikopf`` and everything it has printed so far (stdout + stderr)."""

    process: anyio.abc.Process
    lines: list[str] = attrs.field(factory=list)
    _changed: anyio.Event = attrs.field(factory=anyio.Event)
    _eof: bool = False

    @property
    def output(self) -> str:
        """Everything printed so far, as one text."""
        return "\n".join(self.lines)

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def wait_for_line(self, text: str, *, within: float = 30.0) -> str:
        """Wait until a printed line contains ``text``; return that line.

        Raises :class:`TimeoutError` after ``within`` seconds, and :class:`EOFError` if the
        process ends first (both with the output so far in the message).
        """
        checked = 0
        with anyio.move_on_after(within):
            while True:
                for line in self.lines[checked:]:
                    if text in line:
                        return line
                checked = len(self.lines)
                if self._eof:
                    raise EOFError(f"the operator ended before printing {text!r}:\n{self.output}")
                await self._changed.wait()
        raise TimeoutError(f"no line with {text!r} within {within}s:\n{self.output}")

    def interrupt(self) -> None:
        """Send SIGINT (what Ctrl+C does); returns at once."""
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGINT)

    async def wait(self, *, within: float = 30.0) -> int:
        """Wait for the process to exit (and its output to be read); return its exit status."""
        with anyio.move_on_after(within):
            code = await self.process.wait()
            while not self._eof:
                await self._changed.wait()
            return code
        raise TimeoutError(f"the operator still runs after {within}s:\n{self.output}")

    async def _read(self) -> None:
        stream = self.process.stdout
        assert stream is not None
        buffer = b""
        try:
            async for chunk in stream:
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                if complete:
                    self.lines.extend(line.decode("utf-8", "replace") for line in complete)
                    self._signal()
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            if buffer:
                self.lines.append(buffer.decode("utf-8", "replace"))
            self._eof = True
            self._signal()

    def _signal(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()


@contextlib.asynccontextmanager
async def open_operator_process(
    args: Sequence[str],
    *,
    script: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    stop_within: float = 30.0,
) -> AsyncIterator[OperatorProcess]:
    """Start ``python -m trikopf *args``; on exit, interrupt it and wait until it is gone.

    With ``script``, runs ``python script *args`` instead (an application that embeds the
    operator, or calls ``trikopf.run``). Starts the subprocess and one task that reads its
    output. Leaving the block sends SIGINT (if still running) and waits up to ``stop_within``
    seconds, then kills it.
    """
    if script is not None:
        command = [sys.executable, os.fspath(script), *args]
    else:
        command = [sys.executable, "-m", "trikopf", *args]
    environment = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    process = await anyio.open_process(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=environment, cwd=cwd
    )
    async with process:
        handle = OperatorProcess(process)
        async with anyio.create_task_group() as tg:
            tg.start_soon(handle._read)
            try:
                yield handle
            finally:
                with anyio.CancelScope(shield=True):
                    handle.interrupt()
                    with anyio.move_on_after(stop_within if stop_within < math.inf else 3600):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
                    with anyio.move_on_after(5):
                        while not handle._eof:
                            await handle._changed.wait()
                tg.cancel_scope.cancel()
