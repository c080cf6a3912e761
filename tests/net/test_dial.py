"""Dialling against real loopback peers: literals and names, refusals, the address race,
per-attempt and whole-dial timeouts, TLS, and a cancel at every stage leaving nothing."""

from __future__ import annotations

import gc
import socket
import threading
import time
from typing import Any, List

import pytest

from ftcore._net import DialError, Net
from ftcore.transports import TlsSettings
from tests.net.support import (
    LoopThread,
    StreamEvents,
    blackhole,
    connected,
    dial,
    listener,
    refused_port,
)
from tests.peers.lifecycle import open_fd_count
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)


def failed(rec: StreamEvents, kind: str) -> DialError:
    result = rec.expect("done")
    assert isinstance(result, DialError) and result.kind == kind, result
    return result


def test_a_literal_connects_without_a_lookup(loop_thread: LoopThread, net: Net) -> None:
    with listener() as server:
        port = server.getsockname()[1]
        result = connected(dial(loop_thread, net, "127.0.0.1", port, nodelay=True))
        try:
            assert result.peer == ("127.0.0.1", port) and result.family == socket.AF_INET
            assert not result.sock.getblocking()
            assert result.sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            info = result.info
            assert 0 < info["connectStart"] <= info["connectEnd"]
            assert info["SSLconnectionStart"] == info["SSLconnectionEnd"] == 0
        finally:
            result.sock.close()
    assert net.resolver.pending() == 0


def test_a_name_is_resolved_off_the_loop(loop_thread: LoopThread) -> None:
    seen: List[str] = []

    def getaddrinfo(host: str, port: int, *args: Any) -> Any:
        seen.append(threading.current_thread().name)
        return socket.getaddrinfo("127.0.0.1", port, *args)

    net = Net(loop_thread.loop, getaddrinfo=getaddrinfo)
    with listener() as server:
        result = connected(dial(loop_thread, net, "peer.test", server.getsockname()[1]))
        result.sock.close()
    assert seen == ["ftcore-resolve"]
    net.close()


def test_refused_and_unresolved(loop_thread: LoopThread, net: Net) -> None:
    failed(dial(loop_thread, net, "127.0.0.1", refused_port()), "refused")

    def no_such_name(*args: Any) -> Any:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    net2 = Net(loop_thread.loop, getaddrinfo=no_such_name)
    error = failed(dial(loop_thread, net2, "nowhere.test", 80), "resolve")
    assert "nowhere.test" in error.reason
    net2.close()


def test_the_family_filters_addresses(loop_thread: LoopThread, net: Net) -> None:
    failed(dial(loop_thread, net, "::1", 80, family=socket.AF_INET), "resolve")
    with listener("0.0.0.0") as server:  # an IPv6 socket reaches IPv4 as v4-mapped
        try:
            probe = socket.socket(socket.AF_INET6)
            probe.close()
        except OSError:
            pytest.skip("no IPv6 sockets")
        port = server.getsockname()[1]
        result = connected(dial(loop_thread, net, "127.0.0.1", port, family=socket.AF_INET6))
        assert result.family == socket.AF_INET6 and result.peer[0] == "::ffff:127.0.0.1"
        result.sock.close()


def two_addresses(first_port: int, second_port: int) -> Any:
    """A resolver answering two IPv4 addresses (the same host, two ports)."""

    def getaddrinfo(host: str, port: int, *args: Any) -> Any:
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", first_port)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", second_port)),
        ]

    return getaddrinfo


def test_a_slow_address_is_raced_after_the_stagger(loop_thread: LoopThread) -> None:
    with blackhole() as silent, listener() as server:
        good = server.getsockname()[1]
        net = Net(loop_thread.loop, getaddrinfo=two_addresses(silent, good))
        start = time.monotonic()
        result = connected(dial(loop_thread, net, "race.test", 80, stagger=0.2))
        elapsed = time.monotonic() - start
        assert result.peer == ("127.0.0.1", good)
        assert 0.2 <= elapsed < 2.0, elapsed  # the stagger, not the attempt timeout
        result.sock.close()
        assert net.live()["dials"] == 0
        net.close()


def test_a_silent_address_is_given_up_after_its_attempt_timeout(loop_thread: LoopThread) -> None:
    with blackhole() as silent, listener() as server:
        good = server.getsockname()[1]
        net = Net(loop_thread.loop, getaddrinfo=two_addresses(silent, good))
        start = time.monotonic()
        rec = dial(loop_thread, net, "race.test", 80, stagger=30.0, attempt_timeout=0.3)
        result = connected(rec)
        assert 0.3 <= time.monotonic() - start < 5.0
        assert result.peer == ("127.0.0.1", good)
        result.sock.close()
        net.close()


def test_a_refused_address_moves_on_at_once(loop_thread: LoopThread) -> None:
    with listener() as server:
        good = server.getsockname()[1]
        net = Net(loop_thread.loop, getaddrinfo=two_addresses(refused_port(), good))
        start = time.monotonic()
        result = connected(dial(loop_thread, net, "race.test", 80, stagger=30.0))
        assert time.monotonic() - start < 5.0 and result.peer[1] == good
        result.sock.close()
        net.close()
    net = Net(loop_thread.loop, getaddrinfo=two_addresses(refused_port(), refused_port()))
    failed(dial(loop_thread, net, "race.test", 80), "refused")
    net.close()


def test_the_whole_dial_times_out(loop_thread: LoopThread, net: Net) -> None:
    with blackhole() as silent:
        start = time.monotonic()
        failed(dial(loop_thread, net, "127.0.0.1", silent, timeout=0.5), "timeout")
        assert 0.5 <= time.monotonic() - start < 0.5 + 2.0


def test_tls_verified_and_refused(
    loop_thread: LoopThread, net: Net, tls_material: Any, untrusted_tls_material: Any
) -> None:
    settings = TlsSettings(cafile=tls_material.cafile)
    for material, ok in ((tls_material, True), (untrusted_tls_material, False)):
        with TlsEcho(material) as server:
            rec = dial(loop_thread, net, "127.0.0.1", server.port, tls=settings)
            if ok:
                result = connected(rec)
                info = result.info
                assert info["connectEnd"] <= info["SSLconnectionStart"] <= info["SSLconnectionEnd"]
                assert result.sock.version().startswith("TLS")
                result.sock.close()
            else:
                error = failed(rec, "tls")
                assert "certificate" in error.reason
    assert net.tls.get(settings) is net.tls.get(TlsSettings(cafile=tls_material.cafile))


class TlsEcho:
    """A TLS server that completes handshakes (then reads until EOF)."""

    def __init__(self, material: Any) -> None:
        self.context = material.server_context(alpn=())
        self.sock = listener()
        self.port = self.sock.getsockname()[1]
        self.threads: List[threading.Thread] = []
        self.accept = threading.Thread(target=self._serve, name="ftpeer-tls", daemon=True)
        self.accept.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,), name="ftpeer-tls-c")
            thread.start()
            self.threads.append(thread)

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(WAIT)
        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                while tls.recv(65536):
                    pass
        except OSError:
            conn.close()

    def __enter__(self) -> "TlsEcho":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.accept.join(WAIT)
        for thread in self.threads:
            thread.join(WAIT)


def test_cancel_at_every_stage_leaves_nothing(loop_thread: LoopThread) -> None:
    release = threading.Event()

    def slow_lookup(*args: Any) -> Any:
        release.wait(WAIT)
        return socket.getaddrinfo("127.0.0.1", 80, *args[2:])

    gc.collect()
    fds = open_fd_count()
    threads = threading.active_count()
    net = Net(loop_thread.loop, getaddrinfo=slow_lookup)
    with blackhole() as silent, listener() as quiet:  # quiet: accepts, never speaks TLS
        cases = [
            ("lookup", "slow.test", 80, {}),
            ("attempts", "127.0.0.1", silent, {}),
            ("handshake", "127.0.0.1", quiet.getsockname()[1], {"tls": TlsSettings()}),
        ]
        for stage, host, port, options in cases:
            rec = StreamEvents()
            dial_ = loop_thread.call(net.dial, host, port, rec.done, **options)
            time.sleep(0.2)  # let it reach its stage
            loop_thread.call(dial_.cancel)
            loop_thread.flush()
            counts = loop_thread.loop.pending_counts()
            assert counts["readers"] == counts["writers"] == 0, (stage, counts)
            assert net.live()["dials"] == 0, stage
            assert rec.log == [], stage
        release.set()
        assert net.resolver.close(WAIT) == []
        loop_thread.flush()
        assert rec.log == []
        counts = loop_thread.loop.pending_counts()
        assert counts["timers"] == 0, counts
    assert open_fd_count() == fds
    assert threading.active_count() == threads
