"""Offline testing for code that uses ftcore: a mock transport and a pytest plugin.

    from ftcore.testing import MockTransport, Reply

    mock = MockTransport()
    mock.http.add("GET", "https://api.example.com/user", json={"name": "ft"})
    mock.ws.add("wss://chat.example.com/").send("welcome").expect("ping").send("pong")
    rt = mock.make_runtime(config={"domains": {"request": ["api.example.com"]}})

The mock replaces only the transports (the bytes): ftcore's core still applies every rule of
the API (errMsg, errno, encoding, redirects, timeouts, progress, domain lists), so what passes
against the mock behaves the same against a real server. Delays run on the runtime's loop
timers, never a sleeping thread.

With pytest, the ``ft_mock`` fixture (this module is the plugin: entry point ``pytest11``, or
``-p ftcore.testing``) gives ``ft_mock.http``, ``ft_mock.ws``, ``ft_mock.requests`` and
``ft_mock.runtime``, closed after the test.
"""

from __future__ import annotations

from ._http import ERROR_KINDS, HttpMock, HttpRoute, MockRequest, Reply, transport_error
from ._match import UrlMatcher
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
    "ANY",
    "UrlMatcher",
    "ERROR_KINDS",
    "transport_error",
]

try:  # the pytest plugin, when pytest is there (the mock itself needs no pytest)
    import pytest as _pytest  # noqa: F401
except ImportError:  # pragma: no cover
    pass
else:
    from ._pytest import FtMock, ft_mock, ft_mock_config  # noqa: F401

    __all__ += ["FtMock"]
