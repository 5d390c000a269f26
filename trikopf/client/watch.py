"""The watch stream's decoding: HTTP chunked framing, lines, one JSON parse per event.

:class:`WatchDecoder` is pure (bytes in, event lines out, each parsed by ``parse`` when its
consumer takes it; no I/O), so it is tested and benchmarked on its own. The I/O around it lives
in :mod:`trikopf.client.watching`.
"""

from __future__ import annotations

from typing import Any

from trikopf.client import jsonlib
from trikopf.client.errors import ApiConnectionError

__all__ = ["WatchDecoder", "WatchProtocolError"]

_MAX_CHUNK_HEADER = 4096


class WatchProtocolError(ApiConnectionError):
    """The watch stream broke HTTP framing or sent a line that is not a JSON object."""


class WatchDecoder:
    """Turns the raw bytes of a watch response body into parsed event mappings.

    ``chunked`` says whether the body uses HTTP/1.1 chunked transfer coding (the usual case);
    otherwise the bytes are the body itself, ``length`` bytes long if the response said so
    (else until the connection closes). Events are split on newlines wherever the HTTP chunks
    happen to end, and each line is parsed exactly once. ``finished`` turns true when the
    terminating zero-size chunk (or the last byte of ``length``) arrives.
    """

    __slots__ = (
        "_buffer",
        "_chunked",
        "_crlf",
        "_left",
        "_line",
        "_loads",
        "_remaining",
        "finished",
    )

    def __init__(self, *, chunked: bool, length: int | None = None) -> None:
        self._chunked = chunked
        self._left = length  # bytes of an identity body still to come (None: until closed)
        self._buffer = b""  # unparsed framing bytes
        self._line = b""  # the start of a line whose newline has not arrived yet
        self._remaining = 0  # bytes left in the current chunk's data
        self._crlf = False  # the CRLF after a chunk's data is still due
        self._loads = jsonlib.loads
        self.finished = False

    def feed(self, data: bytes) -> list[dict[str, Any]]:
        """Decode more bytes; returns the events completed by them (maybe none), parsed."""
        events = []
        for line in self.feed_lines(data):
            event = self.parse(line)
            if event is not None:
                events.append(event)
        return events

    def feed_lines(self, data: bytes) -> list[bytes]:
        """Decode more bytes; returns the event lines completed by them, not yet parsed.

        Parsing each line only when its consumer asks for it keeps one event's objects in the
        CPU caches from parse to use, instead of a whole read's worth of them.
        """
        lines: list[bytes] = []
        if not self._chunked:
            if self._left is not None:
                data = data[: self._left]  # anything after the body is not ours
                self._left -= len(data)
                self.finished = self._left <= 0
            self._split(data, lines)
            return lines
        buf = self._buffer + data if self._buffer else data
        pos = 0
        size = len(buf)
        append = lines.append
        while not self.finished:
            if self._remaining:
                take = min(self._remaining, size - pos)
                if take <= 0:
                    break
                self._split(buf[pos : pos + take], lines)
                pos += take
                self._remaining -= take
                if self._remaining:
                    break
                self._crlf = True
            if self._crlf:
                if size - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise WatchProtocolError("watch stream: a chunk does not end with CRLF")
                pos += 2
                self._crlf = False
            end = buf.find(b"\r\n", pos)
            if end < 0:
                if size - pos > _MAX_CHUNK_HEADER:
                    raise WatchProtocolError("watch stream: a chunk header is too long")
                break
            try:
                length = int(buf[pos:end], 16)
            except ValueError:
                length = self._chunk_size(buf[pos:end])
            pos = end + 2
            if length == 0:
                self.finished = True  # trailers, if any, are irrelevant to a watch
                break
            stop = pos + length
            # The common case: the chunk is here whole, and it is exactly one line.
            # (Its first newline is its last byte; a find without an end bound parses less.)
            if not self._line and size >= stop + 2 and buf.find(b"\n", pos) == stop - 1:
                if buf[stop] != 13 or buf[stop + 1] != 10:  # "\r\n"
                    raise WatchProtocolError("watch stream: a chunk does not end with CRLF")
                append(buf[pos:stop])
                pos = stop + 2
                continue
            self._remaining = length
        self._buffer = buf[pos:] if pos < size else b""
        return lines

    @staticmethod
    def _chunk_size(header: bytes) -> int:
        text = header.split(b";", 1)[0].strip()
        try:
            return int(text, 16)
        except ValueError:
            raise WatchProtocolError(f"watch stream: bad chunk size {text[:20]!r}") from None

    def _split(self, data: bytes, lines: list[bytes]) -> None:
        if self._line:
            data = self._line + data
            self._line = b""
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                if start < len(data):
                    self._line = data[start:]
                return
            if end > start:
                lines.append(data[start:end])
            start = end + 1

    def parse(self, line: bytes) -> dict[str, Any] | None:
        """One event line as a mapping (``None`` for a blank line); raises on anything else."""
        try:
            event = self._loads(line)
        except ValueError:
            if not line.strip():
                return None
            raise WatchProtocolError(f"watch stream: a line is not JSON: {line[:80]!r}") from None
        if type(event) is not dict:
            raise WatchProtocolError(f"watch stream: a line is not a JSON object: {line[:80]!r}")
        return event

    def ended(self) -> bool:
        """Whether the terminating zero-size chunk has arrived (same as ``finished``)."""
        return self.finished

    def expects_more(self) -> bool:
        """Whether a body of known length has not been received whole (a cut connection)."""
        return self._left is not None and self._left > 0

    @property
    def chunked(self) -> bool:
        """Whether the body uses chunked transfer coding (then only a zero chunk ends it)."""
        return self._chunked

    @property
    def pending(self) -> bool:
        """Whether an event was started but not finished (a cut-off stream lost it)."""
        return bool(self._line.strip()) or bool(self._remaining)
