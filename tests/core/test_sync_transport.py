"""A transport on the loop that answers inside `start()` (a cache, a canned reply).

Sink calls made inside `start()` wait for the next loop pass, in order: a gated body
(downloadFile) must follow its headers there rather than fail or wait for itself.
"""

from __future__ import annotations

import os
from typing import Any, List, Tuple

import pytest

import ftcore
from ftcore import hookimpl
from ftcore.transports import HttpRequest, HttpSink
from tests.support.waits import flush

pytestmark = pytest.mark.timeout(30)


class _Exchange:
    def abort(self) -> None:
        pass


class _CannedTransport:
    """Answers every request at once with `headers` and the body in `pieces`."""

    def __init__(self, headers: List[Tuple[str, str]], pieces: List[bytes]) -> None:
        self.headers = headers
        self.pieces = pieces

    def start(self, request: HttpRequest, sink: HttpSink) -> _Exchange:
        sink.headers(200, list(self.headers), {})
        buffer = bytearray(max(map(len, self.pieces), default=0))
        for piece in self.pieces:
            buffer[: len(piece)] = piece  # a reused buffer: the sink must copy what it keeps
            sink.body(memoryview(buffer)[: len(piece)])
        sink.end({})
        return _Exchange()

    def close(self) -> None:
        pass


def _runtime(tmp_path: Any, transport: _CannedTransport, **config: Any) -> ftcore.Runtime:
    class Plugin:
        @hookimpl
        def ftcore_http_transport_make(self, runtime: Any) -> Any:
            return transport

    return ftcore.Runtime(
        config=dict(config, sandbox=str(tmp_path / "sandbox")),
        plugins=[Plugin()],
        entrypoints=False,
    )


PIECES = [b"hello ", b"world"]


def test_download_answered_inside_start(tmp_path: Any) -> None:
    transport = _CannedTransport([("Content-Length", "11")], PIECES)
    with _runtime(tmp_path, transport) as rt:
        task = rt.downloadFile(url="http://cache.test/a.txt")
        progress: List[int] = []
        task.onProgressUpdate(lambda p: progress.append(p["progress"]))
        res = task.result(5)
        with open(res["tempFilePath"], "rb") as handle:
            assert handle.read() == b"hello world"
        flush(rt.loop)  # a listener attached after the task ended hears its events replayed
        assert progress[-1] == 100


def test_request_answered_inside_start(tmp_path: Any) -> None:
    transport = _CannedTransport([("Content-Type", "text/plain")], PIECES)
    with _runtime(tmp_path, transport) as rt:
        assert rt.request(url="http://cache.test/a").result(5)["data"] == "hello world"


def test_download_over_the_limit_inside_start_fails_and_leaves_nothing(tmp_path: Any) -> None:
    transport = _CannedTransport([], PIECES)  # no length: the cap is checked while writing
    with _runtime(tmp_path, transport, limits={"downloadMaxBytes": 8}) as rt:
        with pytest.raises(ftcore.FtError) as raised:
            rt.downloadFile(url="http://cache.test/a.txt").result(5)
        assert raised.value.errno == 603301
        assert os.listdir(rt.sandbox.temp) == []
