"""Per-object loggers: every line names its object, and lines at the posting level become Events.

Handlers receive ``logger``, an :class:`ObjectLogger`. Its records carry ``k8s_namespace``,
``k8s_name`` and ``k8s_uid`` in their ``extra`` (the JSON log format prints them), the message is
prefixed with ``[namespace/name]``, and records at or above ``settings.posting.level`` are also
posted as Kubernetes Events about the object (``Normal`` below WARNING, ``Warning`` from it on),
with the reason given as ``extra={"reason": ...}`` or ``Logging``.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

from trikopf.actions.posting import EventPoster

__all__ = ["ObjectLogger", "object_logger"]

_base = logging.getLogger("trikopf.objects")
_HERE = __file__


class ObjectLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """A logger about one object; cheap to make (one per round, one per raw event).

    The object's names (``extra`` and the message prefix) are read from the body only when
    something is logged: most handlers never log.
    """

    # Class-level defaults: an instance sets only what differs (one is made per raw event).
    logger: logging.Logger = _base
    merge_extra = False
    _extra: Mapping[str, object] | None = None
    _prefix_text: str | None = None
    _poster: EventPoster | None = None
    _post_level: int = logging.INFO

    def __init__(
        self,
        body: Mapping[str, Any],
        poster: EventPoster | None = None,
        level: int = logging.INFO,
        *,
        logger: logging.Logger = _base,
    ) -> None:
        # LoggerAdapter.__init__'s work, without a call, and only what is not the default.
        # (``poster`` and ``level`` may be given by position: a class call with keywords
        # builds a dict of them, once per raw event.)
        self._body = body
        if poster is not None:
            self._poster = poster
            self._post_level = level
        if logger is not _base:
            self.logger = logger

    @property
    def extra(self) -> Mapping[str, object] | None:
        """``k8s_namespace``, ``k8s_name`` and ``k8s_uid`` of the object (made when first read)."""
        extra = self._extra
        if extra is None:
            meta = self._body.get("metadata") or {}
            extra = self._extra = {
                "k8s_namespace": meta.get("namespace"),
                "k8s_name": meta.get("name"),
                "k8s_uid": meta.get("uid"),
            }
        return extra

    @extra.setter
    def extra(self, value: Mapping[str, object] | None) -> None:
        self._extra = value  # None (as LoggerAdapter's own __init__ sets it): made from the body

    @property
    def _prefix(self) -> str:
        prefix = self._prefix_text
        if prefix is None:
            meta = self._body.get("metadata") or {}
            namespace = meta.get("namespace")
            name = meta.get("name")
            prefix = self._prefix_text = f"[{namespace}/{name}] " if namespace else f"[{name}] "
        return prefix

    def process(
        self, msg: Any, kwargs: MutableMapping[str, Any]
    ) -> tuple[Any, MutableMapping[str, Any]]:
        given = kwargs.get("extra")
        if not given or (len(given) == 1 and "reason" in given):
            # The object's own names alone (the usual case: at most a reason for the Event):
            # shared, not copied, since the record only reads them.
            kwargs["extra"] = self.extra
        else:
            extra = dict(self.extra or {})
            extra.update(given)
            extra.pop("reason", None)
            kwargs["extra"] = extra
        return f"{self._prefix}{msg}", kwargs

    def log(self, level: int, msg: Any, *args: Any, **kwargs: Any) -> None:
        if self._poster is not None and level >= self._post_level:
            reason = (kwargs.get("extra") or {}).get("reason", "Logging")
            try:
                text = str(msg) % args if args else str(msg)
            except (TypeError, ValueError):
                text = str(msg)
            # The body itself: the poster makes the Event's reference only if it queues it
            # (most success lines in a burst of objects are dropped by the rate limit).
            self._poster.post_nowait(
                self._body,
                type="Warning" if level >= logging.WARNING else "Normal",
                reason=str(reason),
                message=text,
            )
        if self.isEnabledFor(level):
            msg, processed = self.process(msg, kwargs)
            if processed.get("stack_info"):
                processed.setdefault("stacklevel", 2)
                self.logger.log(level, msg, *args, **processed)
            else:
                self._emit(level, msg, args, processed)

    def _emit(self, level: int, msg: Any, args: Any, kwargs: Mapping[str, Any]) -> None:
        """Make and handle the record directly: ``Logger._log`` without ``findCaller``.

        ``findCaller`` normalises the file name of every frame it walks; here the caller is the
        first frame outside this module (``stacklevel`` counts further out from it), which costs
        a frame step or two. The record is the one ``Logger.log`` would make.
        """
        frame = sys._getframe(1)
        while frame.f_back is not None and frame.f_code.co_filename == _HERE:
            frame = frame.f_back
        for _ in range(int(kwargs.get("stacklevel", 1)) - 1):
            if frame.f_back is None:
                break
            frame = frame.f_back
        exc_info = kwargs.get("exc_info")
        if exc_info:
            if isinstance(exc_info, BaseException):
                exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
            elif not isinstance(exc_info, tuple):
                exc_info = sys.exc_info()
        else:
            exc_info = None
        code = frame.f_code
        logger = self.logger
        record = logger.makeRecord(
            logger.name,
            level,
            code.co_filename,
            frame.f_lineno,
            msg,
            args,
            exc_info,
            code.co_name,
            kwargs.get("extra"),
        )
        logger.handle(record)

    # LoggerAdapter's helpers go through self.log, except these two on older Pythons.
    def debug(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.DEBUG, msg, *args, **kwargs)

    def info(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.INFO, msg, *args, **kwargs)

    def warning(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.WARNING, msg, *args, **kwargs)

    def error(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, **kwargs)

    def exception(self, msg: Any, *args: Any, exc_info: Any = True, **kwargs: Any) -> None:
        self.log(logging.ERROR, msg, *args, exc_info=exc_info, **kwargs)

    def critical(self, msg: Any, *args: Any, **kwargs: Any) -> None:
        self.log(logging.CRITICAL, msg, *args, **kwargs)


def object_logger(
    body: Mapping[str, Any], *, poster: EventPoster | None, level: int = logging.INFO
) -> ObjectLogger:
    """The logger handed to handlers of this object (see :class:`ObjectLogger`)."""
    return ObjectLogger(body, poster, level)
