"""The stream layer under test: a real loop on its own thread, a `Net` on it, a queueing
handler, and loopback peers that misbehave on purpose (a listener whose backlog is full, so
a connect to it never completes, offline)."""

from __future__ import annotations

import contextlib
import os
import queue
import socket
import threading
from typing import Any, Callable, Iterator, List, Optional, Tuple

import pytest

from ftcore._net import Connected, Net, Stream
from ftcore.loop import EventLoop
from tests.support.events import EventQueue
from tests.support.waits import WAIT, flush


class LoopThread:
    """An `EventLoop` running on a thread; `call(fn, ...)` runs fn there and returns its result."""

    def __init__(self) -> None:
        self.loop = EventLoop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="ftcore-loop-test")
        self.thread.start()

    def call(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        box: "queue.Queue[Tuple[bool, Any]]" = queue.Queue()

        def run() -> None:
            try:
                box.put((True, fn(*args, **kwargs)))
            except BaseException as error:  # noqa: BLE001 - re-raised on the test thread
                box.put((False, error))

        self.loop.call_soon_threadsafe(run)
        ok, value = box.get(timeout=WAIT)
        if not ok:
            raise value
        return value

    def flush(self) -> None:
        flush(self.loop)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(WAIT)


class StreamEvents(EventQueue):
    """A `StreamHandler` (and a dial's `done`) that queues what it is told, in order; data and
    watermark events are passed over by `expect` unless asked for, and data stays out of `log`."""

    def __init__(self) -> None:
        super().__init__(skip=("data", "pause", "resume"))
        self.on_data: Optional[Callable[[memoryview], None]] = None

    def done(self, result: Any) -> None:
        self.put("done", result)

    def data_received(self, data: memoryview) -> None:
        self.received += data
        if self.on_data is not None:
            self.on_data(data)
        self.put("data", len(data), logged=False)

    def eof_received(self) -> None:
        self.put("eof")

    def connection_lost(self, error: BaseException) -> None:
        self.put("lost", error)

    def pause_writing(self) -> None:
        self.put("pause")

    def resume_writing(self) -> None:
        self.put("resume")

    def closed(self) -> None:
        self.put("closed")


def dial(loop_thread: LoopThread, net: Net, host: str, port: int, **options: Any) -> StreamEvents:
    rec = StreamEvents()
    called_inside: List[bool] = []

    def start() -> None:
        net.dial(host, port, rec.done, **options)
        called_inside.append(bool(rec.log))

    loop_thread.call(start)
    assert called_inside == [False], "done ran inside dial()"
    return rec


def connected(rec: StreamEvents) -> Connected:
    result = rec.expect("done")
    assert isinstance(result, Connected), result
    return result


Pair = Tuple[Stream, socket.socket, StreamEvents]


@pytest.fixture
def make_pair(loop_thread: LoopThread, net: Net) -> Iterator[Callable[..., Pair]]:
    """`make_pair(**stream_options)`: a plain stream on the loop and its blocking peer."""
    made: List[Pair] = []

    def make(**options: Any) -> Pair:
        with listener() as server:
            rec = dial(loop_thread, net, "127.0.0.1", server.getsockname()[1])
            result = connected(rec)
            peer, _ = server.accept()
        rec.log.clear()
        peer.settimeout(WAIT)
        stream = loop_thread.call(net.stream, result.sock, rec, **options)
        made.append((stream, peer, rec))
        return stream, peer, rec

    yield make
    for stream, peer, _ in made:
        loop_thread.call(stream.abort)
        peer.close()


@pytest.fixture
def loop_thread() -> Iterator[LoopThread]:
    runner = LoopThread()
    try:
        yield runner
    finally:
        runner.stop()
        runner.loop.close()


def pattern(size: int, seed: int = 0) -> bytes:
    block = bytes((seed + i) % 251 for i in range(251))
    return (block * (size // 251 + 1))[:size]


@pytest.fixture
def data_file(tmp_path: Any) -> Iterator[Tuple[int, bytes]]:
    """An open descriptor of a 16 MiB file, and its content."""
    content = pattern(16 * 2**20 + 5, seed=11)
    path = tmp_path / "data.bin"
    path.write_bytes(content)
    fd = os.open(str(path), os.O_RDONLY)
    try:
        yield fd, content
    finally:
        os.close(fd)


@pytest.fixture
def remote_peers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Loopback peers stand in for peers on another machine, which get the sendfile route: a
    stream to a peer on this machine copies instead (`ftcore._net.stream._local_peer`)."""
    from ftcore._net import stream

    monkeypatch.setattr(stream, "_local_peer", lambda sock: False)


@pytest.fixture
def net(loop_thread: LoopThread) -> Iterator[Net]:
    layer = Net(loop_thread.loop)
    yield layer
    loop_thread.call(_close_live, layer)
    layer.close()


def _close_live(layer: Net) -> None:
    for dial in list(layer._dials):
        dial.cancel()
    for stream in list(layer._streams):
        stream.abort()


@contextlib.contextmanager
def blackhole(host: str = "127.0.0.1") -> Iterator[int]:
    """A listening port whose accept queue is full: a new connect to it never completes
    (the kernel drops its SYNs), with no network and no firewall rule."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    fillers: List[socket.socket] = []
    try:
        listener.bind((host, 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(2):  # one fills the queue; the other's SYNs are already dropped
            filler = socket.socket(family, socket.SOCK_STREAM)
            filler.setblocking(False)
            filler.connect_ex((host, port))
            fillers.append(filler)
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def listener(host: str = "127.0.0.1") -> socket.socket:
    """A listening socket (the test accepts, or not)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen(16)
    return sock


def refused_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])
