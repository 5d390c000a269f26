"""Giving memory back to the system after a burst of work, once the process has gone quiet."""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import sys
from array import array
from collections.abc import Callable, Iterable

import anyio

__all__ = [
    "BurstWatch",
    "HashedKeys",
    "note_work",
    "release_memory",
    "serve_memory_release",
    "trim_heap",
    "work_seen",
]

# A drop of this many live Python blocks (some 2-6 MB) since the highest count seen is a burst.
BURST_BLOCKS = 50_000


def _find_malloc_trim() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc (musl has no malloc_trim): nothing to do
        return None
    return trim


_malloc_trim = _find_malloc_trim()

_work = 0  # batches of work noted so far (watch reads); only ever grows


def note_work() -> None:
    """Note that the operator has work in hand now (a watch read one batch of events).

    Synchronous and cheap (one integer add), for hot paths: :func:`serve_memory_release`
    never releases memory in an interval in which work was noted.
    """
    global _work
    _work += 1


def work_seen() -> int:
    """How many times :func:`note_work` was called in this process."""
    return _work


def trim_heap() -> bool:
    """Ask the C allocator to return its free memory to the system; whether it could be asked.

    ``malloc_trim(0)`` on glibc (it also releases free pages inside the heap); a no-op that
    returns ``False`` elsewhere. Synchronous, a few milliseconds at most.
    """
    if _malloc_trim is None:
        return False
    _malloc_trim(0)
    return True


def release_memory() -> None:
    """A full garbage collection, then :func:`trim_heap`. Synchronous; never in a hot path."""
    gc.collect()
    trim_heap()


class BurstWatch:
    """Tells, from samples of the live block count, when a burst of work has ended.

    A burst has ended when the count has fallen by at least ``burst_blocks`` since the highest
    sample after the last release, and has stayed within a tenth of that fall between the last
    two samples (the process is quiet, not in the middle of the next burst).
    """

    __slots__ = ("_last", "_peak", "burst_blocks")

    def __init__(self, blocks: int, *, burst_blocks: int = BURST_BLOCKS) -> None:
        self.burst_blocks = burst_blocks
        self._peak = self._last = blocks

    def sample(self, blocks: int) -> bool:
        """Record one sample; return whether memory should be released now."""
        last, self._last = self._last, blocks
        self._peak = max(self._peak, blocks)
        fall = self._peak - blocks
        return fall >= self.burst_blocks and abs(blocks - last) * 10 <= fall

    def released(self, blocks: int) -> None:
        """Memory was released; the next burst is measured from ``blocks``."""
        self._peak = self._last = blocks


async def serve_memory_release(
    *,
    interval: float,
    release: Callable[[], None] = release_memory,
    blocks: Callable[[], int] = sys.getallocatedblocks,
    work: Callable[[], int] = work_seen,
) -> None:
    """Every ``interval`` seconds, look whether a burst has ended; if so, release memory once.

    CPython keeps the memory of a burst (thousands of events parsed and handled at once) long
    after the objects are gone: freed blocks stay in its arenas and in the C heap. Once the
    burst is over, a full collection (the tuned collector delays the older generations) and
    ``malloc_trim`` give back what can be given back. The release stalls the event loop (tens
    of milliseconds on a large fleet), so it happens only after an interval in which ``work``
    (by default, the watch reads noted with :func:`note_work`) did not move: never while events
    flow. Runs until cancelled, one sleep per ``interval`` and nothing else while the operator
    is busy or idle; starts no task.
    """
    watch = BurstWatch(blocks())
    done = work()
    while True:
        await anyio.sleep(interval)
        ended = watch.sample(blocks())
        done, before = work(), done
        if ended and done == before:
            release()
            watch.released(blocks())


_EMPTY = 0
_GONE = 1  # a key was here and was discarded: probing goes on past it


class HashedKeys:
    """A set of strings kept as their 64-bit hashes in one flat array: no object per key.

    For remembering many keys (object uids) with no small allocation per key: the keys' own
    strings, and the set entries of a :class:`set`, are small blocks that CPython's allocator
    can only give back with their whole arena, and the few long-lived ones of a burst keep
    all of its arenas. Here a key costs 8 to 24 bytes of one large array and nothing else.
    Two keys with the same ``hash()`` (a 64-bit SipHash, random per process) are the same key
    here: about one chance in 10^10 with 10^5 keys. Synchronous; not thread-safe.
    """

    __slots__ = ("_filled", "_table", "_used")

    def __init__(self, keys: Iterable[str] = ()) -> None:
        self._table = array("q", bytes(8 * 8))
        self._used = 0  # keys held
        self._filled = 0  # keys held plus discarded places (they lengthen probes)
        for key in keys:
            self.add(key)

    @staticmethod
    def _hash(key: str) -> int:
        h = hash(key)
        return h + 2 if h in (_EMPTY, _GONE) else h  # never a marker

    def _find(self, h: int) -> int:
        """The place of ``h``, or ``-1``."""
        table = self._table
        mask = len(table) - 1
        i = h & mask
        while True:
            value = table[i]
            if value == h:
                return i
            if value == _EMPTY:
                return -1
            i = (i + 1) & mask

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._find(self._hash(key)) >= 0

    def __len__(self) -> int:
        return self._used

    def add(self, key: str) -> None:
        """Add ``key`` (nothing happens if it is here already)."""
        h = self._hash(key)
        if self._find(h) >= 0:
            return
        table = self._table
        mask = len(table) - 1
        i = h & mask
        while table[i] != _EMPTY and table[i] != _GONE:
            i = (i + 1) & mask
        if table[i] == _EMPTY:
            self._filled += 1
        table[i] = h
        self._used += 1
        if self._filled * 3 >= len(table) * 2:
            self._resize()

    def discard(self, key: str) -> bool:
        """Remove ``key`` if it is here; return whether it was."""
        i = self._find(self._hash(key))
        if i < 0:
            return False
        self._table[i] = _GONE
        self._used -= 1
        if len(self._table) > 64 and self._used * 8 < len(self._table):
            self._resize()
        return True

    def _resize(self) -> None:
        # Room for twice the keys held, rounded up to a power of two; discarded places vanish.
        size = 8
        while size < self._used * 3:
            size *= 2
        old = self._table
        table = self._table = array("q", bytes(8 * size))
        mask = size - 1
        for h in old:
            if h != _EMPTY and h != _GONE:
                i = h & mask
                while table[i] != _EMPTY:
                    i = (i + 1) & mask
                table[i] = h
        self._filled = self._used
