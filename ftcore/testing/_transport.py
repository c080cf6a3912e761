"""`MockTransport`: the plugin object that serves `mock.http`, `mock.ws` and `mock.tcp` to a
runtime."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional

from ..hookspecs import hookimpl
from ._http import HttpMock, MockRequest
from ._http import _Transport as _HttpTransport
from ._tcp import TcpMock
from ._tcp import _Transport as _TcpTransport
from ._ws import WsMock
from ._ws import _Transport as _WsTransport

if TYPE_CHECKING:
    from .._api.runtime import Runtime

__all__ = ["MockTransport"]


class MockTransport:
    """Scripted HTTP, WebSocket and TCP peers, plugged into runtimes as their transports::

        mock = MockTransport()
        mock.http.add("GET", "https://api.example.com/user", json={"name": "ft"})
        with mock.make_runtime() as rt:
            res = rt.request(url="https://api.example.com/user").result(timeout=5)
        assert res["data"] == {"name": "ft"} and mock.requests[0].method == "GET"

    Register it on any runtime with ``Runtime(plugins=[mock])``: its transport hooks are
    ``tryfirst``, so it replaces the builtin transports (and any installed one). One mock may
    serve several runtimes; each gets its own transport on its own loop. The core applies
    every API rule (encoding, redirects, timeouts, progress, domain lists) as it does over a
    real network. UDP is not mocked (use loopback sockets).

    TCP peers for `createTCPSocket`: ``mock.tcp.add("chat.example.com", 7000).send(b"hi")
    .expect(b"ping").send(b"pong").close()``.
    """

    def __init__(self) -> None:
        self.http = HttpMock()
        self.ws = WsMock()
        self.tcp = TcpMock()

    @property
    def requests(self) -> List[MockRequest]:
        """Every HTTP request seen, in order (each redirect hop is one request)."""
        return self.http.requests

    def make_runtime(
        self,
        config: Optional[Dict[str, Any]] = None,
        *,
        plugins: Iterable[Any] = (),
        entrypoints: bool = False,
        autostart: bool = True,
    ) -> "Runtime":
        """A new `ftcore.Runtime` served by this mock (close it, or use it in a ``with``).

        Entry-point plugins are not loaded unless `entrypoints` is true, so a test sees only
        the builtin policies, `plugins` and the mock.
        """
        from .._api.runtime import Runtime

        return Runtime(
            config=config, plugins=[self, *plugins], entrypoints=entrypoints, autostart=autostart
        )

    def reset(self) -> None:
        """Forget every route, request and connection."""
        self.http.reset()
        self.ws.reset()
        self.tcp.reset()

    def verify(self) -> None:
        """Raise `AssertionError` if a route was never used, a reply queue was not consumed,
        or a WebSocket or TCP script saw data it did not expect."""
        problems = []
        for route in self.http.routes:
            if not route.called:
                problems.append(
                    "HTTP route never called: %s %r" % (route.method or "*", route.matcher)
                )
            elif route._queue:
                problems.append(
                    "HTTP route %s %r has %d unused repl(ies)"
                    % (route.method or "*", route.matcher, len(route._queue))
                )
        for ws_route in self.ws.routes:
            if not ws_route.called:
                problems.append("WebSocket route never connected: %r" % ws_route.matcher)
        for tcp_route in self.tcp.routes:
            if not tcp_route.called:
                problems.append("TCP route never connected: %r" % tcp_route)
        for tcp_conn in self.tcp.connections:
            problems.extend(
                "TCP %s:%d: %s" % (tcp_conn.host, tcp_conn.port, m) for m in tcp_conn.mismatches
            )
        for conn in self.ws.connections:
            problems.extend("WebSocket %s: %s" % (conn.url, m) for m in conn.mismatches)
        if problems:
            raise AssertionError("ftcore.testing:\n  " + "\n  ".join(problems))

    # -- the transport hooks ----------------------------------------------------------------

    @hookimpl(tryfirst=True)
    def ftcore_http_transport_make(self, runtime: "Runtime") -> _HttpTransport:
        return _HttpTransport(self.http, runtime)

    @hookimpl(tryfirst=True)
    def ftcore_websocket_transport_make(self, runtime: "Runtime") -> _WsTransport:
        return _WsTransport(self.ws, runtime)

    @hookimpl(tryfirst=True)
    def ftcore_tcp_transport_make(self, runtime: "Runtime") -> _TcpTransport:
        return _TcpTransport(self.tcp, runtime)
