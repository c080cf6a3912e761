"""connectSocket / SocketTask against real peers (the `websockets` library and raw TCP scripts).

No mocks and no sleeps: every wait is on a condition set by a callback or a peer.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, Iterator

import pytest

import ftcore
from ftcore._api.socket import SocketTask
from tests.http.helpers import paused_loop
from tests.peers import hostile
from tests.peers.fixtures import non_peer_threads, open_fd_count
from tests.peers.ws import close_with, send_on_open
from tests.websocket.support import SOCKET_EVENTS, Recorder, refused_url

pytestmark = pytest.mark.timeout(30)

LOOP_THREAD = "ftcore-loop"


@pytest.fixture
def make_rt() -> Iterator[Any]:
    runtimes = []

    def make(**config: Any) -> ftcore.Runtime:
        runtime = ftcore.Runtime(config=config or None)
        runtimes.append(runtime)
        return runtime

    yield make
    for runtime in runtimes:
        runtime.close()


@pytest.fixture
def rt(make_rt: Any) -> ftcore.Runtime:
    return make_rt()


def open_socket(rt: ftcore.Runtime, url: str, rec: Recorder, **options: Any) -> SocketTask:
    task = rt.connectSocket(url=url, **rec.callbacks("connect."), **options)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_for(lambda r: r.count("Open") or r.count("Close") or r.count("connect.fail"))
    return task


# -- echo ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("deflate", [False, True])
@pytest.mark.parametrize("server_compression", [False, True])
def test_text_and_binary_echo(
    rt: Any, ws_server: Any, deflate: bool, server_compression: bool
) -> None:
    server = ws_server(compression=server_compression)
    rec = Recorder()
    task = open_socket(rt, server.url + "/echo?x=1", rec, perMessageDeflate=deflate)
    assert rec.of("connect.success") == [{"errMsg": "connectSocket:ok", "socketTaskId": task.id}]
    assert rec.names()[:3] == ["connect.success", "connect.complete", "Open"]
    task.send({"data": "héllo wörld", **rec.callbacks("send.")})
    task.send(data=b"\x00\x01\xff" * 10)
    task.send(data=bytearray(b"ba"))
    task.send(data=memoryview(b"mv"))
    rec.wait_name("Message", 4)
    assert [r["data"] for r in rec.of("Message")] == [
        "héllo wörld",
        b"\x00\x01\xff" * 10,
        b"ba",
        b"mv",
    ]
    assert rec.of("send.success") == [{"errMsg": "sendSocketMessage:ok"}]
    assert rec.of("send.complete") == [{"errMsg": "sendSocketMessage:ok"}]
    handshake = server.handshakes[0]
    assert handshake.path == "/echo?x=1"
    offered = " ".join(handshake.extensions)
    assert ("permessage-deflate" in offered) is deflate
    task.close(**rec.callbacks("close."))
    closed = rec.wait_name("Close")
    assert closed == {"code": 1000, "reason": ""}
    assert rec.of("close.success") == [{"errMsg": "closeSocket:ok"}]
    assert server.closes.get(timeout=5).code == 1000
    assert rec.count("Error") == 0
    assert set(rec.threads()) == {LOOP_THREAD}


@pytest.mark.parametrize("deflate", [False, True])
def test_three_mib_messages(rt: Any, ws_server: Any, deflate: bool) -> None:
    server = ws_server(compression=deflate)
    rec = Recorder()
    task = open_socket(rt, server.url, rec, perMessageDeflate=deflate)
    big_bytes = bytes(range(256)) * (3 * 2**20 // 256)
    big_text = ("0123456789abcdéf" * (3 * 2**20 // 17))[: 3 * 2**20 - 7]
    task.send(data=big_bytes)
    task.send(data=big_text)
    rec.wait_name("Message", 2, timeout=20)
    received = [r["data"] for r in rec.of("Message")]
    assert received[0] == big_bytes
    assert received[1] == big_text
    assert server.messages.get(timeout=5) == big_bytes


def test_subprotocol_chosen(rt: Any, ws_server: Any) -> None:
    server = ws_server(subprotocols=["chat.v2", "chat.v1"])
    rec = Recorder()
    task = open_socket(rt, server.url, rec, protocols=["chat.v1", "chat.v2"])
    task.send(data="sync")  # the echo proves the server's handler (which records) is running
    rec.wait_name("Message")
    opened = rec.of("Open")[0]
    assert opened["protocol"] in ("chat.v1", "chat.v2")
    assert opened["protocol"] == server.handshakes[0].subprotocol
    assert server.handshakes[0].subprotocols == ["chat.v1", "chat.v2"]
    assert isinstance(opened["header"], dict)
    assert any(k.lower() == "sec-websocket-accept" for k in opened["header"])


def test_no_subprotocol_is_empty_string(rt: Any, ws_server: Any) -> None:
    rec = Recorder()
    open_socket(rt, ws_server().url, rec)
    assert rec.of("Open")[0]["protocol"] == ""


def test_custom_headers_reach_the_server(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    open_socket(rt, server.url, rec, header={"X-Token": "abc", "Referer": "dropped"})
    handshake = server.handshakes[0]
    assert handshake.header("X-Token") == "abc"
    assert handshake.header("Referer") is None


def test_hostname_is_resolved(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    task = open_socket(rt, "ws://localhost:%d/" % server.port, rec, tcpNoDelay=True)
    task.send(data="via localhost")
    assert rec.wait_name("Message") == {"data": "via localhost"}


def test_messages_sent_on_open_are_not_missed(rt: Any, ws_server: Any) -> None:
    server = ws_server(send_on_open(["first", b"second"]))
    task = rt.connectSocket(url=server.url)
    rec = Recorder()
    task.onOpen(rec.listener("Open"))
    # attached later than the events may have arrived: the backlog replays them in order
    rec.wait_name("Open")
    task.onMessage(rec.listener("Message"))
    rec.wait_name("Message", 2)
    assert [r["data"] for r in rec.of("Message")] == ["first", b"second"]


# -- closing -------------------------------------------------------------------------------------


def test_server_initiated_close_with_code_and_reason(rt: Any, ws_server: Any) -> None:
    server = ws_server(close_with(4001, "server says bye"))
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.send(data="go")
    assert rec.wait_name("Close") == {"code": 4001, "reason": "server says bye"}
    assert task.readyState == SocketTask.CLOSED == 3
    assert rec.count("Error") == 0
    assert task.state is ftcore.State.SUCCEEDED


def test_client_close_code_and_reason_reach_server(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.close({"code": 3002, "reason": "done here ✓", **rec.callbacks("close.")})
    closed = rec.wait_name("Close")
    assert closed["code"] == 3002
    seen = server.closes.get(timeout=5)
    assert (seen.code, seen.reason) == (3002, "done here ✓")
    assert rec.of("close.success") == [{"errMsg": "closeSocket:ok"}]


@pytest.mark.parametrize(
    "options",
    [
        {"code": 999},
        {"code": 1001},
        {"code": 1006},
        {"code": 2999},
        {"code": 5000},
        {"code": True},
        {"code": "1000"},
        {"reason": "x" * 124},
        {"reason": "é" * 62},  # 124 UTF-8 bytes
        {"reason": 5},
    ],
)
def test_invalid_close_fails(rt: Any, ws_server: Any, options: Dict[str, Any]) -> None:
    server = ws_server()
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.close({**options, **rec.callbacks("close.")})
    rec.wait_name("close.complete")
    failed = rec.of("close.fail")[0]
    assert failed["errMsg"].startswith("closeSocket:fail ")
    assert failed["errno"] == ftcore.Errno.WS_INVALID_CLOSE
    assert task.readyState == SocketTask.OPEN  # still usable
    task.send(data="still open")
    rec.wait_name("Message")


def test_valid_close_limits(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.close(code=4999, reason="é" * 61 + "x")  # exactly 123 bytes
    assert rec.wait_name("Close")["code"] == 4999
    assert server.closes.get(timeout=5).reason == "é" * 61 + "x"


def test_server_drops_tcp_gives_1006_without_error(rt: Any, ws_server: Any) -> None:
    server = ws_server("drop_tcp")
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.send(data="bye")
    assert rec.wait_name("Close") == {"code": 1006, "reason": ""}
    assert rec.count("Error") == 0
    assert task.state is ftcore.State.FAILED


def test_close_twice_and_send_after_close_fail(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.close()
    rec.wait_name("Close")
    task.send({"data": "late", **rec.callbacks("send.")})
    task.close(rec.callbacks("close."))
    rec.wait_name("close.complete")
    rec.wait_name("send.complete")
    assert rec.of("send.fail") == [
        {"errMsg": "sendSocketMessage:fail WebSocket is not connected", "errno": 605104}
    ]
    assert rec.of("close.fail") == [
        {"errMsg": "closeSocket:fail WebSocket is not connected", "errno": 605104}
    ]
    assert rec.count("Close") == 1


def test_ready_state_transitions(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    states = []
    with paused_loop(rt):  # the loop cannot open it before the first read
        task = rt.connectSocket(url=server.url)
        states.append(("created", task.readyState))

    def on_open(res: Dict[str, Any]) -> None:
        states.append(("open", task.readyState))
        task.close()
        states.append(("after close()", task.readyState))

    task.onOpen(on_open)
    task.onClose(rec.listener("Close", lambda res: states.append(("close", task.readyState))))
    rec.wait_name("Close")
    assert states == [("created", 0), ("open", 1), ("after close()", 2), ("close", 3)]
    assert (task.CONNECTING, task.OPEN, task.CLOSING, task.CLOSED) == (0, 1, 2, 3)


def test_close_while_connecting_abandons_the_attempt(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(hostile.never_answer).replace("http://", "ws://")
    rec = Recorder()
    task = rt.connectSocket(url=url)
    rec.attach(task, SOCKET_EVENTS)
    task.close(rec.callbacks("close."))
    assert rec.wait_name("Close") == {"code": 1006, "reason": ""}
    rec.wait_name("close.complete")
    assert rec.of("close.success") == [{"errMsg": "closeSocket:ok"}]
    assert rec.count("Open") == 0 and rec.count("Error") == 0


# -- failures ------------------------------------------------------------------------------------


def test_send_before_open_fails(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(hostile.never_answer).replace("http://", "ws://")
    rec = Recorder()
    task = rt.connectSocket(url=url)
    task.send({"data": "too early", **rec.callbacks("send.")})
    rec.wait_name("send.complete")
    assert rec.of("send.fail") == [
        {"errMsg": "sendSocketMessage:fail WebSocket is not connected", "errno": 605104}
    ]


def test_send_bad_data_fails(rt: Any, ws_server: Any) -> None:
    rec = Recorder()
    task = open_socket(rt, ws_server().url, rec)
    task.send({"data": 12, **rec.callbacks("send.")})
    rec.wait_name("send.complete")
    assert rec.of("send.fail")[0]["errMsg"].startswith("sendSocketMessage:fail ")


def test_handshake_timeout(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(hostile.never_answer).replace("http://", "ws://")
    rec = Recorder()
    task = rt.connectSocket(url=url, timeout=200, **rec.callbacks("connect."))
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Close")
    assert rec.names() == ["connect.success", "connect.complete", "Error", "Close"]
    assert rec.of("Error")[0]["errMsg"] == "connectSocket:fail timeout"
    assert rec.of("Close")[0] == {"code": 1006, "reason": ""}
    assert task.state is ftcore.State.FAILED


def test_tls_handshake_timeout(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(hostile.hold_open).replace("http://", "wss://")
    rec = Recorder()
    task = rt.connectSocket(url=url, timeout=200)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Close")
    assert rec.of("Error")[0]["errMsg"] == "connectSocket:fail timeout"


def test_connection_refused(rt: Any) -> None:
    rec = Recorder()
    task = rt.connectSocket(url=refused_url(), **rec.callbacks("connect."))
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Close")
    assert rec.names() == ["connect.success", "connect.complete", "Error", "Close"]
    error = rec.of("Error")[0]
    assert error["errMsg"] == "connectSocket:fail connection refused"
    assert error["errno"] == ftcore.Errno.CONNECTION_REFUSED
    assert rec.of("Close")[0] == {"code": 1006, "reason": ""}


def test_handshake_rejected(rt: Any, hostile_server: Any) -> None:
    raw = hostile.response_head(404, "Not Found", [("Content-Length", "0")])
    url = hostile_server(hostile.respond(raw)).replace("http://", "ws://")
    rec = Recorder()
    task = rt.connectSocket(url=url)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Close")
    error = rec.of("Error")[0]
    assert error["errno"] == ftcore.Errno.WS_CONNECT_FAILED
    assert error["errMsg"].startswith("connectSocket:fail ")
    assert "404" in error["errMsg"]
    assert rec.of("Close")[0]["code"] == 1006


def test_bad_accept_key(rt: Any, hostile_server: Any) -> None:
    url = hostile_server(hostile.ws_bad_accept).replace("http://", "ws://")
    rec = Recorder()
    task = rt.connectSocket(url=url)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Close")
    assert rec.names() == ["Error", "Close"]


def test_protocol_error_closes_with_1002(rt: Any, hostile_server: Any) -> None:
    frames = hostile.ws_frame(0x1, b"ok") + hostile.ws_frame(0x3, b"reserved opcode")
    url = hostile_server(hostile.ws_handshake_then(frames)).replace("http://", "ws://")
    rec = Recorder()
    task = rt.connectSocket(url=url)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Close")
    assert rec.names() == ["Open", "Message", "Error", "Close"]
    assert rec.of("Close")[0]["code"] == 1002
    assert rec.of("Error")[0]["errMsg"].startswith("connectSocket:fail ")


def test_invalid_utf8_closes_with_1007(rt: Any, hostile_server: Any) -> None:
    frames = hostile.ws_frame(0x1, b"\xff\xfe")
    url = hostile_server(hostile.ws_handshake_then(frames)).replace("http://", "ws://")
    rec = Recorder()
    task = rt.connectSocket(url=url)
    rec.attach(task, SOCKET_EVENTS)
    assert rec.wait_name("Close")["code"] == 1007


def test_message_over_limit_closes_with_1009(make_rt: Any, ws_server: Any) -> None:
    rt = make_rt(limits={"wsMaxMessageBytes": 1000})
    server = ws_server(send_on_open(["x" * 1001]))
    rec = Recorder()
    task = rt.connectSocket(url=server.url)
    rec.attach(task, SOCKET_EVENTS)
    assert rec.wait_name("Close")["code"] == 1009
    assert rec.names() == ["Open", "Error", "Close"]
    assert rec.of("Error")[0]["errno"] == ftcore.Errno.RESPONSE_TOO_LARGE
    assert server.closes.get(timeout=5).code == 1009


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:1/",
        "ftp://127.0.0.1/",
        "ws://",
        "wss:///path",
        "not a url",
        "ws://h:99999/",
        None,
    ],
)
def test_bad_url_fails_without_connecting(rt: Any, url: Any) -> None:
    rec = Recorder()
    task = rt.connectSocket(url=url, **rec.callbacks("connect."))
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("connect.complete")
    assert rec.of("connect.fail") == [
        {"errMsg": "connectSocket:fail invalid url", "errno": 600009}
    ]
    assert task.readyState == SocketTask.CLOSED
    with pytest.raises(ftcore.FtError) as info:
        task.result(5)
    assert info.value.errno == 600009


@pytest.mark.parametrize(
    "header", [{"X-Evil": "a\r\nInjected: yes"}, {"X-Evil\n": "a"}, {"X-Nul": "a\0b"}]
)
def test_header_injection_fails_without_connecting(
    rt: Any, ws_server: Any, header: Dict[str, str]
) -> None:
    server = ws_server()
    rec = Recorder()
    rt.connectSocket(url=server.url, header=header, **rec.callbacks("connect."))
    rec.wait_name("connect.complete")
    failed = rec.of("connect.fail")[0]
    assert failed["errMsg"].startswith("connectSocket:fail ")
    assert failed["errno"] == ftcore.Errno.INVALID_HEADER
    _assert_no_connection_was_made(rt, server)


def test_handshake_owned_header_fails(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    rt.connectSocket(url=server.url, header={"Sec-WebSocket-Key": "x"}, **rec.callbacks("connect."))
    rec.wait_name("connect.complete")
    assert rec.of("connect.fail")[0]["errno"] == ftcore.Errno.INVALID_HEADER
    _assert_no_connection_was_made(rt, server)


def test_domain_list_refuses(make_rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rt = make_rt(domains={"socket": ["example.com"]})
    rec = Recorder()
    rt.connectSocket(url=server.url, **rec.callbacks("connect."))
    rec.wait_name("connect.complete")
    assert rec.of("connect.fail") == [
        {"errMsg": "connectSocket:fail url not in domain list", "errno": 600002}
    ]
    assert server.connections == 0
    allowed = make_rt(domains={"socket": ["ws://127.0.0.1:%d" % server.port]})
    _assert_no_connection_was_made(allowed, server)


def _assert_no_connection_was_made(rt: Any, server: Any) -> None:
    """Open one good socket to `server`: it must be the first connection the server saw."""
    rec = Recorder()
    open_socket(rt, server.url, rec)
    assert rec.count("Open") == 1
    assert server.connections == 1


def test_max_concurrent_sockets(make_rt: Any, ws_server: Any) -> None:
    rt = make_rt(maxConcurrent={"socket": 2})
    server = ws_server()
    recs = [Recorder() for _ in range(3)]
    first = open_socket(rt, server.url, recs[0])
    open_socket(rt, server.url, recs[1])
    third = rt.connectSocket(url=server.url, **recs[2].callbacks("connect."))
    recs[2].wait_name("connect.complete")
    assert recs[2].of("connect.fail") == [
        {"errMsg": "connectSocket:fail exceed max task count", "errno": 600007}
    ]
    assert third.readyState == SocketTask.CLOSED
    first.close()
    recs[0].wait_name("Close")
    again = Recorder()
    open_socket(rt, server.url, again)
    assert again.count("Open") == 1


def test_default_limit_is_five(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    for _ in range(5):
        open_socket(rt, server.url, Recorder())
    rec = Recorder()
    rt.connectSocket(url=server.url, **rec.callbacks("connect."))
    rec.wait_name("connect.complete")
    assert rec.of("connect.fail")[0]["errno"] == 600007


# -- TLS -----------------------------------------------------------------------------------------


def test_wss_with_trusted_ca(make_rt: Any, ws_server: Any) -> None:
    server = ws_server(tls=True)
    rt = make_rt(tls={"cafile": server.cafile})
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    assert rec.count("Open") == 1, rec.names()
    task.send(data="secure")
    task.send(data=b"s" * (2**20 + 5))
    rec.wait_name("Message", 2)
    assert rec.of("Message")[0] == {"data": "secure"}
    assert rec.of("Message")[1]["data"] == b"s" * (2**20 + 5)
    task.close(code=3003)
    assert rec.wait_name("Close")["code"] == 3003


def test_wss_by_hostname(make_rt: Any, ws_server: Any) -> None:
    server = ws_server(tls=True)
    rt = make_rt(tls={"cafile": server.cafile})
    rec = Recorder()
    open_socket(rt, "wss://localhost:%d/" % server.port, rec)
    assert rec.count("Open") == 1, rec.names()


def test_wss_untrusted_fails(rt: Any, ws_server: Any) -> None:
    server = ws_server(tls=True)
    rec = Recorder()
    task = rt.connectSocket(url=server.url)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Close")
    assert rec.names() == ["Error", "Close"]
    error = rec.of("Error")[0]
    assert error["errno"] == ftcore.Errno.TLS
    assert error["errMsg"].startswith("connectSocket:fail ssl error")
    assert rec.of("Close")[0]["code"] == 1006


def test_wss_without_verification(make_rt: Any, ws_server: Any) -> None:
    server = ws_server(tls=True)
    rt = make_rt(tls={"verify": False})
    rec = Recorder()
    open_socket(rt, server.url, rec)
    assert rec.count("Open") == 1


# -- the global API ------------------------------------------------------------------------------


def test_global_api(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    rt.onSocketOpen(rec.listener("gOpen", lambda res: rt.sendSocketMessage(data="global hi")))
    rt.onSocketMessage(
        rec.listener("gMessage", lambda res: rt.closeSocket({"code": 3100, "reason": "g"}))
    )
    rt.onSocketError(rec.listener("gError"))
    rt.onSocketClose(rec.listener("gClose"))
    task = rt.connectSocket(url=server.url)
    rec.wait_name("gClose")
    assert rec.names() == ["gOpen", "gMessage", "gClose"]
    assert rec.of("gMessage") == [{"data": "global hi"}]
    assert rec.of("gClose") == [{"code": 3100, "reason": "g"}]
    assert task.readyState == 3
    assert set(rec.threads()) == {LOOP_THREAD}


def test_global_listeners_attached_after_connect(rt: Any, ws_server: Any) -> None:
    server = ws_server(send_on_open(["pushed"]))
    rt.connectSocket(url=server.url)
    rec = Recorder()
    rt.onSocketOpen(rec.listener("gOpen"))
    rt.onSocketMessage(rec.listener("gMessage"))
    rec.wait_name("gMessage")
    assert rec.names() == ["gOpen", "gMessage"]


def test_task_listener_added_after_a_global_one_heard_open(rt: Any, ws_server: Any) -> None:
    """The global socket's Open reached `onSocketOpen` before the task had a listener: the
    task still hears it (the demo's SocketTask step, after its global step, depends on it)."""
    server = ws_server()
    glob, own = Recorder(), Recorder()
    rt.onSocketOpen(glob.listener("gOpen"))
    task = rt.connectSocket(url=server.url)
    glob.wait_name("gOpen")
    task.onOpen(own.listener("Open"))
    own.wait_name("Open")
    task.close({"code": 1000})
    task.onClose(own.listener("Close"))
    own.wait_name("Close")
    assert own.names() == ["Open", "Close"]


def test_global_api_acts_on_oldest_socket(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    older, newer = Recorder(), Recorder()
    first = open_socket(rt, server.url, older)
    second = open_socket(rt, server.url, newer)
    glob = Recorder()
    rt.onSocketMessage(glob.listener("gMessage"))
    rt.sendSocketMessage({"data": "to the oldest", **glob.callbacks("send.")})
    older.wait_name("Message")
    glob.wait_name("gMessage")
    assert glob.of("send.success") == [{"errMsg": "sendSocketMessage:ok"}]
    second.send(data="direct")
    newer.wait_name("Message")
    assert glob.of("gMessage") == [{"data": "to the oldest"}]  # the newer socket is not global
    rt.closeSocket()
    older.wait_name("Close")
    assert first.readyState == 3 and second.readyState == 1
    rt.sendSocketMessage(data="now to the second")
    newer.wait_name("Message", 2)
    glob.wait_name("gMessage", 2)


def test_global_api_without_socket_fails(rt: Any) -> None:
    rec = Recorder()
    rt.sendSocketMessage({"data": "x", **rec.callbacks("send.")})
    rt.closeSocket(rec.callbacks("close."))
    rec.wait_name("close.complete")
    rec.wait_name("send.complete")
    assert rec.of("send.fail") == [
        {"errMsg": "sendSocketMessage:fail WebSocket is not connected", "errno": 605104}
    ]
    assert rec.of("close.fail") == [
        {"errMsg": "closeSocket:fail WebSocket is not connected", "errno": 605104}
    ]
    assert set(rec.threads()) == {LOOP_THREAD}


def test_global_error_and_close_on_failed_connect(rt: Any) -> None:
    rec = Recorder()
    rt.onSocketError(rec.listener("gError"))
    rt.onSocketClose(rec.listener("gClose"))
    rt.connectSocket(url=refused_url())
    rec.wait_name("gClose")
    assert rec.names() == ["gError", "gClose"]


# -- threads, runtime close ----------------------------------------------------------------------


def test_callbacks_run_on_the_loop_thread(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    task = open_socket(rt, server.url, rec)

    def from_other_thread() -> None:
        task.send({"data": "x", **rec.callbacks("send.")})
        task.close(rec.callbacks("close."))

    worker = threading.Thread(target=from_other_thread)
    worker.start()
    worker.join()
    rec.wait_name("Close")
    rec.wait_name("close.complete")
    assert set(rec.threads()) == {LOOP_THREAD}


def test_send_from_listener_callbacks_are_deferred(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    rec = Recorder()
    order = []
    task = rt.connectSocket(url=server.url)

    def on_open(res: Dict[str, Any]) -> None:
        task.send({"data": "x", "complete": lambda r: order.append("complete")})
        order.append("after send")

    task.onOpen(on_open)
    task.onMessage(rec.listener("Message"))
    rec.wait_name("Message")
    assert order == ["after send", "complete"]


def test_runtime_close_fires_on_close_and_leaks_nothing(ws_server: Any) -> None:
    server = ws_server()
    fds_before = open_fd_count()
    threads_before = {t.ident for t in non_peer_threads()}
    rt = ftcore.Runtime()
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.send(data="x")
    rec.wait_name("Message")
    rt.close()
    assert rec.of("Close") == [{"code": 1001, "reason": ""}]  # fired before close() returned
    assert rec.threads()[-1] == LOOP_THREAD
    assert task.state is ftcore.State.ABORTED
    assert server.closes.get(timeout=5).code == 1001
    assert open_fd_count() == fds_before
    assert {t.ident for t in non_peer_threads()} == threads_before


def test_runtime_close_while_connecting(hostile_server: Any) -> None:
    hostile_url = hostile_server(hostile.never_answer)
    url = hostile_url.replace("http://", "ws://")
    fds_before = open_fd_count()
    rt = ftcore.Runtime()
    rec = Recorder()
    task = rt.connectSocket(url=url, **rec.callbacks("connect."))
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("connect.complete")
    assert hostile_url.server.wait_accepted(1)
    rt.close()
    assert rec.of("Close") == [{"code": 1006, "reason": ""}]
    assert open_fd_count() == fds_before + 1  # the hostile peer still holds its end


def test_runtime_close_after_lingering_sockets(ws_server: Any) -> None:
    server = ws_server(close_with(3000, "x"))
    fds_before = open_fd_count()
    rt = ftcore.Runtime()
    recs = []
    for _ in range(3):
        rec = Recorder()
        task = open_socket(rt, server.url, rec)
        task.send(data="close please")
        recs.append(rec)
    for rec in recs:
        rec.wait_name("Close")
    rt.close()
    assert open_fd_count() == fds_before


def test_result_and_await(rt: Any, ws_server: Any) -> None:
    import asyncio

    server = ws_server()
    task = rt.connectSocket(url=server.url)
    assert task.result(5)["errMsg"] == "connectSocket:ok"

    async def main() -> Dict[str, Any]:
        return await rt.connectSocket(url=server.url)

    assert asyncio.run(main())["socketTaskId"] > task.id


# -- review fixes ----------------------------------------------------------------------------------


def test_send_from_another_thread_copies_the_callers_dict_and_buffer(
    rt: Any, ws_server: Any
) -> None:
    server = ws_server()
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    options: Dict[str, Any] = {"data": None}
    for i in range(5):  # one dict, reused at once, as a caller in a loop would
        options["data"] = "m%d" % i
        task.send(options)
    buffer = bytearray(b"AAAA")
    task.send({"data": buffer})
    buffer[:] = b"BBBB"
    rec.wait_name("Message", 6)
    assert [r["data"] for r in rec.of("Message")] == ["m0", "m1", "m2", "m3", "m4", b"AAAA"]


def test_events_nobody_heard_do_not_reach_the_next_socket(rt: Any, ws_server: Any) -> None:
    server = ws_server()
    first = Recorder()
    task = rt.connectSocket(url=server.url)
    task.onOpen(first.listener("Open"))
    first.wait_name("Open")
    task.close({"code": 1000})  # its onClose has no listener anywhere: kept, then dropped
    assert _wait_until(lambda: task.readyState == SocketTask.CLOSED)
    second = Recorder()
    rt.onSocketOpen(lambda res: rt.sendSocketMessage(data="ping"))
    rt.onSocketClose(second.listener("gClose"))
    rt.onSocketMessage(second.listener("gMessage"))
    rt.connectSocket(url=server.url)
    second.wait_name("gMessage")
    assert second.count("gClose") == 0  # the first socket's close was not replayed


@pytest.mark.parametrize("code", [1012, 1013, 1014])
def test_server_restart_codes_are_reported_not_treated_as_errors(
    rt: Any, ws_server: Any, code: int
) -> None:
    server = ws_server(close_with(code, "restart"))
    rec = Recorder()
    task = open_socket(rt, server.url, rec)
    task.send({"data": "bye"})
    rec.wait_name("Close")
    assert rec.of("Close") == [{"code": code, "reason": "restart"}]
    assert rec.count("Error") == 0


def _wait_until(predicate: Any, timeout: float = 10.0) -> bool:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not predicate():
            if done.wait(0.01):
                return predicate()
        return True
    finally:
        deadline.cancel()


def test_an_address_that_never_answers_does_not_take_the_whole_timeout(
    rt: Any, ws_server: Any, monkeypatch: Any
) -> None:
    import socket

    server = ws_server()
    port = int(server.url.rsplit(":", 1)[1])
    # A listener whose accept queue is full drops new SYNs: a connect to it never completes.
    stalled = socket.socket()
    stalled.bind(("127.0.0.1", 0))
    stalled.listen(0)
    filler = socket.create_connection(stalled.getsockname(), timeout=5)  # fills the queue
    real = socket.getaddrinfo

    def dual_stack(host: str, *args: Any, **kwargs: Any) -> Any:
        if host != "dual.test":
            return real(host, *args, **kwargs)
        stream = socket.SOCK_STREAM
        return [
            (socket.AF_INET, stream, 6, "", stalled.getsockname()),
            (socket.AF_INET, stream, 6, "", ("127.0.0.1", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", dual_stack)  # the stream layer resolves with it
    try:
        rec = Recorder()
        open_socket(rt, "ws://dual.test:%d/" % port, rec, timeout=20000)
        assert rec.count("Open") == 1
    finally:
        filler.close()
        stalled.close()


def test_a_peer_that_pings_without_reading_is_dropped_not_buffered_forever(
    rt: Any, hostile_server: Any, monkeypatch: Any
) -> None:
    import ftcore_websocket.transport as transport

    monkeypatch.setattr(transport, "WRITE_BUFFER_LIMIT", 64 * 1024)  # reach it with few pings
    pings = hostile.ws_frame(0x9, b"p" * 125) * 100_000  # 12.7 MB; our pongs go unread
    url = hostile_server(hostile.ws_handshake_then(pings)).server.ws_url
    rec = Recorder()
    open_socket(rt, url, rec)
    rec.wait_name("Close")
    assert rec.of("Close") == [{"code": 1006, "reason": ""}]
    assert rec.count("Error") == 0
