"""The opening handshake: requests, responses, and every way either can be wrong."""

from __future__ import annotations

import base64
import hashlib

import pytest

from ftcore.errors import Errno, FtError
from ftcore.transports import WsConnectRequest
from ftcore_websocket.connection import Connection, State
from ftcore_websocket.errors import LocalProtocolError, Misuse
from ftcore_websocket.events import (
    BinaryMessage,
    HandshakeAccepted,
    HandshakeRejected,
    HandshakeRequest,
    TextMessage,
)
from ftcore_websocket.frames import BINARY, FIN
from ftcore_websocket.handshake import accept_value
from ftcore_websocket.http_head import MAX_HEAD_BYTES
from ftcore_websocket.transport import LoopWsTransport

from .helpers import FEED_MODES, feed, open_pair, raw_frame


def _headers(request: bytes) -> dict:
    lines = request.decode().split("\r\n")[1:-2]
    return {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines)}


def test_accept_value_matches_rfc_example() -> None:
    assert accept_value("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_client_request() -> None:
    client = Connection("client")
    request = client.initiate(
        "example.com:8080",
        "/chat?x=1",
        headers=[("Origin", "http://o")],
        subprotocols=["chat", "superchat"],
        deflate=True,
    )
    assert request.startswith(b"GET /chat?x=1 HTTP/1.1\r\n") and request.endswith(b"\r\n\r\n")
    headers = _headers(request)
    assert headers["host"] == "example.com:8080"
    assert headers["upgrade"] == "websocket" and headers["connection"] == "Upgrade"
    assert len(base64.b64decode(headers["sec-websocket-key"])) == 16
    assert headers["sec-websocket-version"] == "13"
    assert headers["sec-websocket-protocol"] == "chat, superchat"
    assert headers["sec-websocket-extensions"] == "permessage-deflate; client_max_window_bits"
    assert headers["origin"] == "http://o"
    assert client.state is State.CONNECTING


def test_plain_request_has_no_extensions_or_subprotocols() -> None:
    headers = _headers(Connection("client").initiate("h", "/"))
    assert "sec-websocket-extensions" not in headers and "sec-websocket-protocol" not in headers


@pytest.mark.parametrize(
    "headers",
    [
        [("X-Bad", "a\r\nInjected: 1")],
        [("X-Bad", "nul\0")],
        [("Bad Name", "v")],
        [("Sec-WebSocket-Key", "mine")],
        [("Upgrade", "h2c")],
    ],
)
def test_bad_user_headers_are_refused(headers) -> None:
    with pytest.raises(LocalProtocolError) as info:
        Connection("client").initiate("h", "/", headers=headers)
    assert info.value.misuse is Misuse.HEADER


@pytest.mark.parametrize("subprotocols", [["a b"], ["a,b"], [""], ["ok\n"]])
def test_subprotocols_must_be_tokens(subprotocols) -> None:
    with pytest.raises(LocalProtocolError) as info:
        Connection("client").initiate("h", "/", subprotocols=subprotocols)
    assert info.value.misuse is Misuse.SUBPROTOCOL


@pytest.mark.parametrize("target", ["", "chat", "/a b", "/a\r\nX: 1", "/\0"])
def test_bad_targets_are_refused(target: str) -> None:
    with pytest.raises(LocalProtocolError) as info:
        Connection("client").initiate("h", target)
    assert info.value.misuse is Misuse.TARGET


def test_initiate_only_once_and_only_by_clients() -> None:
    client = Connection("client")
    client.initiate("h", "/")
    with pytest.raises(LocalProtocolError) as again:
        client.initiate("h", "/")
    with pytest.raises(LocalProtocolError) as by_server:
        Connection("server").initiate("h", "/")
    assert again.value.misuse is by_server.value.misuse is Misuse.STATE


@pytest.mark.parametrize("mode", FEED_MODES)
def test_handshake_with_frames_in_the_same_packets(mode: str) -> None:
    client = Connection("client")
    server = Connection("server")
    request = client.initiate("h", "/", subprotocols=["chat"])
    request_events = feed(server, request + raw_frame(FIN | BINARY, b"early", masked=True), mode)
    assert [type(e) for e in request_events] == [HandshakeRequest]
    assert request_events[0].subprotocols == ("chat",)
    response = server.accept("chat")
    assert list(server.events()) == [BinaryMessage(b"early")]
    events = feed(client, response + server.send_text("hello"), mode)
    assert [type(e) for e in events] == [HandshakeAccepted, TextMessage]
    assert events[0].subprotocol == "chat"


def test_frames_sent_before_accept_are_read_after_it() -> None:
    client = Connection("client")
    server = Connection("server")
    feed(server, client.initiate("h", "/"))
    # Not legal for a client, but a server must not lose or misread them.
    server.receive_data(raw_frame(FIN | BINARY, b"early", masked=True))
    assert list(server.events()) == []
    server.accept()
    assert list(server.events()) == [BinaryMessage(b"early")]


def test_server_reject() -> None:
    client = Connection("client")
    server = Connection("server")
    feed(server, client.initiate("h", "/"))
    response = server.reject(403, [("X-Why", "no")], b"forbidden")
    assert response.startswith(b"HTTP/1.1 403 Forbidden\r\n") and response.endswith(b"forbidden")
    assert server.state is State.CLOSED
    [event] = feed(client, response)
    assert isinstance(event, HandshakeRejected) and event.status_code == 403
    assert ("X-Why", "no") in event.headers
    assert client.state is State.CLOSED


def test_accept_checks_its_arguments() -> None:
    server = Connection("server")
    with pytest.raises(LocalProtocolError) as early:
        server.accept()  # no request yet
    assert early.value.misuse is Misuse.STATE
    feed(server, Connection("client").initiate("h", "/", subprotocols=["a"]))
    with pytest.raises(LocalProtocolError) as unoffered:
        server.accept(subprotocol="b")
    assert unoffered.value.misuse is Misuse.SUBPROTOCOL
    with pytest.raises(LocalProtocolError) as status:
        server.reject(101)
    assert status.value.misuse is Misuse.STATUS


# -- bad responses, seen by the client ------------------------------------------------------


def _response_for(request: bytes, status: str = "101 Switching Protocols", **changes) -> bytes:
    key = _headers(request)["sec-websocket-key"]
    fields = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Accept": accept_value(key),
    }
    fields.update(changes)
    lines = ["HTTP/1.1 " + status] + ["%s: %s" % kv for kv in fields.items() if kv[1] is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _client_sees(
    response_changes: dict, subprotocols=(), deflate=False, status="101 Switching Protocols"
):
    client = Connection("client")
    request = client.initiate("h", "/", subprotocols=subprotocols, deflate=deflate)
    events = feed(client, _response_for(request, status, **response_changes))
    return client, events


def test_valid_response_with_other_casing() -> None:
    client, events = _client_sees({"Upgrade": "WebSocket", "Connection": "keep-alive, UPGRADE"})
    assert isinstance(events[0], HandshakeAccepted) and client.state is State.OPEN


@pytest.mark.parametrize(
    "changes, kwargs, status",
    [
        (
            {"Sec-WebSocket-Accept": base64.b64encode(hashlib.sha1(b"x").digest()).decode()},
            {},
            None,
        ),
        ({"Sec-WebSocket-Accept": None}, {}, None),
        ({"Upgrade": None}, {}, None),
        ({"Upgrade": "h2c"}, {}, None),
        ({"Connection": None}, {}, None),
        ({}, {}, "200 OK"),
        ({}, {}, "302 Found"),
        ({"Sec-WebSocket-Protocol": "other"}, {"subprotocols": ["chat"]}, None),
        ({"Sec-WebSocket-Protocol": "chat"}, {}, None),
        ({"Sec-WebSocket-Extensions": "permessage-deflate"}, {}, None),
        ({"Sec-WebSocket-Extensions": "x-webkit-deflate-frame"}, {"deflate": True}, None),
        ({"Sec-WebSocket-Extensions": "permessage-deflate; foo=1"}, {"deflate": True}, None),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits=16"},
            {"deflate": True},
            None,
        ),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate; server_max_window_bits"},
            {"deflate": True},
            None,
        ),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"},
            {"deflate": True},
            None,
        ),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits=7"},
            {"deflate": True},
            None,
        ),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate; server_no_context_takeover=1"},
            {"deflate": True},
            None,
        ),
        (
            {
                "Sec-WebSocket-Extensions": "permessage-deflate; "
                "server_no_context_takeover; server_no_context_takeover"
            },
            {"deflate": True},
            None,
        ),
        (
            {"Sec-WebSocket-Extensions": "permessage-deflate, permessage-deflate"},
            {"deflate": True},
            None,
        ),
    ],
)
def test_bad_responses_are_rejected(changes, kwargs, status) -> None:
    client, events = _client_sees(changes, status=status or "101 Switching Protocols", **kwargs)
    [event] = events
    assert isinstance(event, HandshakeRejected), event
    assert event.status_code == int((status or "101")[:3])
    assert client.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        client.send_text("x")


@pytest.mark.parametrize(
    "head",
    [
        b"HTTP/1.1 abc\r\n\r\n",
        b"SIP/2.0 101 x\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nbad header line\r\n\r\n",
        b"HTTP/1.1 101 OK\r\n folded: x\r\n\r\n",
        # Found by tests/fuzz: "²" passed str.isdigit() and int() raised ValueError.
        b"HTTP/1.1 10\xb2 OK\r\n\r\n",
        b"HTTP/1.1 10\r\n\r\n",
        # A bare CR or LF, or a NUL, as h1 refuses them (RFC 9110 §5.5).
        b"HTTP/1.1 101 OK\r\nUpgrade: websocket\nX: 1\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nUpgrade: websocket\rX: 1\r\n\r\n",
        b"HTTP/1.1 101 OK\r\nUpgrade: web\x00socket\r\n\r\n",
    ],
)
def test_malformed_heads(head: bytes) -> None:
    client = Connection("client")
    client.initiate("h", "/")
    [event] = feed(client, head)
    assert isinstance(event, HandshakeRejected)


def test_head_too_large() -> None:
    client = Connection("client")
    client.initiate("h", "/")
    events = feed(client, b"HTTP/1.1 101 OK\r\nX: " + b"a" * MAX_HEAD_BYTES)
    assert len(events) == 1 and isinstance(events[0], HandshakeRejected)
    assert "larger" in events[0].reason
    server = Connection("server")
    [event] = feed(server, b"GET / HTTP/1.1\r\n" + b"X: y\r\n" * (MAX_HEAD_BYTES // 6))
    assert event.status_code == 431
    assert server.data_to_send().startswith(b"HTTP/1.1 431 ")


def test_eof_during_the_handshake() -> None:
    client = Connection("client")
    client.initiate("h", "/")
    assert feed(client, b"HTTP/1.1 101 Switching") == []
    assert feed(client, b"") == [
        HandshakeRejected(None, (), "connection closed during the handshake")
    ]
    assert client.state is State.CLOSED


# -- bad requests, seen by the server -------------------------------------------------------

GOOD_REQUEST = (
    "GET /chat HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


def test_good_raw_request() -> None:
    [event] = feed(Connection("server"), GOOD_REQUEST.encode())
    assert isinstance(event, HandshakeRequest) and event.target == "/chat"


@pytest.mark.parametrize(
    "old, new, status",
    [
        ("GET ", "POST ", 400),
        ("HTTP/1.1\r\nHost", "HTTP/1.0\r\nHost", 400),
        ("Host: h\r\n", "", 400),
        ("Upgrade: websocket\r\n", "", 400),
        ("Connection: Upgrade\r\n", "Connection: keep-alive\r\n", 400),
        ("dGhlIHNhbXBsZSBub25jZQ==", "c2hvcnQ=", 400),
        ("dGhlIHNhbXBsZSBub25jZQ==", "not base64!", 400),
        ("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8", 426),
        ("Sec-WebSocket-Version: 13\r\n", "", 426),
    ],
)
def test_bad_requests_get_an_error_response(old: str, new: str, status: int) -> None:
    server = Connection("server")
    [event] = feed(server, GOOD_REQUEST.replace(old, new).encode())
    assert isinstance(event, HandshakeRejected) and event.status_code == status
    response = server.data_to_send()
    assert response.startswith(b"HTTP/1.1 %d " % status)
    if status == 426:
        assert b"Sec-WebSocket-Version: 13\r\n" in response
    assert server.state is State.CLOSED


def test_server_accepts_first_usable_deflate_offer_only_when_asked() -> None:
    client, server = open_pair(deflate=True, server_deflate=False)
    assert server.extensions == ""
    client, server = open_pair(deflate=True)
    assert server.extensions == "permessage-deflate"


def test_eof_while_the_request_waits_for_an_answer() -> None:
    server = Connection("server")
    feed(server, GOOD_REQUEST.encode())
    [event] = feed(server, b"")
    assert event == HandshakeRejected(None, (), "connection closed during the handshake")
    assert server.data_to_send() == b""
    assert server.state is State.CLOSED
    with pytest.raises(LocalProtocolError):
        server.accept()


@pytest.mark.parametrize(
    "url, headers, protocols, errno",
    [
        ("ws://h/a b", [], [], Errno.INVALID_URL),
        ("ws://h/", [], ["a b"], Errno.INVALID_OPTION),
        ("ws://h/", [("Sec-WebSocket-Key", "x")], [], Errno.INVALID_HEADER),
        # The owned header's name says "protocol": the message once decided, now the type does.
        ("ws://h/", [("Sec-WebSocket-Protocol", "x")], [], Errno.INVALID_HEADER),
    ],
)
def test_the_transport_translates_refusals_by_their_misuse(url, headers, protocols, errno) -> None:
    request = WsConnectRequest(url=url, headers=headers, protocols=protocols)
    with pytest.raises(FtError) as info:
        LoopWsTransport(net=None).connect(request, events=None)  # refused before any I/O
    assert info.value.errno == errno
