"""Starting many long-lived tasks cheaply: Trio's nursery directly, under AnyIO's task group."""

from __future__ import annotations

import sys
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.abc

__all__ = ["start_soon_lean"]


def _trio_nursery(task_group: anyio.abc.TaskGroup) -> Any:
    """The Trio nursery beneath an AnyIO task group on the Trio backend, else ``None``."""
    if type(task_group).__module__ != "anyio._backends._trio":
        return None
    trio = sys.modules.get("trio")
    nursery = getattr(task_group, "_nursery", None)
    if trio is None or not isinstance(nursery, trio.Nursery):
        return None  # an AnyIO whose task group looks different: take the public way
    return nursery


def start_soon_lean(
    task_group: anyio.abc.TaskGroup,
    fn: Callable[..., Coroutine[Any, Any, Any]],
    *args: Any,
    name: object = None,
) -> None:
    """Start ``fn(*args)`` as a task of ``task_group``, like ``task_group.start_soon``.

    On Trio the task goes straight into the task group's nursery: AnyIO (4.14 and later) would
    give every task a handle with a cancel scope and an event of its own, some 1.4 KB per task
    that sleeps, which a daemon per object pays for as long as it runs. The task is the task
    group's all the same: cancelled with it, its exception raised out of it. On asyncio, and if
    AnyIO's internals are not as expected, this is ``task_group.start_soon``. Returns at once.
    """
    nursery = _trio_nursery(task_group)
    if nursery is None:
        task_group.start_soon(fn, *args, name=name)
    else:
        nursery.start_soon(fn, *args, name=name)
