"""An explicit opt-in to the garbage-collector tuning that suits a long-running operator."""

from __future__ import annotations

import gc

__all__ = ["tune_garbage_collector"]

# CPython's default young-generation threshold is 700 container allocations.
DEFAULT_YOUNG_THRESHOLD = 50_000


def tune_garbage_collector(
    *, young_threshold: int = DEFAULT_YOUNG_THRESHOLD, freeze: bool = True
) -> tuple[int, int, int]:
    """Make CPython's cyclic garbage collector cheaper for a process that is mostly an operator.

    Every parsed watch event allocates dozens of small dicts and lists, and every live object
    of the cluster holds a few tracked objects (its task, cancel scopes, events). With CPython's
    default thresholds the young generation is collected every 700 allocations and the older
    generations re-scan the whole fleet again and again, which costs more than the operator's
    own work on large fleets (see ``docs/performance.md``). This helper:

    - collects once, then (with ``freeze=True``) moves everything that exists now (modules,
      handlers, the application's own long-lived objects) out of future collections with
      :func:`gc.freeze`;
    - collects the young generation every ``young_threshold`` allocations (the older
      thresholds stay at 50 and 100 passes).

    The change is process-global, so trikopf never makes it by itself: ``python -m trikopf``
    calls this helper after loading the handlers (``TRIKOPF_GC=default`` skips it), and an
    application that embeds :func:`trikopf.operate` may call it once, before starting the event
    loop, if the whole process can live with it. It is synchronous, starts no task and
    returns the thresholds that were in force before, so that they can be restored with
    :func:`gc.set_threshold` (:func:`gc.unfreeze` undoes the freeze).
    """
    if young_threshold < 1:
        raise ValueError(f"young_threshold must be a positive number, not {young_threshold!r}")
    before = gc.get_threshold()
    gc.collect()
    if freeze:
        gc.freeze()
    gc.set_threshold(young_threshold, 50, 100)
    return before
