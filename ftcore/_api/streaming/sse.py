"""Server-Sent Events, parsed exactly as the WHATWG EventSource rules say (HTML §9.2.6).

* The stream is UTF-8 whatever the Content-Type says; one leading BOM is dropped (even when
  its bytes come in separate chunks); invalid bytes become U+FFFD.
* Lines end at CR, LF or CRLF. A blank line dispatches the event; a line starting with ":"
  is a comment; otherwise the field name runs to the first ":" (the whole line when there is
  none, with an empty value) and one space after the colon is dropped from the value.
* `data` values are joined with LF; `event` sets the type (default "message"); `id` sets the
  last event ID unless it contains NUL, and that ID persists across events; `retry` of ASCII
  digits sets the reconnection time; any other field is ignored.
* A block with no `data` dispatches nothing (its `id` still counts), and a block the stream
  ends inside is dropped.

Events are API.md §10's dicts: ``{"event", "data", "id", "retry"}``, `retry` being the value a
`retry` field of that block set, else None. A line or an event's data longer than `max_size`
characters raises `StreamLimitError`.
"""

from __future__ import annotations

import codecs
from typing import Any, Dict, List, Optional

from .errors import StreamLimitError
from .lines import LineSplitter

__all__ = ["SseParser", "MAX_EVENT"]

MAX_EVENT = 16 * 2**20  # characters of one line or of one event's data

Event = Dict[str, Any]


class SseParser:
    """`feed(bytes) -> [event dicts]`; `last_event_id` and `retry` (ms, None until a server
    sets it) are what an EventSource reconnects with."""

    __slots__ = (
        "max_size",
        "last_event_id",
        "retry",
        "_decode",
        "_lines",
        "_data",
        "_data_size",
        "_type",
        "_id",
        "_block_retry",
    )

    def __init__(self, max_size: int = MAX_EVENT, last_event_id: str = "") -> None:
        """`last_event_id`: the ID a reconnecting EventSource carries over (as browsers do,
        so that events of the new stream without an `id` keep it)."""
        self.max_size = max_size
        self.last_event_id = last_event_id
        self.retry: Optional[int] = None
        self._decode = codecs.getincrementaldecoder("utf-8-sig")("replace").decode
        self._lines = LineSplitter(max_size)
        self._data: List[str] = []
        self._data_size = 0
        self._type = ""
        self._id = last_event_id  # the last event ID buffer; `last_event_id` takes it at dispatch
        self._block_retry: Optional[int] = None

    def feed(self, data: bytes) -> List[Event]:
        """The events that `data` completes, in order."""
        events: List[Event] = []
        for line in self._lines.feed(self._decode(data)):
            if not line:
                event = self._dispatch()
                if event is not None:
                    events.append(event)
            elif line[0] != ":":
                self._field(line)
        return events

    def close(self) -> None:
        """The end of the stream: an event not ended by a blank line is dropped (the last
        event ID and the reconnection time stay)."""
        self._lines.close()
        self._decode(b"", True)
        self._data = []
        self._data_size = 0
        self._type = ""
        self._block_retry = None

    def _field(self, line: str) -> None:
        name, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if name == "data":
            self._data_size += len(value) + 1
            if self._data_size > self.max_size:
                self._data = []
                self._data_size = 0
                raise StreamLimitError("event", self.max_size)
            self._data.append(value)
        elif name == "event":
            self._type = value
        elif name == "id":
            if "\0" not in value:
                self._id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                try:
                    self.retry = self._block_retry = int(value)
                except ValueError:  # more digits than int() takes (3.11+): no sane delay
                    pass

    def _dispatch(self) -> Optional[Event]:
        self.last_event_id = self._id
        data, retry = self._data, self._block_retry
        self._block_retry = None
        if not data:
            self._type = ""
            return None
        event = {
            "event": self._type or "message",
            "data": "\n".join(data),
            "id": self._id,
            "retry": retry,
        }
        self._data = []
        self._data_size = 0
        self._type = ""
        return event
