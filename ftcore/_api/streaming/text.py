"""Incremental text decoding: bytes in, text out, never splitting a character.

A character whose bytes straddle two chunks comes out whole with the chunk that completes it;
invalid bytes become U+FFFD (as a browser's `TextDecoder` does); `close()` turns bytes left
over at the end into U+FFFD.
"""

from __future__ import annotations

import codecs

__all__ = ["TextDecoder"]


class TextDecoder:
    """Decodes a byte stream with `encoding` (a codec name, e.g. the response charset)."""

    __slots__ = ("encoding", "_decode")

    def __init__(self, encoding: str = "utf-8") -> None:
        self.encoding = codecs.lookup(encoding).name
        self._decode = codecs.getincrementaldecoder(encoding)("replace").decode

    def decode(self, data: bytes) -> str:
        """The text completed by `data` (possibly empty: a character waits for its end)."""
        return self._decode(data)

    def close(self) -> str:
        """The end of the stream: what is left, with an unfinished character as U+FFFD."""
        return self._decode(b"", True)
