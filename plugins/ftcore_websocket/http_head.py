"""The HTTP/1.1 head of the opening handshake: found incrementally, bounded, then parsed.

Only what a WebSocket upgrade needs: a start line and header fields, no body. Bytes after
the blank line belong to the frame stream and are handed back untouched.
"""

from __future__ import annotations

import re
from typing import List, Optional, Tuple, Union

from .errors import HandshakeError, LocalProtocolError, Misuse
from .events import Headers

MAX_HEAD_BYTES = 64 * 1024

_END = b"\r\n\r\n"
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def is_token(text: str) -> bool:
    """Whether `text` is an RFC 7230 token (header names, subprotocols, extension names)."""
    return _TOKEN.fullmatch(text) is not None


class HeadReader:
    """Collects bytes until the blank line that ends an HTTP head."""

    __slots__ = ("_buf", "_searched")

    def __init__(self) -> None:
        self._buf = bytearray()
        self._searched = 0  # where the next search for the blank line starts

    def feed(self, data: Union[bytes, memoryview]) -> None:
        self._buf += data

    def take_head(self) -> Optional[Tuple[bytes, bytes]]:
        """(head without the blank line, bytes after it), or None while incomplete."""
        end = self._buf.find(_END, self._searched)
        if end < 0:
            if len(self._buf) > MAX_HEAD_BYTES:
                raise HandshakeError("HTTP head larger than %d bytes" % MAX_HEAD_BYTES, 431)
            self._searched = max(0, len(self._buf) - 3)
            return None
        if end > MAX_HEAD_BYTES:
            raise HandshakeError("HTTP head larger than %d bytes" % MAX_HEAD_BYTES, 431)
        head, rest = bytes(self._buf[:end]), bytes(self._buf[end + 4 :])
        self._buf = bytearray()
        return head, rest


def parse_head(head: bytes) -> Tuple[str, Headers]:
    """(start line, header fields in order) of a head; malformed fields are refused."""
    text = head.decode("latin-1")
    lines = text.split("\r\n")
    breaks = len(lines) - 1
    if text.count("\n") != breaks or text.count("\r") != breaks or "\0" in text:
        # A CR or LF outside CRLF, or a NUL: RFC 9110 §5.5 says reject (h1.py does the same).
        raise HandshakeError("bare CR, LF or NUL in the HTTP head")
    fields = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not is_token(name):
            raise HandshakeError("malformed header line %r" % line[:100])
        fields.append((name, value.strip(" \t")))
    return lines[0], tuple(fields)


def header_values(headers: Headers, name: str) -> List[str]:
    """Every value of header `name` (case-insensitive), comma lists split and trimmed."""
    name = name.lower()
    return [
        item.strip()
        for key, value in headers
        if key.lower() == name
        for item in value.split(",")
        if item.strip()
    ]


def single_header(headers: Headers, name: str) -> Optional[str]:
    """The value of a header that may appear at most once; None when absent."""
    name = name.lower()
    values = [value for key, value in headers if key.lower() == name]
    if len(values) > 1:
        raise HandshakeError("header %s appears more than once" % name)
    return values[0] if values else None


def encode_head(start_line: str, headers: Headers) -> bytes:
    """Serialise a head; header text is sent as UTF-8 (ASCII in practice)."""
    lines = [start_line]
    lines.extend("%s: %s" % (name, value) for name, value in headers)
    lines.append("\r\n")
    return "\r\n".join(lines).encode("utf-8")


def check_header(name: str, value: str) -> Tuple[str, str]:
    """A caller-supplied header, refused when it could break the head (CR, LF, NUL)."""
    if not is_token(name) or any(ch in value for ch in "\r\n\0"):
        raise LocalProtocolError("invalid header %r" % (name,), Misuse.HEADER)
    return name, value
