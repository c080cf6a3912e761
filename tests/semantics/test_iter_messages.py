"""`iter_messages()` of SocketTask, UDPSocket and TCPSocket against real peers (the
`websockets` server, loopback UDP and TCP sockets), with the runtime's own loop thread
("thread") and host-driven ("host": the iterating thread runs the loop itself).

What they share: the same dicts as onMessage, in order; a clean end is StopIteration, an
error end raises the socket's FtError; `timeout` bounds each wait and leaves the iterator
usable; an iterator closed or dropped removes its listeners. Flow control is in
test_iter_messages_flow.py.
"""

from __future__ import annotations

import asyncio
import gc
import socket
import threading
import time
from typing import Any, Callable, Dict, Iterator, List

import pytest

import ftcore
from ftcore import FtError
from ftcore._api.streaming.channel import _EMPTY, Channel
from ftcore.errors import Errno
from tests.peers.ws import close_with, send_on_open
from tests.support.waits import WAIT, wait_until
from tests.tcp.support import echo, send_then
from tests.websocket.support import refused_url

pytestmark = pytest.mark.timeout(120)

Res = Dict[str, Any]


@pytest.fixture(params=["thread", "host"])
def rt(request: pytest.FixtureRequest, make_runtime: Callable[..., Any]) -> ftcore.Runtime:
    return make_runtime(autostart=request.param == "thread")  # type: ignore[no-any-return]


def until(rt: ftcore.Runtime, predicate: Callable[[], Any], timeout: float = WAIT) -> None:
    """Wait for `predicate`; on a host-driven runtime, run the loop meanwhile."""
    if rt._thread is not None:
        assert wait_until(predicate, timeout), "timed out"
        return
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        rt.loop.run_once(0.01)


def open_ws(rt: ftcore.Runtime, url: str) -> Any:
    return wait_open(rt, rt.connectSocket(url=url))


def wait_open(rt: ftcore.Runtime, ws: Any) -> Any:
    """`ws` (a connectSocket task) once open."""
    opened = threading.Event()
    ws.onOpen(lambda res: opened.set())
    until(rt, opened.is_set)
    return ws


def fail_of(iterator: Iterator[Res]) -> FtError:
    """The FtError the iterator ends with (after any messages)."""
    with pytest.raises(FtError) as info:
        for _ in iterator:
            pass
    return info.value


# -- WebSocket ----------------------------------------------------------------------------------


def test_ws_yields_the_listeners_dicts_in_order_then_ends_at_our_close(
    rt: ftcore.Runtime, ws_server: Any
) -> None:
    ws = open_ws(rt, ws_server().url)
    heard: List[Res] = []
    ws.onMessage(heard.append)
    messages = ws.iter_messages(timeout=WAIT)
    sent = ["text %d" % i if i % 2 else b"bytes %d" % i for i in range(50)]
    for data in sent:
        ws.send(data=data)
    got = [next(messages) for _ in sent]
    assert [res["data"] for res in got] == sent
    assert all(mine is theirs for mine, theirs in zip(got, heard))  # the very same dicts
    ws.close()
    assert list(messages) == []  # a closing handshake: a clean end
    assert ws.readyState == ws.CLOSED


def test_ws_messages_sent_at_open_reach_an_iterator_made_right_after_the_call(
    rt: ftcore.Runtime, ws_server: Any
) -> None:
    server = ws_server(send_on_open(["a", b"b", "c"]))
    ws = rt.connectSocket(url=server.url)
    messages = ws.iter_messages(timeout=WAIT)
    assert [next(messages)["data"] for _ in range(3)] == ["a", b"b", "c"]
    messages.close()
    ws.close()


@pytest.mark.parametrize("code", [1000, 1001, 4000])
def test_ws_a_peer_closing_with_a_normal_code_is_a_clean_end(
    rt: ftcore.Runtime, ws_server: Any, code: int
) -> None:
    ws = open_ws(rt, ws_server(close_with(code, "bye")).url)
    closes: List[Res] = []
    ws.onClose(closes.append)
    messages = ws.iter_messages(timeout=WAIT)
    ws.send(data="go")
    assert list(messages) == []
    assert closes == [{"code": code, "reason": "bye"}]


def test_ws_a_dropped_connection_raises(rt: ftcore.Runtime, ws_server: Any) -> None:
    ws = open_ws(rt, ws_server("drop_tcp").url)
    messages = ws.iter_messages(timeout=WAIT)
    ws.send(data="go")
    error = fail_of(messages)
    assert error.errno == Errno.CONNECTION_RESET
    assert error.errMsg.startswith("connectSocket:fail ")
    assert error.res is not None and error.res["code"] == 1006


def test_ws_a_refused_connection_raises_its_onerror(rt: ftcore.Runtime) -> None:
    ws = rt.connectSocket(url=refused_url())
    error = fail_of(ws.iter_messages(timeout=WAIT))
    assert error.errno == Errno.CONNECTION_REFUSED
    assert error.errMsg == "connectSocket:fail connection refused"


def test_ws_bad_options_raise_what_result_raises(rt: ftcore.Runtime) -> None:
    ws = rt.connectSocket(url="http://example.com/")
    error = fail_of(ws.iter_messages(timeout=WAIT))
    assert error.errno == Errno.INVALID_URL
    with pytest.raises(FtError) as info:
        ws.result(0)
    assert info.value is error


def test_ws_runtime_close_raises_abort(make_runtime: Callable[..., Any], ws_server: Any) -> None:
    rt = make_runtime()
    ws = open_ws(rt, ws_server().url)
    messages = ws.iter_messages(timeout=WAIT)
    threading.Timer(0.1, rt.close).start()  # while the consumer waits
    error = fail_of(messages)
    assert error.errno == Errno.ABORT and error.errMsg == "connectSocket:fail abort"


def test_an_iterator_made_after_the_runtime_closed_ends_at_once(
    make_runtime: Callable[..., Any], ws_server: Any
) -> None:
    rt = make_runtime()
    ws = open_ws(rt, ws_server().url)
    udp = rt.createUDPSocket()
    rt.close()
    assert fail_of(ws.iter_messages(timeout=WAIT)).errno == Errno.ABORT
    assert list(udp.iter_messages(timeout=WAIT)) == []


def test_ws_aiter_messages(make_runtime: Callable[..., Any], ws_server: Any) -> None:
    rt = make_runtime()
    ws = open_ws(rt, ws_server().url)

    async def main() -> List[Any]:
        got = []
        async with ws.aiter_messages() as messages:
            for i in range(3):
                ws.send(data="m%d" % i)
            async for res in messages:
                got.append(res["data"])
                if len(got) == 3:
                    ws.close()
        return got

    assert asyncio.run(asyncio.wait_for(main(), WAIT)) == ["m0", "m1", "m2"]


# -- all kinds: timeout, leaving ----------------------------------------------------------------


def test_ws_timeout_bounds_each_wait_and_the_iterator_goes_on(
    rt: ftcore.Runtime, ws_server: Any
) -> None:
    ws = open_ws(rt, ws_server().url)
    messages = ws.iter_messages(timeout=0.2)
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        next(messages)
    assert 0.2 <= time.monotonic() - started < WAIT
    ws.send(data="late")
    assert next(messages)["data"] == "late"
    ws.close()
    assert list(messages) == []


def test_udp_timeout(rt: ftcore.Runtime) -> None:
    sock = rt.createUDPSocket()
    sock.bind()
    messages = sock.iter_messages(timeout=0.1)
    with pytest.raises(TimeoutError):
        next(messages)
    sock.close()
    assert list(messages) == []


@pytest.mark.parametrize("leave", ["close", "with", "drop"])
def test_an_iterator_left_early_removes_its_listeners(
    rt: ftcore.Runtime, ws_server: Any, leave: str
) -> None:
    ws = open_ws(rt, ws_server().url)
    messages = ws.iter_messages(timeout=WAIT)
    ws.send(data="one")
    assert next(messages)["data"] == "one"
    if leave == "close":
        messages.close()
    elif leave == "with":
        with messages:
            pass
    else:
        del messages
        gc.collect()
    until(rt, lambda: not any(ws._listeners.has(name) for name in ("Message", "Error", "Close")))
    heard: List[Res] = []
    ws.onMessage(heard.append)  # the socket goes on
    ws.send(data="two")
    until(rt, lambda: heard)
    assert heard == [{"data": "two"}]
    ws.close()


def test_the_hand_off_loses_no_wake_up_and_never_leaves_the_gate_open(
    make_runtime: Callable[..., Any],
) -> None:
    """Puts race waits that time out (`Channel`'s gate protocol): every item arrives, in
    order, and a wait with nothing to come still lasts its whole timeout afterwards."""
    rt = make_runtime()
    channel = Channel(2**20, lambda channel: None, rt.loop)
    count = 5000

    def produce() -> None:
        for i in range(count):
            channel.put([i], 1)
            if i % 7 == 0:
                time.sleep(0.0002)

    producer = threading.Thread(target=produce)
    producer.start()
    got: List[int] = []
    done = 0
    while len(got) < count:
        batch, done = channel.take(done, 0.0001)  # timeouts race the puts
        if batch is not _EMPTY:
            got.extend(batch)
    producer.join(WAIT)
    assert got == list(range(count))
    started = time.monotonic()
    assert channel.take(done, 0.2)[0] is _EMPTY
    assert time.monotonic() - started >= 0.2


# -- UDP ----------------------------------------------------------------------------------------


def test_udp_yields_the_listeners_dicts_and_ends_at_close(
    rt: ftcore.Runtime, udp_echo: Any
) -> None:
    peer = udp_echo()
    sock = rt.createUDPSocket()
    heard: List[Res] = []
    sock.onMessage(heard.append)
    messages = sock.iter_messages(timeout=WAIT)
    port = sock.bind()
    for i in range(20):
        sock.send(address=peer.address, port=peer.port, message=b"d%d" % i)
    got = [next(messages) for _ in range(20)]
    assert [res["message"] for res in got] == [b"d%d" % i for i in range(20)]
    assert all(mine is theirs for mine, theirs in zip(got, heard))
    assert got[0]["localInfo"]["port"] == port and got[0]["remoteInfo"]["port"] == peer.port
    sock.close()
    assert list(messages) == []


def test_udp_close_from_another_thread_ends_a_waiting_consumer(rt: ftcore.Runtime) -> None:
    sock = rt.createUDPSocket()
    sock.bind()
    messages = sock.iter_messages(timeout=WAIT)
    closer = threading.Timer(0.1, sock.close)
    closer.start()
    started = time.monotonic()
    assert list(messages) == []
    assert time.monotonic() - started < WAIT
    closer.join(WAIT)


@pytest.mark.parametrize("autostart", [True, False], ids=["thread", "host"])
def test_udp_a_lagging_consumer_loses_the_oldest_datagrams_counted(
    make_runtime: Callable[..., Any], autostart: bool
) -> None:
    rt = make_runtime(config={"limits": {"streamBufferBytes": 4096}}, autostart=autostart)
    sock = rt.createUDPSocket()
    heard: List[Res] = []
    sock.onMessage(heard.append)
    messages = sock.iter_messages(timeout=0.2)
    port = sock.bind()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        for i in range(100):  # ~100 KiB of the kernel's receive buffer: none lost there
            sender.sendto(i.to_bytes(4, "big") + bytes(252), ("127.0.0.1", port))
    until(rt, lambda: len(heard) == 100)  # the loop has read them all; nobody iterated
    got = []
    with pytest.raises(TimeoutError):
        for res in messages:
            got.append(int.from_bytes(res["message"][:4], "big"))
    # each counts 256 + 512 bytes of the 4096: the newest five are kept, in order
    assert got == list(range(95, 100))
    assert messages.dropped == 95
    sock.close()


def test_udp_a_socket_that_could_not_be_made_raises(rt: ftcore.Runtime) -> None:
    sock = rt.createUDPSocket("udp5")
    error = fail_of(sock.iter_messages(timeout=WAIT))
    assert isinstance(error, FtError)


# -- TCP ----------------------------------------------------------------------------------------


def connect_tcp(rt: ftcore.Runtime, port: int, sock: Any = None) -> Any:
    """A TCP socket of `rt` (or `sock`, made already) connected to `port`."""
    sock = sock if sock is not None else rt.createTCPSocket()
    connected = threading.Event()
    sock.onConnect(lambda res: connected.set())
    sock.connect(address="127.0.0.1", port=port)
    until(rt, connected.is_set)
    return sock


def test_tcp_yields_the_listeners_dicts_and_ends_at_close(
    rt: ftcore.Runtime, hostile_server: Any
) -> None:
    url = hostile_server(echo)
    sock = connect_tcp(rt, url.server.port)
    heard: List[Res] = []
    sock.onMessage(heard.append)
    messages = sock.iter_messages(timeout=WAIT)
    got: List[Res] = []
    received = b""
    for i in range(10):
        sock.write(b"ping %d;" % i)
        while not received.endswith(b"ping %d;" % i):  # the kernel may merge the pieces
            got.append(next(messages))
            received += got[-1]["message"]
    assert received == b"".join(b"ping %d;" % i for i in range(10))
    assert all(mine is theirs for mine, theirs in zip(got, heard)) and len(heard) == len(got)
    sock.close()
    assert list(messages) == []


def test_tcp_the_peers_eof_is_a_clean_end(rt: ftcore.Runtime, hostile_server: Any) -> None:
    url = hostile_server(send_then(b"hello" * 1000, "eof"))
    sock = rt.createTCPSocket()
    messages = sock.iter_messages(timeout=WAIT)
    sock.connect(address="127.0.0.1", port=url.server.port)
    assert b"".join(res["message"] for res in messages) == b"hello" * 1000


def test_tcp_a_reset_raises_after_the_data(rt: ftcore.Runtime, hostile_server: Any) -> None:
    url = hostile_server(send_then(b"hello", "reset"))
    sock = rt.createTCPSocket()
    messages = sock.iter_messages(timeout=WAIT)
    sock.connect(address="127.0.0.1", port=url.server.port)
    received = bytearray()
    with pytest.raises(FtError) as info:
        for res in messages:
            received += res["message"]
    assert bytes(received) == b"hello"
    error = info.value
    assert error.errno == Errno.CONNECTION_RESET and error.errMsg.startswith("read:fail ")
    assert error.res is not None and error.res["errCode"] == -2


def test_tcp_a_refused_connect_raises(rt: ftcore.Runtime) -> None:
    port = int(refused_url().rsplit(":", 1)[1].strip("/"))
    sock = rt.createTCPSocket()
    messages = sock.iter_messages(timeout=WAIT)
    sock.connect(address="127.0.0.1", port=port)
    error = fail_of(messages)
    assert error.res is not None and error.res["errCode"] == -4
    assert error.errMsg.startswith("connect:fail ")
