"""Server-Sent Events, parsed by hand, and what a pool's event stream makes of them.

The parser follows the HTML standard's rules for ``text/event-stream``: a byte order mark
at the start is skipped; lines end with CRLF, LF or CR (also split across reads, and
with empty reads between the CR and the LF); lines are decoded as UTF-8 once whole, so a
character split across reads is read whole; a line starting with ``:`` is a comment (the
service's keep-alive); ``field: value`` loses one space after the colon; ``data`` lines
accumulate, joined by newlines; a blank line dispatches the event, unless it had no data.
An event cut off by a broken connection is never dispatched: it is sent again after the
reconnection, as the stream resumes after the last event dispatched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import List, Optional, Tuple, cast

from ._errors import LeaseholdError
from ._types import Event, Followed, Trimmed


#: UTF-8's byte order mark, which the standard skips at the start of a stream.
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class Message:
    """One dispatched SSE event: its type (``"message"`` when not named), data, and the
    ``id`` it carried itself (``None`` when it had none, as ``trimmed`` has none)."""

    event: str
    data: str
    id: Optional[str]


class Parser:
    """An incremental ``text/event-stream`` parser: feed it bytes as they come."""

    def __init__(self) -> None:
        self._buffer = b""
        # A CR ended the last chunk: an LF starting the next one belongs to it.
        self._after_cr = False
        # Nothing has been read yet: a byte order mark there is skipped.
        self._at_start = True
        self._event = ""
        self._data: List[str] = []
        self._id: Optional[str] = None

    def feed(self, chunk: bytes) -> List[Message]:
        """The events that ``chunk`` completes, in order."""
        if not chunk:
            # Nothing: in particular, a CR that ended the last chunk still waits for the
            # LF that may start the next one.
            return []
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = False
        self._buffer += chunk
        if self._at_start:
            if len(self._buffer) < len(_BOM) and _BOM.startswith(self._buffer):
                return []  # perhaps the start of a byte order mark: wait for more
            self._at_start = False
            if self._buffer.startswith(_BOM):
                self._buffer = self._buffer[len(_BOM) :]
        messages: List[Message] = []
        while True:
            line, found = self._next_line()
            if not found:
                break
            message = self._line(line)
            if message is not None:
                messages.append(message)
        return messages

    def _next_line(self) -> Tuple[bytes, bool]:
        """The next whole line in the buffer (without its ending), if there is one."""
        buffer = self._buffer
        cr = buffer.find(b"\r")
        lf = buffer.find(b"\n")
        if cr < 0 and lf < 0:
            return b"", False
        if cr >= 0 and (lf < 0 or cr < lf):
            line = buffer[:cr]
            if cr + 1 < len(buffer):
                rest = buffer[cr + 2 :] if buffer[cr + 1 : cr + 2] == b"\n" else buffer[cr + 1 :]
            else:
                # The CR is the buffer's last byte: a LF may follow in the next chunk.
                rest = b""
                self._after_cr = True
            self._buffer = rest
            return line, True
        self._buffer = buffer[lf + 1 :]
        return buffer[:lf], True

    def _line(self, raw: bytes) -> Optional[Message]:
        line = raw.decode("utf-8", "replace")
        if line == "":
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment: the service's keep-alive
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "event":
            self._event = value
        elif name == "data":
            self._data.append(value)
        elif name == "id":
            if "\0" not in value:
                self._id = value
        # `retry` and unknown fields are ignored: reconnection follows the retry policy.
        return None

    def _dispatch(self) -> Optional[Message]:
        event, data, event_id = self._event, self._data, self._id
        self._event, self._data, self._id = "", [], None
        if not data:
            return None
        return Message(event or "message", "\n".join(data), event_id)


def read_message(message: Message) -> Followed:
    """What one SSE event of a pool's stream tells: the next event, or that some were
    trimmed. Raises :class:`LeaseholdError` for an event whose data is not an event."""
    if message.event == "trimmed":
        return Trimmed()
    try:
        event = json.loads(message.data)
    except ValueError as e:
        raise LeaseholdError(
            f"event {message.id}: not JSON: {e}", status=200, code="unknown"
        ) from e
    if not isinstance(event, dict) or not isinstance(event.get("id", message.id), str):
        raise LeaseholdError(
            f"event {message.id}: not an event: {message.data[:200]}",
            status=200,
            code="unknown",
        )
    if "id" not in event and message.id is not None:
        event["id"] = message.id
    return cast(Event, event)


__all__ = ["Message", "Parser", "read_message"]
