"""The RFC 6455 opening handshake, both sides: requests, responses and their validation.

Client: `build_request` then `check_response`. Server: `check_request` then `build_accept` or
`build_reject`. Validation failures raise `HandshakeError` (with the HTTP status a server
answers with); caller mistakes raise `LocalProtocolError`.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from http import HTTPStatus
from typing import Iterable, Optional, Sequence, Tuple

from . import deflate
from .errors import HandshakeError, LocalProtocolError, Misuse
from .events import Headers
from .http_head import check_header, encode_head, header_values, is_token, single_header

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
# Headers the handshake writes itself; a caller may not add them again.
_OWNED = frozenset(
    (
        "host",
        "upgrade",
        "connection",
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-protocol",
        "sec-websocket-extensions",
        "sec-websocket-accept",
    )
)


def new_key() -> str:
    """A fresh Sec-WebSocket-Key: 16 random bytes, base64."""
    return base64.b64encode(os.urandom(16)).decode("ascii")


def accept_value(key: str) -> str:
    """The Sec-WebSocket-Accept that proves the server read `key`."""
    digest = hashlib.sha1((key + _GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def _extra_headers(headers: Iterable[Tuple[str, str]]) -> Headers:
    checked = tuple(check_header(name, value) for name, value in headers)
    for name, _ in checked:
        if name.lower() in _OWNED:
            raise LocalProtocolError(
                "header %s is set by the handshake itself" % name, Misuse.HEADER
            )
    return checked


def _has_token(headers: Headers, name: str, token: str) -> bool:
    return token in (value.lower() for value in header_values(headers, name))


# -- client side ---------------------------------------------------------------------------


def build_request(
    host: str,
    target: str,
    key: str,
    headers: Iterable[Tuple[str, str]] = (),
    subprotocols: Sequence[str] = (),
    offer_deflate: bool = False,
) -> bytes:
    """The upgrade request a client sends."""
    if not target.startswith("/") or any(ch in target for ch in " \r\n\0"):
        raise LocalProtocolError("invalid request target %r" % (target,), Misuse.TARGET)
    fields = [
        check_header("Host", host),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ]
    if subprotocols:
        if not all(is_token(name) for name in subprotocols):
            raise LocalProtocolError(
                "invalid subprotocol in %r" % (list(subprotocols),), Misuse.SUBPROTOCOL
            )
        fields.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if offer_deflate:
        fields.append(("Sec-WebSocket-Extensions", deflate.CLIENT_OFFER))
    fields.extend(_extra_headers(headers))
    return encode_head("GET %s HTTP/1.1" % target, tuple(fields))


@dataclass(frozen=True)
class ClientOutcome:
    """What a valid 101 settled."""

    subprotocol: Optional[str]
    extensions: str
    deflate: Optional[deflate.DeflateParams]


def parse_status_line(line: str) -> int:
    """The status code of `HTTP/1.x NNN reason`."""
    version, _, rest = line.partition(" ")
    code = rest[:3]
    if (
        not version.startswith("HTTP/1.")
        or not (len(code) == 3 and code.isascii() and code.isdigit())  # "²".isdigit() too
        or rest[3:4] not in ("", " ")
    ):
        raise HandshakeError("malformed status line %r" % line[:100])
    return int(code)


def check_response(
    status_code: int,
    headers: Headers,
    key: str,
    subprotocols: Sequence[str],
    offered_deflate: bool,
) -> ClientOutcome:
    """Validate the server's answer to our request; anything but a correct 101 raises."""
    if status_code != 101:
        raise HandshakeError("server answered %d instead of 101" % status_code)
    if not _has_token(headers, "Upgrade", "websocket"):
        raise HandshakeError("missing 'Upgrade: websocket'")
    if not _has_token(headers, "Connection", "upgrade"):
        raise HandshakeError("missing 'Connection: upgrade'")
    if single_header(headers, "Sec-WebSocket-Accept") != accept_value(key):
        raise HandshakeError("wrong Sec-WebSocket-Accept")
    subprotocol = single_header(headers, "Sec-WebSocket-Protocol")
    if subprotocol is not None and subprotocol not in subprotocols:
        raise HandshakeError("server chose a subprotocol we did not offer: %r" % subprotocol)
    extensions = ", ".join(
        value for name, value in headers if name.lower() == "sec-websocket-extensions"
    )
    params = None
    if extensions:
        if not offered_deflate:
            raise HandshakeError("server chose extensions we did not offer: %r" % extensions)
        params = deflate.accept_response(extensions)
    return ClientOutcome(subprotocol, extensions, params)


# -- server side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ClientRequest:
    """What a valid upgrade request asked for."""

    target: str
    key: str
    subprotocols: Tuple[str, ...]
    extensions: str


def check_request(request_line: str, headers: Headers) -> ClientRequest:
    """Validate an upgrade request; a fault raises with the status to answer (400, 426)."""
    parts = request_line.split(" ")
    if len(parts) != 3 or not parts[2].startswith("HTTP/1."):
        raise HandshakeError("malformed request line %r" % request_line[:100])
    method, target, version = parts
    if method != "GET" or version == "HTTP/1.0":
        raise HandshakeError("a WebSocket upgrade is a GET over HTTP/1.1")
    if single_header(headers, "Host") is None:
        raise HandshakeError("missing Host header")
    if not _has_token(headers, "Upgrade", "websocket"):
        raise HandshakeError("missing 'Upgrade: websocket'")
    if not _has_token(headers, "Connection", "upgrade"):
        raise HandshakeError("missing 'Connection: upgrade'")
    if single_header(headers, "Sec-WebSocket-Version") != "13":
        raise HandshakeError("unsupported Sec-WebSocket-Version", 426)
    key = single_header(headers, "Sec-WebSocket-Key") or ""
    try:
        raw_key = base64.b64decode(key.encode("ascii"), validate=True)
    except (ValueError, UnicodeEncodeError):
        raw_key = b""
    if len(raw_key) != 16:
        raise HandshakeError("invalid Sec-WebSocket-Key")
    extensions = ", ".join(
        value for name, value in headers if name.lower() == "sec-websocket-extensions"
    )
    subprotocols = tuple(header_values(headers, "Sec-WebSocket-Protocol"))
    return ClientRequest(target, key, subprotocols, extensions)


def build_accept(
    key: str,
    subprotocol: Optional[str],
    extensions: str,
    headers: Iterable[Tuple[str, str]] = (),
) -> bytes:
    """The 101 answer, with the subprotocol and extensions the server settled on."""
    fields = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Accept", accept_value(key)),
    ]
    if subprotocol is not None:
        fields.append(("Sec-WebSocket-Protocol", subprotocol))
    if extensions:
        fields.append(("Sec-WebSocket-Extensions", extensions))
    fields.extend(_extra_headers(headers))
    return encode_head("HTTP/1.1 101 Switching Protocols", tuple(fields))


def build_reject(
    status_code: int, headers: Iterable[Tuple[str, str]] = (), body: bytes = b""
) -> bytes:
    """A refusal: any non-101 status, with a body of known length, then the connection ends."""
    if not 300 <= status_code <= 599:
        raise LocalProtocolError(
            "a rejection needs a 3xx-5xx status, not %r" % status_code, Misuse.STATUS
        )
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "Error"
    fields = [("Content-Length", str(len(body))), ("Connection", "close")]
    if status_code == 426:
        fields.append(("Sec-WebSocket-Version", "13"))
    fields.extend(check_header(name, value) for name, value in headers)
    return encode_head("HTTP/1.1 %d %s" % (status_code, phrase), tuple(fields)) + body
