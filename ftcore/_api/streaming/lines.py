"""Splitting a text stream into lines: CR, LF and CRLF end a line, as in the WHATWG
EventSource rules and NDJSON readers.

A CRLF may be cut between two chunks: the CR ends the line at once, and an LF opening the
next chunk is its pair, not an empty line. A line still open at the end of the stream comes
from `close()`. An open line is bounded: past `max_line` characters, `StreamLimitError`.
"""

from __future__ import annotations

from typing import List, Optional

from .errors import StreamLimitError

__all__ = ["LineSplitter", "MAX_LINE"]

MAX_LINE = 16 * 2**20  # characters; the same order as a WebSocket message's default limit


class LineSplitter:
    """`feed(text) -> [lines]`, lines without their terminators; `close() -> last line`."""

    __slots__ = ("max_line", "_open", "_open_size", "_after_cr")

    def __init__(self, max_line: int = MAX_LINE) -> None:
        self.max_line = max_line
        self._open: List[str] = []  # pieces of the line not ended yet
        self._open_size = 0
        self._after_cr = False  # the last character fed was a CR: a leading LF is its pair

    def feed(self, text: str) -> List[str]:
        if self._after_cr and text:
            self._after_cr = False
            if text[0] == "\n":
                text = text[1:]
        if not text:
            return []
        if "\r" in text:
            self._after_cr = text[-1] == "\r"
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        elif "\n" not in text:
            self._hold(text)
            return []
        big = len(text) + self._open_size > self.max_line  # only then can a line be too long
        lines = text.split("\n")
        if self._open:
            lines[0] = "".join(self._open) + lines[0]
            self._open = []
            self._open_size = 0
        last = lines.pop()
        if big and lines and max(map(len, lines)) > self.max_line:
            raise StreamLimitError("line", self.max_line)
        if last:
            self._hold(last)
        return lines

    def close(self) -> Optional[str]:
        """The end of the stream: the line left open (None if the stream ended a line)."""
        self._after_cr = False
        if not self._open:
            return None
        line = "".join(self._open)
        self._open = []
        self._open_size = 0
        return line

    def _hold(self, piece: str) -> None:
        self._open_size += len(piece)
        if self._open_size > self.max_line:
            self._open = []
            self._open_size = 0
            raise StreamLimitError("line", self.max_line)
        self._open.append(piece)
