"""The parsers' own error: a line or an event past its bound (memory never grows unbounded
because a peer never ends a line). The request layer turns it into an errno."""

from __future__ import annotations

__all__ = ["StreamLimitError"]


class StreamLimitError(ValueError):
    """A line or an event grew past the parser's limit (`limit`, in characters)."""

    def __init__(self, what: str, limit: int) -> None:
        self.what = what
        self.limit = limit
        super().__init__("%s longer than %d characters" % (what, limit))
