"""One processing round of one object: what the reactor calls for every (coalesced) event.

:func:`process_event` detects the cause (create / update / delete / resume / nothing), runs the
change handlers that are due, and sends everything the round changed — handler results into
``status.<handler id>``, the user's ``patch``, retry progress, the stored essence, finalizer
edits — in one PATCH (two when status goes to a status subresource). It returns a
:class:`ProcessingOutcome` that says whether, and after what delay, another round is needed.

:func:`handle_raw_event` runs the ``on.event`` handlers of one raw event, fire and forget.

The per-object memory between rounds is an :class:`ObjectState` (a few slots; the reactor keeps
one per busy object, drops it when the object is gone, and drops it while the object is idle if
it holds nothing but "seen", see :meth:`ObjectState.is_idle`).
"""

from __future__ import annotations

import copy
import datetime
import logging
import sys
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Any

import anyio
import attrs
import sniffio
import trio

from trikopf._util.runlocal import RunLocal
from trikopf.actions.execution import Defaults, execute_handler
from trikopf.actions.invocation import (
    BodyKwargs,
    build_kwargs,
    fill_body,
    invoke,
    invoke_prepared,
    kwargs_table,
    raise_if_asyncio_under_trio,
    signature_of,
)
from trikopf.actions.loggers import ObjectLogger
from trikopf.actions.patching import PatchClient, apply_merge_patch, apply_patch, merge_into
from trikopf.actions.posting import EventPoster, set_current_poster
from trikopf.actions.progress import HandlerState, Progress, wall_now
from trikopf.bodies import Body, Memo, Patch
from trikopf.causes import (
    ChangeCause,
    Reason,
    detect_change_cause,
    encode_essence,
    essence_of,
    same_essence,
)
from trikopf.client.errors import BadRequest, ClientError, Invalid
from trikopf.diffs import reduce, resolve
from trikopf.hierarchies import current_owner
from trikopf.registry import ChangingHandler, OperatorRegistry, ResourceHandler
from trikopf.settings import OperatorSettings
from trikopf.structs import Resource, WatchEvent

__all__ = [
    "EventPoster",
    "ObjectState",
    "ProcessingOutcome",
    "essence_annotation",
    "handle_raw_event",
    "object_memo",
    "prepare_raw_handler",
    "process_event",
    "progress_annotation",
    "release_untouched_memo",
    "settle_own_echo",
]

logger = logging.getLogger("trikopf.processing")

_API_BACKOFF_FIRST = 1.0
_API_BACKOFF_MAX = 60.0
_TIME_SLACK = 0.001
# When the caller gives no memo: one per event loop, so that handlers still share one.
_LOOP_MEMO: RunLocal[Memo] = RunLocal("trikopf_memo", Memo)


# The writes of all rounds in one event loop, bounded (see networking.max_concurrent_writes).
_WRITES: RunLocal[dict[int, _WriteSlot]] = RunLocal("trikopf_writes", dict)


def _write_limiter(settings: OperatorSettings) -> _WriteSlot:
    limit = settings.networking.max_concurrent_writes
    limiters = _WRITES.get()
    limiter = limiters.get(limit)
    if limiter is None:
        limiter = limiters[limit] = _WriteSlot(limit)
    return limiter


class _WriteSlot:
    """``async with``: one of ``limit`` write slots, first come first served.

    A free slot is taken without a checkpoint (the write that follows is a checkpoint of its
    own). When all are taken, the round waits on an event of its own in a queue, and a round
    that leaves hands its slot straight to the first one waiting: no borrower bookkeeping, no
    parking lot, one event per wait. A waiter cancelled after it was handed the slot hands it
    on. Synchronous bookkeeping only: safe on Trio and asyncio alike (one event loop).
    """

    __slots__ = ("_event", "_limit", "_used", "_waiters")

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._used = 0
        self._waiters: deque[anyio.Event | trio.Event] = deque()
        # Made in the event loop it serves (one per run): Trio's own event skips AnyIO's
        # backend lookup per wait.
        self._event: Callable[[], anyio.Event | trio.Event] = (
            trio.Event if sniffio.current_async_library() == "trio" else anyio.Event
        )

    async def __aenter__(self) -> None:
        if self._used < self._limit and not self._waiters:
            self._used += 1
            return
        waiter = self._event()
        self._waiters.append(waiter)
        try:
            await waiter.wait()
        except BaseException:
            if waiter.is_set():
                self._hand_on()  # handed the slot, but leaving: the next one gets it
            else:
                self._waiters.remove(waiter)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._hand_on()

    def _hand_on(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()  # the slot passes on: still taken
        else:
            self._used -= 1


def _shared_memo(memo: Any) -> Any:
    if memo is not None:
        return memo
    return _LOOP_MEMO.get()


class ObjectState:
    """What the reactor keeps per live object between rounds (tiny: five slots).

    - ``seen``: this operator process has run a round for the object (so it is not "resumed").
    - ``awaiting``: the resourceVersion our last PATCH produced; older bodies still in flight on
      the watch are skipped until the watch catches up, so a round never acts on stale state.
    - ``echo``: the resourceVersion of the body our last PATCH returned, kept only when that
      body needs nothing more (see :func:`_settled`): the watch event that brings it back (our
      own echo) ends its round at once, with no cause detection.
    - ``failures``: consecutive rounds whose changes could not be sent (for the backoff).
    - ``memo``: the object's own memo (see :func:`object_memo`), kept only once a handler has
      changed it or handed it on (see :func:`release_untouched_memo`).
    """

    __slots__ = ("awaiting", "echo", "failures", "memo", "seen")

    def __init__(self) -> None:
        self.seen = False
        self.awaiting: int | None = None
        self.echo: int | None = None
        self.failures = 0
        self.memo: Any = None

    @classmethod
    def seen_before(cls) -> ObjectState:
        """The state of an object whose earlier state was dropped as idle (:meth:`is_idle`)."""
        state = cls()
        state.seen = True
        return state

    def is_idle(self) -> bool:
        """Whether nothing but ``seen`` is kept: no echo awaited, no failures, no memo of its own.

        Such a state need not be kept between rounds: the reactor drops it and remembers only
        that the object was seen (:meth:`seen_before` makes it again). Everything else the next
        round needs is on the object itself (the stored essence and progress).
        """
        return (
            self.seen
            and self.awaiting is None
            and self.echo is None
            and not self.failures
            and self.memo is None
        )

    def __repr__(self) -> str:
        return (
            f"ObjectState(seen={self.seen}, awaiting={self.awaiting}, echo={self.echo}, "
            f"failures={self.failures})"
        )


def object_memo(state: Any, root: Any) -> Any:
    """The memo that the handlers of one object receive: a shallow copy of the operator's.

    As in Kopf, what a handler assigns (``memo.task = ...``) stays with its object, while
    mutable values put into the operator's memo by startup handlers are shared by all objects.
    The copy is kept on ``state.memo``; after the round :func:`release_untouched_memo` drops it
    again if no handler changed it, so only objects whose handlers use their memo keep one. A
    ``state`` that cannot keep it gets the operator's memo itself.
    """
    memo = getattr(state, "memo", None)
    if memo is None:
        memo = copy.copy(root)
        try:
            state.memo = memo
        except AttributeError:
            return root
    return memo


_MISSING = object()


def release_untouched_memo(state: Any, root: Any) -> None:
    """Drop ``state.memo`` if it is still an untouched copy of ``root`` that nobody else holds.

    Copy-on-write in effect: every round that runs handlers gets a copy (:func:`object_memo`),
    but an object keeps it between rounds only if a handler changed it (assigned, deleted a
    key) or handed it to something that still holds it (a daemon, a task, a closure, a list).
    An untouched copy is indistinguishable from a fresh copy of ``root``, which the next round
    makes. Synchronous; never awaits.
    """
    memo = getattr(state, "memo", None)
    if memo is None or type(memo) is not type(root) or not isinstance(root, dict):
        return
    getrefcount = getattr(sys, "getrefcount", None)
    # Three references: the state's slot, the local name, and getrefcount's own argument.
    if getrefcount is None or getrefcount(memo) > 3:
        return
    if len(memo) != len(root) or getattr(memo, "__dict__", None):
        return
    for key, value in memo.items():
        if root.get(key, _MISSING) is not value:
            return
    state.memo = None


def settle_own_echo(event: WatchEvent, state: Any) -> bool:
    """Whether ``event`` is our own last PATCH coming back, settled already: no round needed.

    The same test that ends such a round at once in :func:`process_event` (``state.echo``, see
    :class:`ObjectState`), made synchronously when the event arrives, so that the reactor need
    not queue the object for a round. When it answers ``True`` it has consumed the echo
    (the state is as after that round); any other event leaves the state untouched. A relisted
    body is never settled here. Never awaits.
    """
    echo = getattr(state, "echo", None)
    if echo is None or event.listed or event.type != "MODIFIED":
        return False
    if _rv(event.object) != echo:
        return False
    state.awaiting = None
    state.echo = None
    return True


@attrs.frozen(kw_only=True)
class ProcessingOutcome:
    """The result of one round.

    ``delay``: run another round after this many seconds (with the newest body) even if no
    event comes; ``None``: wait for the next event. ``gone``: the object no longer exists (or
    is released by us), its state may be dropped.
    """

    delay: float | None = None
    gone: bool = False


def essence_annotation(settings: OperatorSettings) -> str:
    """The annotation that stores the last handled essence."""
    return f"{settings.persistence.annotation_prefix}/last-handled-configuration"


def progress_annotation(settings: OperatorSettings) -> str:
    """The annotation that stores the retry progress of the current cause."""
    return f"{settings.persistence.annotation_prefix}/progress"


def _rv(body: Mapping[str, Any] | None) -> int | None:
    value = ((body or {}).get("metadata") or {}).get("resourceVersion")
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _touches_essence(changes: Mapping[str, Any]) -> bool:
    """Whether a patch changes the essence (anything but status and non-user metadata)."""
    for key, value in changes.items():
        if key == "status":
            continue
        if key != "metadata":
            return True
        if isinstance(value, Mapping) and (value.get("labels") or value.get("annotations")):
            return True
    return False


def _settled(
    registry: OperatorRegistry,
    resource: Resource,
    settings: OperatorSettings,
    handlers: Sequence[ChangingHandler],
    background: bool,
    *,
    accounted: Mapping[str, Any],
    sent: Mapping[str, Any],
    cause: ChangeCause,
) -> bool:
    """Whether a finished round's PATCH response needs no round of its own when it comes back.

    ``accounted`` is the body the round's cause was detected on. Other writers may have changed
    the object between that body and our PATCH (a merge-patch carries no resourceVersion), and
    the response then shows their change: it is settled only when a round on it would find
    nothing to do, that is the same essence as accounted for and stored, no progress, no
    deletion, and a finalizer that no handler filter could want added or removed.
    """
    persistence = settings.persistence
    if cause.essence is None:
        return False
    meta = sent.get("metadata") or {}
    if meta.get("deletionTimestamp"):
        return False
    annotations = meta.get("annotations") or {}
    if progress_annotation(settings) in annotations:
        return False
    if annotations.get(essence_annotation(settings)) != cause.essence:
        return False
    if not same_essence(accounted, sent, prefix=persistence.annotation_prefix):
        return False
    # The same test as the no-op shortcut of process_event: the finalizer is as it should be.
    wanting: list[ResourceHandler] = [h for h in handlers if h.requires_finalizer]
    if background:
        wanting.extend(registry.daemon_handlers_for(resource))
        wanting.extend(registry.timer_handlers_for(resource))
    has_finalizer = persistence.finalizer in (meta.get("finalizers") or ())
    if not wanting:
        return not has_finalizer
    unfiltered = any(
        h.labels is None and h.annotations is None and h.when is None and h.value is None
        for h in wanting
    )
    return unfiltered and has_finalizer


_NO_KWARGS: Mapping[str, Any] = {}


def _reads_kwargs(handlers: Sequence[ResourceHandler]) -> bool:
    """Whether the filters of any of ``handlers`` look at the keyword arguments."""
    return any(
        h.labels or h.annotations or h.value is not None or h.when is not None for h in handlers
    )


# The last Defaults made, by the settings' values: one per round otherwise (a frozen attrs
# instance, about 1 µs); the settings may change at run time, so the values are the key.
_LAST_DEFAULTS: list[Any] = [None, None]


def _defaults(settings: OperatorSettings) -> Defaults:
    execution = settings.execution
    key = (execution.backoff, execution.timeout, execution.retries, execution.max_sync_threads)
    cached = _LAST_DEFAULTS
    if cached[0] == key:
        defaults: Defaults = cached[1]
        return defaults
    defaults = Defaults(
        backoff=key[0],
        timeout=key[1],
        retries=key[2],
        thread_limit=key[3],
    )
    cached[0], cached[1] = key, defaults
    return defaults


async def process_event(
    *,
    registry: OperatorRegistry,
    settings: OperatorSettings,
    resource: Resource,
    event: WatchEvent,
    client: PatchClient,
    memo: Any,
    poster: EventPoster | None,
    state: ObjectState,
) -> ProcessingOutcome:
    """Run one processing round for the newest event of one object.

    Runs in the caller's task: async handlers in it, sync ones in worker threads (bounded). Returns
    when the due handlers have run and the round's changes are sent (or the object turned out to
    be gone). Handler errors never escape (they become retries or failures); API errors while
    sending become a delayed round. Cancellation (the operator stopping) passes through; changes
    of an interrupted round are not sent, so its handlers run again in a later round.

    Afterwards the object's memo copy is dropped again if no handler touched it (see
    :func:`release_untouched_memo`): an idle object keeps no memo of its own.
    """
    outcome = await _process_round(
        registry=registry,
        settings=settings,
        resource=resource,
        event=event,
        client=client,
        memo=memo,
        poster=poster,
        state=state,
    )
    # The round's frames are gone now: only the state (and whoever a handler gave it to)
    # still refers to the memo copy.
    release_untouched_memo(state, _shared_memo(memo))
    return outcome


async def _process_round(
    *,
    registry: OperatorRegistry,
    settings: OperatorSettings,
    resource: Resource,
    event: WatchEvent,
    client: PatchClient,
    memo: Any,
    poster: EventPoster | None,
    state: ObjectState,
) -> ProcessingOutcome:
    """The round itself, as :func:`process_event` describes it (without the memo release)."""
    if event.type == "DELETED":
        return ProcessingOutcome(gone=True)
    if event.type not in ("ADDED", "MODIFIED"):
        return ProcessingOutcome()
    handlers = registry.changing_handlers_for(resource)
    # Daemons and timers need the finalizer too (released once they have stopped).
    background = bool(
        registry.daemon_handlers_for(resource) or registry.timer_handlers_for(resource)
    )
    if not handlers and not background:
        state.seen = True
        return ProcessingOutcome()

    raw: Mapping[str, Any] = event.object
    if state.awaiting is not None:
        rv = _rv(raw)
        if rv is not None and rv < state.awaiting:
            return ProcessingOutcome()  # our own newer patch is still on its way
        state.awaiting = None
        echo, state.echo = state.echo, None
        if echo is not None and rv == echo and not event.listed:
            # The body our own last PATCH returned, which that round already checked needs
            # nothing more: no cause to detect. A relist may have hidden other changes before
            # it, so a listed body is examined in full.
            return ProcessingOutcome()
    state.echo = None

    persistence = settings.persistence
    prefix = persistence.annotation_prefix
    finalizer = persistence.finalizer
    essence_key = essence_annotation(settings)
    progress_key = progress_annotation(settings)
    meta = raw.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    stored_progress = annotations.get(progress_key)
    # A cause that began on first sight stays "initial" until it is finished, so that resume
    # handlers being retried are not forgotten in the following rounds (or after a restart).
    continued = stored_progress is not None and Progress.decode(stored_progress, now=0.0).initial
    initial = not state.seen or continued
    cause = detect_change_cause(
        event_type=event.type,
        body=raw,
        finalizer=finalizer,
        stored_essence=annotations.get(essence_key),
        prefix=prefix,
        initial=initial,
        essence_limit=persistence.essence_limit,
        # Born on the watch stream while we run: a plain creation, not a resumed object.
        initial_create=initial and (event.listed or continued),
    )
    state.seen = True
    if cause.reason is Reason.FREE or cause.reason is Reason.GONE:
        return ProcessingOutcome()
    if cause.reason is Reason.NOOP and progress_key not in annotations:
        # The hot path (our own patch coming back, status churn): nothing to run, nothing to
        # send, unless the finalizer has to be added or removed.
        has_finalizer = finalizer in (meta.get("finalizers") or ())
        wanting: list[ResourceHandler] = [h for h in handlers if h.requires_finalizer]
        if background:
            wanting.extend(registry.daemon_handlers_for(resource))
            wanting.extend(registry.timer_handlers_for(resource))
        unfiltered = any(
            h.labels is None and h.annotations is None and h.when is None and h.value is None
            for h in wanting
        )
        if (not wanting and not has_finalizer) or (unfiltered and has_finalizer):
            return ProcessingOutcome()

    if poster is not None:
        set_current_poster(poster)
    posting = settings.posting
    olog = ObjectLogger(raw, poster=poster if posting.enabled else None, level=posting.level)
    memo = object_memo(state, _shared_memo(memo))
    round_ = _Round(
        resource=resource,
        cause=cause,
        raw=raw,
        patch=Patch(),
        logger=olog,
        memo=memo,
    )

    try:
        # The finalizer goes on before any handler runs: a deletion during a slow create
        # handler must wait for the delete handlers.
        has_finalizer = finalizer in (meta.get("finalizers") or ())
        drop_finalizer = False
        if cause.reason is not Reason.DELETE:
            filtering: list[ResourceHandler] = [h for h in handlers if h.requires_finalizer]
            if background:
                filtering.extend(registry.daemon_handlers_for(resource))
                filtering.extend(registry.timer_handlers_for(resource))
            try:
                # The filters read kwargs only for labels, annotations, value and when: without
                # those, none are built for this check.
                needs = registry.requires_finalizer(
                    resource,
                    raw,
                    round_.kwargs(None, None, 0.0) if _reads_kwargs(filtering) else _NO_KWARGS,
                )
            except Exception as exc:  # a user's filter callable failed: keep things as they are
                olog.error("A filter failed, the finalizer is left as it is: %r", exc)
                needs = has_finalizer
            if needs and not has_finalizer:
                async with _write_limiter(settings):
                    fresh = await apply_patch(
                        client,
                        resource,
                        raw,
                        {},
                        finalizers=lambda f: f if finalizer in f else [*f, finalizer],
                    )
                if fresh is None:
                    return ProcessingOutcome(gone=True)
                raw = round_.raw = fresh
                state.awaiting = _rv(fresh)
                round_.body = Body(raw)
            drop_finalizer = has_finalizer and not needs

        now = wall_now()
        progress = Progress.decode(stored_progress, now=now)
        if progress.purpose != cause.reason.value:
            progress = Progress(purpose=cause.reason.value)
        states: dict[str, HandlerState] = dict(progress.handlers)

        selected: list[tuple[ChangingHandler, dict[str, Any]]] = []
        ids: set[str] = set()
        for handler in handlers:
            if handler.id in ids or not handler.matches_cause(cause):
                continue
            hstate = states.get(handler.id)
            kwargs = round_.kwargs(handler, hstate, now)
            try:
                passes = handler.passes_filters(raw, kwargs)
            except Exception as exc:  # a user's filter callable failed: not this round
                olog.error("The filters of handler %r failed; it is skipped: %r", handler.id, exc)
                passes = False
            if passes:
                selected.append((handler, kwargs))
                ids.add(handler.id)

        delays: list[float] = []
        results: dict[str, Any] = {}
        defaults = _defaults(settings)
        for handler, kwargs in selected:
            hstate = states.get(handler.id)
            if hstate is None:
                hstate = states[handler.id] = HandlerState(started=now)
            if hstate.finished:
                continue
            now = wall_now()
            # Stored times have microsecond precision: a hair early is on time.
            if hstate.delayed is not None and hstate.delayed > now + _TIME_SLACK:
                delays.append(hstate.delayed - now)
                continue
            outcome = await execute_handler(
                handler, hstate, kwargs, now=now, defaults=defaults, logger=olog
            )
            states[handler.id] = outcome.state
            if outcome.result is not None:
                results[handler.id] = outcome.result
            if outcome.delay is not None:
                delays.append(outcome.delay)

        finished = all(states[h.id].finished for h, _ in selected)
        blocking_failure = any(
            states[h.id].failed
            for h, _ in selected
            if h.reason is not Reason.DELETE or not h.optional
        )
        user_changes: dict[str, Any] = merge_into({}, round_.patch)
        changes = merge_into({}, user_changes)
        if results:
            merge_into(changes, {"status": results})
        notes: dict[str, Any] = {}
        if finished:
            if progress_key in annotations:
                notes[progress_key] = None
            essence = cause.essence
            if essence is not None and _touches_essence(changes):
                # The handlers changed the essence themselves: what they wrote is handled, it
                # must not come back as an update of their own making.
                applied = apply_merge_patch(copy.deepcopy(dict(raw)), changes)
                essence = encode_essence(
                    essence_of(applied, prefix=prefix), limit=persistence.essence_limit
                )
            if essence is not None and annotations.get(essence_key) != essence:
                notes[essence_key] = essence
        else:
            encoded = Progress(
                purpose=cause.reason.value,
                handlers={h.id: states[h.id] for h, _ in selected},
                initial=cause.initial,
            ).encode()
            if annotations.get(progress_key) != encoded:
                notes[progress_key] = encoded
        ours: dict[str, Any] = {"status": results} if results else {}
        if notes:
            merge_into(changes, {"metadata": {"annotations": notes}})
            merge_into(ours, {"metadata": {"annotations": notes}})
        release = drop_finalizer or (
            cause.reason is Reason.DELETE and finished and not blocking_failure
        )
        if cause.reason is Reason.DELETE and finished and blocking_failure:
            olog.error(
                "A delete handler failed permanently; the finalizer %s stays until it is "
                "removed by hand.",
                finalizer,
                extra={"reason": "Error"},
            )

        if changes or release:
            edit = (lambda f: [x for x in f if x != finalizer]) if release else None
            try:
                async with _write_limiter(settings):
                    sent = await apply_patch(client, resource, raw, changes, finalizers=edit)
            except (BadRequest, Invalid) as exc:
                if not user_changes:
                    raise
                # The API refused what the handlers wrote into `patch`; their results and our
                # bookkeeping must still be stored, or the handlers would run again and again.
                olog.error(
                    "The handlers' patch was rejected and is dropped: %s", exc,
                    extra={"reason": "Error"},
                )  # fmt: skip
                kept = ours.get("metadata", {}).get("annotations", {})
                if essence_key in kept:  # what is stored is the object without their patch
                    if cause.essence is None or annotations.get(essence_key) == cause.essence:
                        del kept[essence_key]
                    else:
                        kept[essence_key] = cause.essence
                async with _write_limiter(settings):
                    sent = await apply_patch(client, resource, raw, ours, finalizers=edit)
            if sent is None:
                logger.debug("%s is gone; the round ends here.", olog.extra)
                return ProcessingOutcome(gone=True)
            state.awaiting = _rv(sent)
            if (
                finished
                and not release
                and not user_changes
                and state.awaiting is not None
                and _settled(
                    registry,
                    resource,
                    settings,
                    handlers,
                    background,
                    accounted=event.object,
                    sent=sent,
                    cause=cause,
                )
            ):
                state.echo = state.awaiting
        state.failures = 0
    except ClientError as exc:
        state.failures += 1
        delay = min(_API_BACKOFF_MAX, _API_BACKOFF_FIRST * 2 ** (state.failures - 1))
        olog.error(
            "The round's changes could not be sent (%s); retrying in %gs.",
            exc,
            delay,
            extra={"reason": "Error"},
        )
        return ProcessingOutcome(delay=delay)

    if finished:
        return ProcessingOutcome(gone=release and cause.reason is Reason.DELETE)
    return ProcessingOutcome(delay=max(0.0, min(delays)) if delays else 0.0)


@attrs.define(eq=False, slots=True)
class _Round:
    """The things one round shares between its handlers (one patch, one logger, one memo)."""

    resource: Resource
    cause: ChangeCause
    raw: Mapping[str, Any]
    patch: Patch
    logger: ObjectLogger
    memo: Any
    body: Body = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self.body = Body(self.raw)

    def kwargs(
        self, handler: ResourceHandler | None, hstate: HandlerState | None, now: float
    ) -> dict[str, Any]:
        cause = self.cause
        d, old, new = cause.diff, cause.old, cause.new
        if handler is not None and handler.field:
            d = reduce(d, handler.field)
            old = resolve(old, handler.field)
            new = resolve(new, handler.field)
        return build_kwargs(
            body=self.body,
            patch=self.patch,
            logger=self.logger,
            memo=self.memo,
            resource=self.resource,
            param=handler.param if handler is not None else None,
            reason=cause.reason.value,
            diff=d,
            old=old,
            new=new,
            retry=hstate.retries if hstate is not None else 0,
            started=hstate.started if hstate is not None else now,
            now=now,
        )


async def handle_raw_event(
    *,
    registry: OperatorRegistry,
    settings: OperatorSettings,
    resource: Resource,
    event: WatchEvent,
    client: PatchClient | None = None,
    memo: Any = None,
    poster: EventPoster | None = None,
) -> None:
    """Run the ``on.event`` handlers for one raw watch event, one after another.

    Fire and forget: errors are logged and never retried; returns when the handlers have
    returned. Their ``patch`` is sent (one PATCH) if they wrote into it; a gone object is fine.
    """
    if event.type not in ("ADDED", "MODIFIED", "DELETED"):
        return
    handlers = registry.watching_handlers_for(resource)
    if not handlers:
        return
    raw = event.object
    if poster is not None:
        set_current_poster(poster)
    posting = settings.posting
    olog = ObjectLogger(raw, poster=poster if posting.enabled else None, level=posting.level)
    body = Body(raw)
    patch = Patch()
    memo = _shared_memo(memo)
    # As in Kopf: objects found by a listing (the first one, or a relist) come with no type.
    kind = None if event.listed else event.type
    raw_event = {"type": kind, "object": raw}
    for handler in handlers:
        kwargs = build_kwargs(
            body=body,
            patch=patch,
            logger=olog,
            memo=memo,
            resource=resource,
            param=handler.param,
            event=raw_event,
            type=kind,
        )
        try:
            if not handler.passes_filters(raw, kwargs):
                continue
            await invoke(handler.fn, kwargs, thread_limit=settings.execution.max_sync_threads)
        except Exception:
            olog.exception("Event handler %r failed; ignored.", handler.id)
    changes = merge_into({}, patch)
    if changes and client is not None and event.type != "DELETED":
        try:
            await apply_patch(client, resource, raw, changes)
        except ClientError as exc:
            olog.error("The event handlers' patch could not be sent: %s", exc)


_RAW_TYPES = frozenset({"ADDED", "MODIFIED", "DELETED"})
_NO_TIME = datetime.timedelta(0)  # the runtime of a call without a start time (immutable)


def prepare_raw_handler(
    *,
    registry: OperatorRegistry,
    settings: OperatorSettings,
    resource: Resource,
    client: PatchClient | None = None,
    memo: Any = None,
    poster: EventPoster | None = None,
) -> Callable[[WatchEvent], Coroutine[Any, Any, None]]:
    """:func:`handle_raw_event` for one resource, with what is the same for every event resolved once.

    The reactor calls the returned function for every raw event of the resource (the hot path
    of ``on.event``): the handlers, the memo and the posting settings are looked up here, once,
    and one set of keyword arguments is built per event for all its handlers. Its tasks inherit
    the operator's Event poster, so it is not set again per event. Same contract as
    :func:`handle_raw_event`: fire and forget, errors logged, the handlers' ``patch`` sent.
    """
    handlers = tuple(registry.watching_handlers_for(resource))
    shared = _shared_memo(memo)
    posting = settings.posting
    post_to = poster if posting.enabled else None
    level = posting.level
    thread_limit = settings.execution.max_sync_threads
    # Per handler, once: its signature, and whether it has filters to check per event.
    plans = tuple(
        (
            handler,
            signature_of(handler.fn),
            bool(
                handler.labels
                or handler.annotations
                or handler.field
                or handler.value is not None
                or handler.when is not None
            ),
        )
        for handler in handlers
    )
    # The usual case, **kwargs handlers without filters or typed specs: one dict per event from
    # a table made here (the names and constants of every call), the handlers called in place.
    direct = all(
        sig.is_async and sig.takes_all and sig.spec_class is None and not filtered
        for _, sig, filtered in plans
    )
    table = kwargs_table(memo=shared, resource=resource, event=None, type=None)
    calls = tuple((handler.fn, handler.param, handler.id) for handler in handlers)

    async def handle(event: WatchEvent) -> None:
        kind = event.type
        if kind not in _RAW_TYPES or not plans:
            return
        raw = event.object
        olog = ObjectLogger(raw, post_to, level)  # by position: no kwargs dict per event
        patch = Patch()
        # As in Kopf: objects found by a listing (the first one, or a relist) come with no type.
        shown = None if event.listed else kind
        if direct:
            every = table.copy()
            body = fill_body(every, raw)
            every["patch"] = patch
            every["logger"] = olog
            every["event"] = {"type": shown, "object": raw}
            every["type"] = shown
            token = current_owner.set(body)  # trikopf.adopt() & co. default to this object
            try:
                for fn, param, handler_id in calls:
                    every["param"] = param  # each handler gets its own copy of the dict
                    try:
                        try:
                            await fn(**every)
                        except (RuntimeError, TypeError) as exc:
                            raise_if_asyncio_under_trio(fn, exc)
                            raise
                    except Exception:
                        olog.exception("Event handler %r failed; ignored.", handler_id)
            finally:
                current_owner.reset(token)
            if patch and client is not None and kind != "DELETED":
                await _send_event_patch(client, resource, raw, patch, olog)
            return
        # The same names as build_kwargs(); the views of the body are made only if read.
        kwargs = BodyKwargs(
            raw,
            {
                "patch": patch,
                "logger": olog,
                "memo": shared,
                "resource": resource,
                "param": None,
                "reason": None,
                "diff": None,
                "old": None,
                "new": None,
                "retry": 0,
                "started": None,
                "runtime": _NO_TIME,
                "event": {"type": shown, "object": raw},
                "type": shown,
            },
        )
        for handler, sig, filtered in plans:
            kwargs["param"] = handler.param  # each handler gets its own copy of the kwargs
            try:
                if filtered and not handler.passes_filters(raw, kwargs):
                    continue
                if sig.takes_all:
                    call_kwargs = kwargs.as_dict()
                else:
                    call_kwargs = {k: kwargs[k] for k in sig.names if k in kwargs}
                await invoke_prepared(
                    handler.fn, sig, call_kwargs, owner=kwargs.body(), thread_limit=thread_limit
                )
            except Exception:
                olog.exception("Event handler %r failed; ignored.", handler.id)
        if patch and client is not None and kind != "DELETED":
            await _send_event_patch(client, resource, raw, patch, olog)

    return handle


async def _send_event_patch(
    client: PatchClient, resource: Resource, raw: Any, patch: Patch, olog: ObjectLogger
) -> None:
    """Send what the event handlers wrote into ``patch``; a failure is logged, not raised."""
    changes = merge_into({}, patch)
    if changes:
        try:
            await apply_patch(client, resource, raw, changes)
        except ClientError as exc:
            olog.error("The event handlers' patch could not be sent: %s", exc)
