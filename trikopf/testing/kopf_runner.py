"""``KopfRunner``: Kopf's synchronous test runner, with the same call shape.

Kopf users' tests look like this, and keep working after ``import trikopf as kopf``::

    from trikopf.testing import KopfRunner

    def test_operator():
        with KopfRunner(["run", "-A", "--verbose", "handlers.py"]) as runner:
            ...  # create objects, wait for their effects
        assert runner.exit_code == 0
        assert runner.exception is None
        assert "succeeded" in runner.output

The operator runs as ``python -m trikopf ARGS`` in a subprocess (signals, logging and the
default registry exactly as in production); a blocking portal (an AnyIO event loop in one
helper thread, owned by the ``with`` block) reads its output. Unlike Kopf's runner, entering
waits until the operator is ready (or has ended), and :meth:`KopfRunner.wait_for` waits for a
line of output, so tests need no sleeps.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import types
from collections.abc import Mapping, Sequence
from typing import Any

import anyio.from_thread

from trikopf.testing.process import OperatorProcess, open_operator_process

__all__ = ["KopfRunner", "OperatorFailed"]

READY_LINE = "The operator is ready"


class OperatorFailed(Exception):
    """The operator exited with a non-zero status; the message has its last lines of output."""


class KopfRunner(contextlib.AbstractContextManager["KopfRunner"]):
    """Run ``python -m trikopf *args`` for the duration of a ``with`` block (sync tests).

    ``args`` is the command line as Kopf's runner takes it (a leading ``"run"`` is accepted).
    Entering starts the subprocess and returns once it reports readiness or exits, within
    ``timeout`` seconds (with ``--quiet`` it says nothing, so entering returns at once). Leaving sends SIGINT and waits up to ``timeout`` seconds for the exit
    (then kills it). With ``reraise`` (the default), a non-zero exit raises
    :class:`OperatorFailed` when the block is left. ``env`` is added to the environment.
    """

    def __init__(
        self,
        args: Sequence[str],
        *,
        reraise: bool = True,
        timeout: float | None = 60.0,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        backend: str = "trio",
    ) -> None:
        self.args = [str(arg) for arg in args]
        self.reraise = reraise
        self.timeout = timeout if timeout is not None else math.inf
        self.env = dict(env or {})
        self.cwd = cwd
        self.backend = backend
        self._stack = contextlib.ExitStack()
        self._portal: anyio.from_thread.BlockingPortal | None = None
        self._process: OperatorProcess | None = None
        self._output: str | None = None
        self._exit_code: int | None = None

    def __enter__(self) -> KopfRunner:
        stack = self._stack
        try:
            self._portal = stack.enter_context(
                anyio.from_thread.start_blocking_portal(backend=self.backend)
            )
            self._process = stack.enter_context(
                self._portal.wrap_async_context_manager(
                    open_operator_process(
                        self.args, env=self.env, cwd=self.cwd, stop_within=self.timeout
                    )
                )
            )
            quiet = {"-q", "--quiet"} & set(self.args)
            if not quiet:  # a quiet operator does not say that it is ready
                with contextlib.suppress(EOFError):  # it ended at once: the block sees the exit
                    self.wait_for(READY_LINE)
        except BaseException:
            stack.close()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: types.TracebackType | None,
    ) -> None:
        process = self._process
        try:
            self._stack.close()  # SIGINT, wait for the exit, stop the portal's loop
        finally:
            if process is not None:
                self._output = process.output
                self._exit_code = process.returncode
        if self.reraise and self._exit_code not in (0, None) and exc_val is None:
            raise OperatorFailed(self._failure())

    def wait_for(self, text: str, *, timeout: float | None = None) -> str:
        """Block until a line of output contains ``text``; return the line.

        Raises :class:`TimeoutError` after ``timeout`` seconds (the runner's by default) and
        :class:`EOFError` if the operator exits first; both carry the output so far.
        """
        if self._portal is None or self._process is None:
            raise RuntimeError("wait_for() works inside the runner's `with` block")
        within = self.timeout if timeout is None else timeout
        line: str = self._portal.call(
            functools.partial(self._process.wait_for_line, text, within=within)
        )
        return line

    @property
    def output(self) -> str:
        """Everything the operator printed (stdout and stderr, interleaved as printed)."""
        if self._output is not None:
            return self._output
        return self._process.output if self._process is not None else ""

    stdout = output  # Kopf's runner has both; a subprocess's streams are read merged here

    @property
    def exit_code(self) -> int | None:
        """The exit status once the block is left (0 after a clean stop); ``None`` before."""
        return self._exit_code

    @property
    def exception(self) -> BaseException | None:
        """``None`` after a clean exit; an :class:`OperatorFailed` describing a failed one."""
        if self._exit_code in (0, None):
            return None
        return OperatorFailed(self._failure())

    def _failure(self) -> str:
        tail = "\n".join(self.output.splitlines()[-20:])
        return f"the operator exited with status {self._exit_code}:\n{tail}"

    def __repr__(self) -> str:
        state: Any = "running" if self._exit_code is None else f"exit {self._exit_code}"
        return f"<KopfRunner {' '.join(self.args)!r} {state}>"
