"""The urllib3 internals the transport builds on: the private methods it overrides or calls
(`transport._ConnMixin`, `transport._PoolMixin`, `exchange.Exchange`) and the pool choice it
copies from `PoolManager`. A urllib3 release that changes one fails here, by name, instead of
deep inside an exchange; setup.cfg bounds urllib3 to the major version these tests pass on."""

from __future__ import annotations

import ast
import inspect
import socket
from pathlib import Path
from typing import Any, Iterator, List, Set, Tuple

import pytest
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.util.url import parse_url

from ftcore._net import Net
from ftcore.loop import EventLoop
from ftcore.transports import TlsSettings
from ftcore_urllib3 import transport as plugin

PLUGIN_DIR = Path(plugin.__file__).parent

# (class, private method, its parameters as the plugin calls or overrides it)
EXPECTED: List[Tuple[type, str, str]] = [
    (HTTPConnection, "_new_conn", "(self)"),  # _ConnMixin: dial timing, abort during a dial
    (HTTPSConnection, "_new_conn", "(self)"),
    (HTTPConnectionPool, "_get_conn", "(self, timeout=None)"),  # _PoolMixin; Exchange.start
    (HTTPConnectionPool, "_put_conn", "(self, conn)"),  # _PoolMixin; Urllib3Transport.give_back
    (HTTPConnectionPool, "_new_conn", "(self)"),  # _PoolMixin: HTTPS connections get their TLS
    (HTTPSConnectionPool, "_new_conn", "(self)"),
]


def bare(signature: inspect.Signature) -> str:
    """The parameters without annotations (urllib3 changes those freely)."""
    params = [p.replace(annotation=inspect.Parameter.empty) for p in signature.parameters.values()]
    return str(signature.replace(parameters=params, return_annotation=inspect.Signature.empty))


@pytest.mark.parametrize(
    "owner, name, expected", EXPECTED, ids=["%s.%s" % (c.__name__, n) for c, n, _ in EXPECTED]
)
def test_the_private_method_exists_with_the_expected_signature(
    owner: type, name: str, expected: str
) -> None:
    method = getattr(owner, name, None)
    assert callable(method), "urllib3 %s has no %s.%s" % (urllib3.__version__, owner, name)
    assert bare(inspect.signature(method)) == expected, "urllib3 %s" % urllib3.__version__


def _private_names_in_plugin() -> Set[str]:
    names = set()
    for path in PLUGIN_DIR.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            name = getattr(node, "attr", None) or getattr(node, "name", None)
            if isinstance(node, (ast.Attribute, ast.FunctionDef)) and isinstance(name, str):
                if name.startswith("_") and not name.startswith("__"):
                    names.add(name)
    return names


def test_every_private_urllib3_name_the_plugin_uses_is_checked_here() -> None:
    urllib3_objects: List[Any] = [
        HTTPConnection,
        HTTPSConnection,
        HTTPConnectionPool,
        HTTPSConnectionPool,
        urllib3.PoolManager,
        urllib3.HTTPResponse,
        HTTPConnection("example.com"),
        HTTPConnectionPool("example.com"),
        urllib3.PoolManager(),
    ]
    used = {n for n in _private_names_in_plugin() if any(hasattr(o, n) for o in urllib3_objects)}
    assert used == {name for _, name, _ in EXPECTED}


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A loopback port that accepts connections (the kernel's backlog is enough)."""
    server = socket.create_server(("127.0.0.1", 0))
    try:
        yield server
    finally:
        server.close()


def test_connect_opens_its_socket_through_new_conn(listener: socket.socket) -> None:
    calls = []

    class Recording(HTTPConnection):
        def _new_conn(self) -> socket.socket:
            calls.append("_new_conn")
            return super()._new_conn()  # type: ignore[misc]

    conn = Recording("127.0.0.1", listener.getsockname()[1], timeout=5)
    try:
        conn.connect()
        assert calls == ["_new_conn"] and conn.sock is not None
    finally:
        conn.close()


def test_an_empty_pool_makes_an_unconnected_connection_and_takes_it_back() -> None:
    made = []

    class Recording(HTTPConnectionPool):
        def _new_conn(self) -> Any:
            conn = super()._new_conn()  # type: ignore[misc]
            made.append(conn)
            return conn

    pool = Recording("127.0.0.1", 9, maxsize=1)
    try:
        conn = pool._get_conn(timeout=1)
        assert made == [conn] and conn.sock is None  # Exchange.start dials it on a worker
        pool._put_conn(conn)
        assert pool._get_conn(timeout=1) is conn and len(made) == 1
        pool._put_conn(conn)
    finally:
        pool.close()


URLS = [
    "http://example.com/a?b=1",
    "http://EXAMPLE.com:80/",
    "http://example.com:8080/x",
    "https://example.com/",
    "https://Example.com:443/p?q",
    "https://example.com:8443/",
]


@pytest.mark.parametrize("url", URLS)
def test_the_plugins_route_picks_the_pool_urllib3_would(url: str) -> None:
    loop = EventLoop()
    transport = plugin.Urllib3Transport(Net(loop))
    try:
        manager = transport._manager(TlsSettings())
        pool_key, context, target, _host = plugin._route(manager, url)
        pool = manager.connection_from_pool_key(pool_key, dict(context))
        assert pool is manager.connection_from_url(url)
        assert type(pool).__name__.startswith("Ft")  # pool_classes_by_scheme is honoured
        assert target == parse_url(url).request_uri
    finally:
        transport.close()
        loop.close()
