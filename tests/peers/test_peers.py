"""Tests of the peers themselves, driven by independent clients (urllib3,
websockets' sync client, raw sockets), so a failure in ftcore's tests can be
blamed on ftcore and not on its test servers."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import select
import socket
import ssl
import threading
from typing import Any, Iterator, List
from urllib.parse import quote, urlsplit

import pytest
import urllib3
from websockets.exceptions import ConnectionClosed, InvalidHandshake
from websockets.sync.client import ClientConnection, connect

from tests.peers import hostile
from tests.peers.http_app import GZIP_PLAIN, JSON_OBJECT, SET_COOKIES, pattern_bytes
from tests.peers.http_server import HTTPPeer
from tests.peers.lifecycle import open_fd_count, peer_threads
from tests.peers.tls import TLSMaterial
from tests.support.waits import wait_until
from tests.peers.udp import UDPPeer, ipv6_available
from tests.peers.ws import WSPeer, close_with, send_on_open

pytestmark = pytest.mark.timeout(30)

QUIET_S = 0.1  # how long "nothing arrives" is watched for; a negative check, not a sync


@pytest.fixture
def pool() -> Iterator[urllib3.PoolManager]:
    manager = urllib3.PoolManager(retries=False, timeout=5.0)
    yield manager
    manager.clear()


def raw_connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port or 80), timeout=5.0)


def raw_get(url: str, path: str = "/") -> socket.socket:
    sock = raw_connect(url)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: peer\r\n\r\n".encode())
    return sock


def recv_until_eof(sock: socket.socket) -> bytes:
    chunks: List[bytes] = []
    while True:
        piece = sock.recv(65536)
        if not piece:
            return b"".join(chunks)
        chunks.append(piece)


def recv_at_least(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        piece = sock.recv(65536)
        assert piece, f"EOF after {len(data)} of {size} bytes"
        data += piece
    return data


def stays_quiet(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], QUIET_S)
    return not readable


def ws_connect(url: str, **kwargs: Any) -> ClientConnection:
    kwargs.setdefault("open_timeout", 5)
    kwargs.setdefault("proxy", None)
    return connect(url, **kwargs)


# --- HTTP routes -----------------------------------------------------------------------


def test_echo_reports_the_request(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request(
        "PUT", http_server.url + "/echo?a=1&b=%20x", body=b"\xffbody", headers={"X-Thing": "v"}
    )
    echo = r.json()
    assert r.status == 200
    assert echo["method"] == "PUT"
    assert echo["path"] == "/echo"
    assert echo["query"] == "a=1&b=%20x"
    assert echo["headers"]["x-thing"] == "v"
    assert ["X-Thing", "v"] in echo["header_list"]
    assert echo["body"] == "\xffbody" and echo["body_len"] == 5


def test_echo_joins_repeated_headers(http_server: HTTPPeer) -> None:
    sock = raw_connect(http_server.url)
    with sock:
        sock.sendall(
            b"GET /echo HTTP/1.1\r\nHost: p\r\nX-R: 1\r\nX-R: 2\r\nConnection: close\r\n\r\n"
        )
        body = recv_until_eof(sock).split(b"\r\n\r\n", 1)[1]
    assert json.loads(body)["headers"]["x-r"] == "1, 2"


def test_keep_alive_reuses_one_connection(http_server_factory) -> None:
    server = http_server_factory()
    pool = urllib3.HTTPConnectionPool("127.0.0.1", server.port, maxsize=1)
    with pool:
        for _ in range(3):
            assert pool.request("GET", "/json").status == 200
    assert {r.connection for r in server.requests} == {1}
    assert server.connections_accepted == 1
    assert server.wait_idle()


def test_close_query_closes_connection(http_server: HTTPPeer) -> None:
    with raw_get(http_server.url, "/echo?close=1") as sock:
        data = recv_until_eof(sock)
    assert b"Connection: close" in data


@pytest.mark.parametrize("code", [200, 201, 404, 418, 500, 503, 599])
def test_status_route(http_server: HTTPPeer, pool: urllib3.PoolManager, code: int) -> None:
    r = pool.request("GET", f"{http_server.url}/status/{code}")
    assert r.status == code and r.data == f"status {code}".encode()


@pytest.mark.parametrize("code", [204, 304])
def test_status_without_body(http_server: HTTPPeer, pool: urllib3.PoolManager, code: int) -> None:
    r = pool.request("GET", f"{http_server.url}/status/{code}")
    assert r.status == code and r.data == b"" and "Content-Length" not in r.headers


def test_head_has_length_but_no_body(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request("HEAD", http_server.url + "/bytes/1234")
    assert r.headers["Content-Length"] == "1234" and r.data == b""
    assert pool.request("GET", http_server.url + "/json").json() == JSON_OBJECT  # still in sync


def test_json_routes(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    assert pool.request("GET", http_server.url + "/json").json() == JSON_OBJECT
    raw = pool.request("GET", http_server.url + "/json-bom").data
    assert raw.startswith(b"\xef\xbb\xbf")
    assert json.loads(raw.decode("utf-8-sig")) == JSON_OBJECT
    r = pool.request("GET", http_server.url + "/not-json")
    assert r.data == b"hello{" and r.headers["Content-Type"] == "text/plain"


def test_text_in_requested_charset(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request("GET", http_server.url + "/text?charset=gbk&body=" + quote("中文"))
    assert r.headers["Content-Type"] == "text/plain; charset=gbk"
    assert r.data == "中文".encode("gbk")


def test_bytes_are_the_pattern(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request("GET", http_server.url + "/bytes/1000")
    assert r.data == pattern_bytes(1000) and r.headers["Content-Length"] == "1000"
    assert pattern_bytes(300, 250)[:6] == bytes([250, 251, 252, 253, 254, 255])


def test_chunked_body(http_server: HTTPPeer) -> None:
    with raw_get(http_server.url, "/chunked/1000?pieces=3&close=1") as sock:
        data = recv_until_eof(sock)
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
    sizes = [int(line, 16) for line in body.split(b"\r\n")[0::2][:4]]
    assert sizes == [333, 333, 334, 0]


def test_gzip(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request("GET", http_server.url + "/gzip", decode_content=False)
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(r.data) == GZIP_PLAIN


def test_cookies_and_custom_headers(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request("GET", http_server.url + "/cookies")
    assert r.headers.getlist("Set-Cookie") == list(SET_COOKIES)
    r = pool.request("GET", http_server.url + "/headers?X-Extra=yes")
    assert r.headers["X-Custom-Header"] == "ftcore-peer"
    assert r.headers["X-Extra"] == "yes"
    assert r.headers.getlist("X-Multi") == ["a", "b"]


def test_slow_body_arrives_whole(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request("GET", http_server.url + "/slow-body/500?delay_ms=5&pieces=3")
    assert r.data == pattern_bytes(500)


def test_gate_holds_requests_until_opened(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    results: List[int] = []

    def fetch() -> None:
        results.append(pool.request("GET", http_server.url + "/gate/g1").status)

    threads = [threading.Thread(target=fetch) for _ in range(3)]
    for t in threads:
        t.start()
    assert http_server.gates.wait_arrived("g1", 3)
    assert http_server.gates.waiting("g1") == 3 and results == []
    http_server.gates.open("g1")
    for t in threads:
        t.join(5)
    assert results == [200, 200, 200]


def test_unknown_route_and_bad_input(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    assert pool.request("GET", http_server.url + "/nope").status == 404
    assert pool.request("GET", http_server.url + "/status/42").status == 400
    assert pool.request("GET", http_server.url + "/redirect/200").status == 400


# --- redirects -------------------------------------------------------------------------


def test_redirect_manual(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    to = quote("/json?x=1", safe="")
    r = pool.request("GET", f"{http_server.url}/redirect/301?to={to}", redirect=False)
    assert r.status == 301 and r.headers["Location"] == "/json?x=1"


@pytest.mark.parametrize("code, method, body", [(307, "POST", "payload"), (303, "GET", "")])
def test_redirect_target_shows_what_arrived(
    http_server: HTTPPeer, pool: urllib3.PoolManager, code: int, method: str, body: str
) -> None:
    r = pool.request(
        "POST",
        f"{http_server.url}/redirect/{code}?to=%2Fecho",
        body=b"payload",
        redirect=True,
        retries=urllib3.Retry(redirect=2),
    )
    echo = r.json()
    assert (echo["method"], echo["body"]) == (method, body)


def test_redirect_chain_hops(http_server_factory) -> None:
    server = http_server_factory()
    with urllib3.PoolManager(retries=urllib3.Retry(redirect=3)) as pool:
        r = pool.request("GET", server.url + "/redirect-chain/3")
    assert r.json()["path"] == "/echo"
    assert [req.path for req in server.requests] == [
        "/redirect-chain/3",
        "/redirect-chain/2",
        "/redirect-chain/1",
        "/echo",
    ]


def test_redirect_chain_absolute_and_code(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    url = http_server.url + "/redirect-chain/2?code=308&absolute=1"
    r = pool.request("GET", url, redirect=False)
    assert r.status == 308
    assert r.headers["Location"] == f"{http_server.url}/redirect-chain/1?code=308&absolute=1"


def test_redirect_loop_never_ends(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    r = pool.request("GET", http_server.url + "/redirect-loop?code=307", redirect=False)
    assert r.status == 307 and r.headers["Location"] == "/redirect-loop?code=307"
    with pytest.raises(urllib3.exceptions.MaxRetryError):
        pool.request("GET", http_server.url + "/redirect-loop", retries=urllib3.Retry(redirect=5))


# --- bodies sent to the server ---------------------------------------------------------


def test_upload_parses_multipart(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    content = pattern_bytes(70000)
    body, content_type = urllib3.encode_multipart_formdata(
        [
            ("user", "小明"),
            ("n", "1"),
            ("file", ("图片.bin", content, "application/octet-stream")),
        ]
    )
    headers = {"Content-Type": content_type}
    r = pool.request("POST", http_server.url + "/upload", body=body, headers=headers)
    result = r.json()
    assert result["fields"] == {"user": "小明", "n": "1"}
    assert result["order"] == ["user", "n", "file"]
    assert result["files"]["file"] == {
        "filename": "图片.bin",
        "content_type": "application/octet-stream",
        "size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
    }
    assert result["content_length"] == result["received"] == len(body)


def test_upload_refuses_non_multipart(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    headers = {"Content-Type": "text/plain"}
    r = pool.request("POST", http_server.url + "/upload", body=b"x", headers=headers)
    assert r.status == 400


def test_sink_hashes_a_chunked_request_body(
    http_server: HTTPPeer, pool: urllib3.PoolManager
) -> None:
    pieces = [pattern_bytes(50000, i) for i in range(5)]
    r = pool.request("POST", http_server.url + "/sink", body=iter(pieces), chunked=True)
    result = r.json()
    assert result["received"] == 250000 and result["content_length"] is None
    assert result["sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest()


def test_big_streams_the_pattern(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    size = 8 * 2**20 + 123
    r = pool.request("GET", f"{http_server.url}/big/{size}", preload_content=False)
    digest, total = hashlib.sha256(), 0
    for piece in r.stream(2**20):
        digest.update(piece)
        total += len(piece)
    r.release_conn()
    assert total == size
    assert digest.hexdigest() == hashlib.sha256(pattern_bytes(size)).hexdigest()


def test_requests_are_recorded(http_server: HTTPPeer, pool: urllib3.PoolManager) -> None:
    headers = {"Referer": "http://x/"}
    pool.request("POST", http_server.url + "/echo?mark=rec1", body=b"abc", headers=headers)
    [record] = [r for r in http_server.requests_to("/echo") if r.query == "mark=rec1"]
    assert record.method == "POST" and record.header("referer") == "http://x/"
    assert record.body_len == 3 and record.client[0] == "127.0.0.1"


@pytest.mark.skipif(not ipv6_available(), reason="IPv6 loopback is not available")
def test_http_over_ipv6(http_server_factory) -> None:
    server = http_server_factory(host="::1")
    assert server.url.startswith("http://[::1]:")
    with urllib3.PoolManager() as pool:
        assert pool.request("GET", server.url + "/json").json() == JSON_OBJECT


# --- TLS -------------------------------------------------------------------------------


def test_https_verifies_with_cafile(https_server: HTTPPeer) -> None:
    with urllib3.PoolManager(ca_certs=https_server.cafile, timeout=5.0) as pool:
        r = pool.request("GET", https_server.url + "/echo")
    assert r.json()["scheme"] == "https"


def test_https_certificate_names_localhost(
    https_server: HTTPPeer, tls_material: TLSMaterial
) -> None:
    raw = socket.create_connection(("127.0.0.1", https_server.port), timeout=5.0)
    with tls_material.client_context().wrap_socket(raw, server_hostname="localhost") as sock:
        assert sock.selected_alpn_protocol() in (None, "http/1.1")
        assert sock.getpeercert() is not None


def test_untrusted_https_fails_verification(
    untrusted_https_server: HTTPPeer, https_server: HTTPPeer
) -> None:
    trusting_ca = urllib3.PoolManager(ca_certs=https_server.cafile, retries=False, timeout=5.0)
    with trusting_ca as pool, pytest.raises(urllib3.exceptions.SSLError):
        pool.request("GET", untrusted_https_server.url + "/echo")
    with urllib3.PoolManager(ca_certs=untrusted_https_server.cafile, timeout=5.0) as pool:
        assert pool.request("GET", untrusted_https_server.url + "/echo").status == 200


# --- hostile scripts -------------------------------------------------------------------


def test_never_answer_until_released(hostile_server) -> None:
    url = hostile_server(hostile.never_answer)
    with raw_get(url) as sock:
        assert stays_quiet(sock)
        url.server.release.set()
        assert recv_until_eof(sock) == b""


def test_hold_open_reads_nothing(hostile_server) -> None:
    url = hostile_server(hostile.hold_open)
    with raw_connect(url) as sock:
        assert url.server.wait_accepted(1)
        assert stays_quiet(sock)


def test_stall_mid_body(hostile_server) -> None:
    url = hostile_server(hostile.stall_mid_body)
    with raw_get(url) as sock:
        data = recv_at_least(sock, 1)
        while not data.endswith(pattern_bytes(100)):
            data += recv_at_least(sock, 1)
        assert b"Content-Length: 1000" in data
        assert stays_quiet(sock)


def test_reset_mid_body(hostile_server) -> None:
    url = hostile_server(hostile.reset_mid_body)
    with raw_get(url) as sock, pytest.raises(ConnectionResetError):
        recv_until_eof(sock)


def test_short_body_closes_cleanly(hostile_server) -> None:
    url = hostile_server(hostile.short_body)
    with raw_get(url) as sock:
        head, _, body = recv_until_eof(sock).partition(b"\r\n\r\n")
    assert b"Content-Length: 1000" in head and body == pattern_bytes(10)


def test_short_body_is_an_error_for_urllib3(hostile_server) -> None:
    url = hostile_server(hostile.short_body)
    pool = urllib3.PoolManager(retries=False)
    with pool, pytest.raises(urllib3.exceptions.ProtocolError):
        pool.request("GET", url + "/")


def test_huge_headers_never_end(hostile_server) -> None:
    url = hostile_server(hostile.huge_headers)
    with raw_get(url) as sock:
        data = recv_at_least(sock, 2**20)
    assert data.startswith(b"HTTP/1.1 200 OK\r\n") and b"\r\n\r\n" not in data


def test_close_without_response(hostile_server) -> None:
    url = hostile_server(hostile.close_without_response)
    with raw_get(url) as sock:
        assert recv_until_eof(sock) == b""


@pytest.mark.parametrize(
    "script, expected",
    [
        (hostile.garbage_status_line, b"HTPT/1.1 banana"),
        (hostile.bad_chunk_size, b"zz\r\n"),
        (hostile.redirect_to("http://127.0.0.1:1/x"), b"Location: http://127.0.0.1:1/x"),
        (hostile.respond(b"raw bytes"), b"raw bytes"),
    ],
)
def test_scripted_answers(hostile_server, script: hostile.Script, expected: bytes) -> None:
    url = hostile_server(script)
    with raw_get(url) as sock:
        assert expected in recv_until_eof(sock)


def test_hostile_counts_connections(hostile_server) -> None:
    url = hostile_server(hostile.close_without_response)
    for _ in range(3):
        with raw_get(url) as sock:
            recv_until_eof(sock)
    assert url.server.wait_accepted(3) and url.server.accepted == 3
    assert url.url == str(url) and type(url.url) is str


def test_ws_handshake_then_raw_frames(hostile_server) -> None:
    frames = hostile.ws_frame(0x1, b"hi") + hostile.ws_frame(0x2, b"\x00\x01")
    url = hostile_server(hostile.ws_handshake_then(frames, then="close"))
    with ws_connect(url.server.ws_url, compression=None) as ws:
        assert ws.recv(timeout=5) == "hi"
        assert ws.recv(timeout=5) == b"\x00\x01"
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is None  # FIN without a close frame


def test_ws_bad_accept_fails_the_handshake(hostile_server) -> None:
    url = hostile_server(hostile.ws_bad_accept)
    with pytest.raises(InvalidHandshake):
        ws_connect(url.server.ws_url)


def test_ws_frame_encodes_lengths() -> None:
    assert hostile.ws_frame(0x1, b"a" * 125)[:2] == b"\x81\x7d"
    assert hostile.ws_frame(0x2, b"a" * 126)[:4] == b"\x82\x7e\x00\x7e"
    assert hostile.ws_frame(0x2, b"a" * 70000, fin=False)[:2] == b"\x02\x7f"
    masked = hostile.ws_frame(0x1, b"abc", mask=True, rsv1=True)
    assert masked[:2] == b"\xc1\x83" and len(masked) == 2 + 4 + 3


# --- WebSocket -------------------------------------------------------------------------


def test_ws_echo_keeps_frame_types(ws_server) -> None:
    server = ws_server()
    with ws_connect(server.url) as ws:
        ws.send("text ✓")
        assert ws.recv(timeout=5) == "text ✓"
        ws.send(b"\x00\xff")
        assert ws.recv(timeout=5) == b"\x00\xff"
    assert server.messages.get(timeout=5) == "text ✓"
    assert server.closes.get(timeout=5).code == 1000


@pytest.mark.parametrize("compression", [True, False])
def test_ws_compression_switch(ws_server, compression: bool) -> None:
    server = ws_server(compression=compression)
    with ws_connect(server.url, compression="deflate") as ws:
        assert ws.response is not None
        negotiated = ws.response.headers.get("Sec-WebSocket-Extensions") or ""
        ws.send("x" * 1000)
        assert ws.recv(timeout=5) == "x" * 1000
    assert ("permessage-deflate" in negotiated) is compression
    assert "permessage-deflate" in server.handshakes[0].extensions[0]


def test_ws_subprotocol_and_headers_recorded(ws_server) -> None:
    server = ws_server(subprotocols=["chat", "superchat"])
    offered = ["v1", "superchat"]
    headers = {"X-Token": "t"}
    with ws_connect(
        server.url + "/path?q=1", subprotocols=offered, additional_headers=headers
    ) as ws:
        assert ws.subprotocol == "superchat"
    [handshake] = server.handshakes
    assert handshake.path == "/path?q=1"
    assert handshake.subprotocols == ["v1", "superchat"] and handshake.subprotocol == "superchat"
    assert handshake.header("x-token") == "t"


def test_ws_close_with_code(ws_server) -> None:
    server = ws_server(close_with(4000, "bye"))
    with ws_connect(server.url) as ws:
        ws.send("go")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    rcvd = info.value.rcvd
    assert rcvd is not None and (rcvd.code, rcvd.reason) == (4000, "bye")
    assert server.closes.get(timeout=5).code == 4000  # the client echoed the code back


def test_ws_records_client_close_code(ws_server) -> None:
    server = ws_server()
    with ws_connect(server.url) as ws:
        ws.close(4001, "done")
    closed = server.closes.get(timeout=5)
    assert (closed.code, closed.reason) == (4001, "done")


def test_ws_drop_tcp_sends_no_close_frame(ws_server) -> None:
    server = ws_server("drop_tcp")
    with ws_connect(server.url) as ws:
        ws.send("go")
        with pytest.raises(ConnectionClosed) as info:
            ws.recv(timeout=5)
    assert info.value.rcvd is None
    assert server.closes.get(timeout=5).code is None


def test_ws_send_on_open(ws_server) -> None:
    server = ws_server(send_on_open(["hello", b"\x01"]))
    with ws_connect(server.url) as ws:
        assert [ws.recv(timeout=5), ws.recv(timeout=5)] == ["hello", b"\x01"]
        ws.send("then echo")
        assert ws.recv(timeout=5) == "then echo"


def test_wss_with_trusted_ca(ws_server, tls_material: TLSMaterial) -> None:
    server = ws_server(tls=True)
    assert server.url.startswith("wss://") and server.cafile == tls_material.cafile
    with ws_connect(server.url, ssl=tls_material.client_context()) as ws:
        ws.send("secure")
        assert ws.recv(timeout=5) == "secure"


def test_wss_rejects_untrusted_client(ws_server) -> None:
    server = ws_server(tls=True)
    with pytest.raises(ssl.SSLError):
        ws_connect(server.url, ssl=ssl.create_default_context())


# --- UDP -------------------------------------------------------------------------------


def udp_client(peer: UDPPeer) -> socket.socket:
    family = socket.AF_INET6 if peer.family == "udp6" else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.settimeout(5.0)
    return sock


@pytest.mark.parametrize("family", ["udp4", "udp6"])
def test_udp_echo(udp_echo, family: str) -> None:
    peer = udp_echo(family)
    with udp_client(peer) as sock:
        for payload in (b"one", b"", pattern_bytes(65507 if family == "udp4" else 65000)):
            sock.sendto(payload, (peer.address, peer.port))
            data, sender = sock.recvfrom(65536)
            assert data == payload and sender[1] == peer.port
    assert peer.count == 3


def test_udp_sink_records_and_sends(udp_sink) -> None:
    peer = udp_sink("udp4")
    with udp_client(peer) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.sendto(b"ping", (peer.address, peer.port))
        data, sender = peer.received.get(timeout=5)
        assert data == b"ping" and sender == sock.getsockname()
        peer.send_to(b"pong", sender)
        assert sock.recvfrom(100) == (b"pong", (peer.address, peer.port))
    assert peer.datagrams == [(b"ping", sender)]


# --- leaks -----------------------------------------------------------------------------


def _open_clients(
    stack: contextlib.ExitStack,
    http: HTTPPeer,
    https: HTTPPeer,
    ssl_context: ssl.SSLContext,
    stall: hostile.HostileServer,
    ws: WSPeer,
) -> None:
    """Leave connections open on each peer, so closing the peer must cut them."""
    keep_alive = stack.enter_context(raw_connect(http.url))
    keep_alive.sendall(b"GET /json HTTP/1.1\r\nHost: p\r\n\r\n")
    recv_at_least(keep_alive, 1)
    stack.enter_context(raw_get(http.url, "/gate/leak-check"))
    assert http.gates.wait_arrived("leak-check", 1)
    tls = ssl_context.wrap_socket(raw_connect(https.url), server_hostname="127.0.0.1")
    stack.enter_context(tls)
    stack.enter_context(raw_get(stall.url))
    assert stall.wait_accepted(1)
    stack.enter_context(ws_connect(ws.url))


def test_closing_peers_releases_fds_and_threads(tls_material: TLSMaterial) -> None:
    fds_before = open_fd_count()
    threads_before = set(peer_threads())
    http = HTTPPeer()
    https = HTTPPeer(tls=tls_material.server_context())
    stall = hostile.HostileServer(hostile.stall_mid_body)
    ws = WSPeer(compression=True)
    udp = UDPPeer("udp4")
    with contextlib.ExitStack() as clients:
        _open_clients(clients, http, https, tls_material.client_context(), stall, ws)
        assert wait_until(lambda: http.live_connections == 2)  # the accept thread counts it
        for peer in (http, https, stall, ws, udp):
            peer.close()  # with the clients still connected
        peer.close()  # idempotent
    # a connection thread of a peer may still be unwinding from the close it was just told of
    assert wait_until(lambda: set(peer_threads()) == threads_before), peer_threads()
    assert wait_until(lambda: open_fd_count() == fds_before), (open_fd_count(), fds_before)


def test_wait_idle_follows_the_client(http_server_factory) -> None:
    server = http_server_factory()
    sock = raw_connect(server.url)
    sock.sendall(b"GET /json HTTP/1.1\r\nHost: p\r\n\r\n")
    recv_at_least(sock, 1)
    assert server.live_connections == 1
    sock.close()
    assert server.wait_idle()
