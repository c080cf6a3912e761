"""`transport`: one fixture, parametrised over the HTTP transports the semantic tests run on.

* ``urllib3``: the builtin transport against the real loopback peer (`http_server`);
* ``mock``: `ftcore.testing.MockTransport`, whose catch-all route answers with the same routes
  (`tests.peers.http_app`), the timed ones scripted as loop timers;
* ``http_client``: the worked example of the docs (`docs/examples/http_client_transport.py`)
  against the same peer.

A test asks the adapter for a URL (`transport.url("/json")`), a runtime
(`transport.runtime(config)`), and what the server saw (`transport.seen(marker)`).
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from typing import Any, Dict, Iterator, List, Optional
from urllib.parse import urlsplit

import pytest

import ftcore
from ftcore.testing import MockRequest, MockTransport, Reply
from tests.peers import http_app

EXAMPLE = os.path.join(
    os.path.dirname(__file__), "..", "..", "docs", "examples", "http_client_transport.py"
)


def load_example() -> Any:
    spec = importlib.util.spec_from_file_location("http_client_transport", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Adapter:
    """What a semantic test needs from a transport."""

    kind = ""

    def __init__(self, base: str, other_base: str) -> None:
        self.base = base  # e.g. "http://127.0.0.1:PORT"
        self.other_base = other_base  # another host answering the same routes
        self.host = urlsplit(base).hostname or ""
        self._runtimes: List[ftcore.Runtime] = []

    def url(self, path: str) -> str:
        return self.base + path

    def runtime(self, config: Optional[Dict[str, Any]] = None) -> ftcore.Runtime:
        runtime = ftcore.Runtime(config=config, plugins=self.plugins(), entrypoints=False)
        self._runtimes.append(runtime)
        return runtime

    def plugins(self) -> List[Any]:
        return []

    def seen(self, marker: str) -> int:
        """How many requests reached the server with `marker` in their target."""
        raise NotImplementedError

    def close(self) -> None:
        for runtime in self._runtimes:
            runtime.close()


class PeerAdapter(Adapter):
    def __init__(self, server: Any, plugins: List[Any]) -> None:
        port = urlsplit(server.url).port
        super().__init__(server.url, "http://localhost:%d" % port)
        self.server = server
        self._plugins = plugins

    def plugins(self) -> List[Any]:
        return list(self._plugins)

    def seen(self, marker: str) -> int:
        return sum(marker in r.target for r in list(self.server.requests))


class MockAdapter(Adapter):
    kind = "mock"

    def __init__(self) -> None:
        super().__init__("http://mock.test", "http://other.test")
        self.mock = MockTransport()
        for base in (self.base, self.other_base):
            self.mock.http.add("*", base + "/", bridge, prefix=True)

    def plugins(self) -> List[Any]:
        return [self.mock]

    def seen(self, marker: str) -> int:
        return sum(marker in r.url for r in list(self.mock.requests))


def bridge(request: MockRequest) -> Reply:
    """Answer like the loopback peer: run its route, and script its waits as loop timers."""
    parts = urlsplit(request.url)
    params = request.params
    delay = chunk_delay = 0.0
    match = re.fullmatch(r"/delay/(\d+)", parts.path)
    if match:
        delay = int(match.group(1)) / 1000
    elif parts.path.startswith("/chunked/"):
        chunk_delay = int(params.get("delay_ms", "0")) / 1000
    elif parts.path.startswith("/slow-body/"):
        delay = chunk_delay = int(params.get("delay_ms", "50")) / 1000
    release = threading.Event()
    release.set()  # the route's own waits return at once; the mock schedules them instead
    peer_request = http_app.Request(
        method=request.method,
        target=parts.path + ("?" + parts.query if parts.query else ""),
        path=parts.path,
        query=parts.query,
        headers=list(request.headers),
        scheme=parts.scheme,
        host=parts.netloc,
        reader=_Reader(request.body),
        release=release,
        gates=http_app.Gates(release),
    )
    response = http_app.dispatch(peer_request)
    if isinstance(response.body, (bytes, bytearray)):
        return Reply(response.status, response.headers, body=bytes(response.body), delay=delay)
    return Reply(
        response.status,
        response.headers,
        chunks=[bytes(p) for p in response.body],
        delay=delay,
        chunk_delay=chunk_delay,
        content_length=response.length is not None,
    )


class _Reader(http_app.BodyReader):
    def __init__(self, data: bytes) -> None:
        self._data = data
        self.received = 0

    def read(self, size: int) -> bytes:
        piece = self._data[self.received : self.received + size]
        self.received += len(piece)
        return piece


@pytest.fixture(params=["urllib3", "mock", "http_client"])
def transport(request: pytest.FixtureRequest) -> Iterator[Adapter]:
    if request.param == "mock":
        adapter: Adapter = MockAdapter()
    else:
        server = request.getfixturevalue("http_server")
        plugins = [load_example().HttpClientPlugin()] if request.param == "http_client" else []
        adapter = PeerAdapter(server, plugins)
    adapter.kind = request.param
    try:
        yield adapter
    finally:
        adapter.close()
