"""Offline testing for code that uses ftcore: a mock transport and a pytest plugin.

    from ftcore.testing import MockTransport, Reply

    mock = MockTransport()
    mock.http.add("GET", "https://api.example.com/user", json={"name": "ft"})
    mock.ws.add("wss://chat.example.com/").send("welcome").expect("ping").send("pong")
    mock.tcp.add("chat.example.com", 7000).send(b"hello").expect(b"ping").send(b"pong")
    rt = mock.make_runtime(config={"domains": {"request": ["api.example.com"]}})

The mock replaces only the transports (the bytes): ftcore's core still applies every rule of
the API (errMsg, errno, encoding, redirects, timeouts, progress, domain lists), so what passes
against the mock behaves the same against a real server. Delays run on the runtime's loop
timers, never a sleeping thread.

With pytest, the ``ft_mock`` fixture (this module is the plugin: entry point ``pytest11``, or
``-p ftcore.testing``) gives ``ft_mock.http``, ``ft_mock.ws``, ``ft_mock.tcp``,
``ft_mock.requests`` and ``ft_mock.runtime``, closed after the test; for the test's duration
the default ``ft`` routes to that runtime. Without pytest, ``with stand_in(mock.make_runtime()):``
does the same.
"""

from __future__ import annotations

from .._api.default import stand_in
from ._errors import ERROR_KINDS, transport_error
from ._http import HttpMock, HttpRoute, MockRequest, Reply
from ._match import UrlMatcher
from ._tcp import MockTcpConnection, TcpMock, TcpRoute
from ._transport import MockTransport
from ._ws import ANY, MockWebSocket, WsMock, WsRoute

__all__ = [
    "MockTransport",
    "Reply",
    "MockRequest",
    "HttpMock",
    "HttpRoute",
    "WsMock",
    "WsRoute",
    "MockWebSocket",
    "TcpMock",
    "TcpRoute",
    "MockTcpConnection",
    "ANY",
    "UrlMatcher",
    "ERROR_KINDS",
    "transport_error",
    "stand_in",
]

try:  # the pytest plugin, when pytest is there (the mock itself needs no pytest)
    import pytest as _pytest  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:
    from ._pytest import FtMock, ft_mock, ft_mock_config  # noqa: F401

    __all__ += ["FtMock"]
