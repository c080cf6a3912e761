"""pytest fixtures wiring the peers; load with ``pytest_plugins = ["tests.peers.fixtures"]``.

Why: tests ask for a peer by name and never manage threads or sockets; every
fixture closes what it made (and fails loudly if a peer thread would not stop).

Session-scoped: ``tls_material``, ``untrusted_tls_material``, ``ca``,
``http_server``, ``https_server``, ``untrusted_https_server``.
Function-scoped factories: ``http_server_factory``, ``hostile_server``,
``scripted_peer``, ``ws_server``, ``udp_echo``, ``udp_sink``.
"""

from __future__ import annotations

from typing import Any, Callable, Iterator, List, Optional, Sequence, Union

import pytest
import trustme

from tests.peers.hostile import HostileServer, Script, ServerURL
from tests.peers.http_server import HTTPPeer
from tests.peers.lifecycle import non_peer_threads, open_fd_count  # noqa: F401  (re-exported)
from tests.peers.scripted_http import Plan, ScriptedPeer, answer
from tests.peers.tls import TLSMaterial, make_tls_material
from tests.peers.udp import UDPPeer, ipv6_available
from tests.peers.ws import Handler, WSPeer


@pytest.fixture(scope="session")
def tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """The trusted CA, its loopback server certificate and ``cafile``."""
    return make_tls_material(str(tmp_path_factory.mktemp("peer-tls")), "trusted-ca")


@pytest.fixture(scope="session")
def untrusted_tls_material(tmp_path_factory: pytest.TempPathFactory) -> TLSMaterial:
    """A second CA that no client is told about."""
    return make_tls_material(str(tmp_path_factory.mktemp("peer-tls-untrusted")), "untrusted-ca")


@pytest.fixture(scope="session")
def ca(tls_material: TLSMaterial) -> trustme.CA:
    """The trustme CA that signed ``https_server`` and wss:// ``ws_server`` certificates."""
    return tls_material.ca


@pytest.fixture(scope="session")
def http_server() -> Iterator[HTTPPeer]:
    """Plain HTTP peer shared by the session: ``.url`` "http://127.0.0.1:PORT",
    ``.requests``. Shared, so filter ``.requests`` by a unique path or query."""
    with HTTPPeer(name="http") as server:
        yield server


@pytest.fixture(scope="session")
def https_server(tls_material: TLSMaterial) -> Iterator[HTTPPeer]:
    """HTTPS peer (``.url`` "https://127.0.0.1:PORT", ``.cafile`` to trust it)."""
    context = tls_material.server_context()
    with HTTPPeer(tls=context, cafile=tls_material.cafile, name="https") as server:
        yield server


@pytest.fixture(scope="session")
def untrusted_https_server(untrusted_tls_material: TLSMaterial) -> Iterator[HTTPPeer]:
    """HTTPS peer whose CA is not ``ca``: verification against ``ca`` or the system
    store fails. Its ``.cafile`` is its own CA, for tests that trust it on purpose."""
    context = untrusted_tls_material.server_context()
    cafile = untrusted_tls_material.cafile
    with HTTPPeer(tls=context, cafile=cafile, name="https-untrusted") as server:
        yield server


@pytest.fixture
def http_server_factory(request: pytest.FixtureRequest) -> Iterator[Callable[..., HTTPPeer]]:
    """``http_server_factory(host="127.0.0.1", tls=False) -> HTTPPeer``: a private
    server (fresh ``.requests``; ``host="::1"`` for IPv6; ``tls=True`` for HTTPS)."""
    servers: List[HTTPPeer] = []

    def make(host: str = "127.0.0.1", tls: bool = False) -> HTTPPeer:
        if host == "::1" and not ipv6_available():
            pytest.skip("IPv6 loopback is not available")
        if tls:
            material: TLSMaterial = request.getfixturevalue("tls_material")
            server = HTTPPeer(host, material.server_context(), material.cafile, "http-private")
        else:
            server = HTTPPeer(host, name="http-private")
        servers.append(server)
        return server

    yield make
    _close_all(servers)


@pytest.fixture
def hostile_server() -> Iterator[Callable[..., ServerURL]]:
    """``hostile_server(script, host="127.0.0.1") -> url``: a scripted raw TCP server.
    The url is a ``str`` ("http://127.0.0.1:PORT") whose ``.server`` is the
    ``HostileServer`` (``.accepted``, ``.wait_accepted(n)``, ``.release``)."""
    servers: List[HostileServer] = []

    def make(script: Script, host: str = "127.0.0.1") -> ServerURL:
        server = HostileServer(script, host)
        servers.append(server)
        return server.url

    yield make
    _close_all(servers)


@pytest.fixture
def scripted_peer(request: pytest.FixtureRequest) -> Iterator[Callable[..., ScriptedPeer]]:
    """``scripted_peer(plan=..., keep_bodies=False, tls=False) -> ScriptedPeer``: a keep-alive
    HTTP peer that counts every byte and plays ``plan(seen) -> Move`` for each request."""
    peers: List[ScriptedPeer] = []

    def make(
        plan: Plan = lambda seen: answer(), keep_bodies: bool = False, tls: bool = False
    ) -> ScriptedPeer:
        context = None
        if tls:
            material: TLSMaterial = request.getfixturevalue("tls_material")
            context = material.server_context()
        peer = ScriptedPeer(plan, keep_bodies=keep_bodies, tls=context)
        peers.append(peer)
        return peer

    yield make
    _close_all(peers)


@pytest.fixture
def ws_server(request: pytest.FixtureRequest) -> Iterator[Callable[..., WSPeer]]:
    """``ws_server(handler="echo", compression=True, subprotocols=None, tls=False,
    **kwargs) -> WSPeer`` (``.url`` "ws://127.0.0.1:PORT" or "wss://...")."""
    servers: List[WSPeer] = []

    def make(
        handler: Union[str, Handler] = "echo",
        compression: bool = True,
        subprotocols: Optional[Sequence[str]] = None,
        tls: bool = False,
        **kwargs: Any,
    ) -> WSPeer:
        context, cafile = None, None
        if tls:
            material: TLSMaterial = request.getfixturevalue("tls_material")
            context, cafile = material.server_context(alpn=()), material.cafile
        server = WSPeer(
            handler,
            compression=compression,
            subprotocols=subprotocols,
            tls=context,
            cafile=cafile,
            **kwargs,
        )
        servers.append(server)
        return server

    yield make
    _close_all(servers)


def _udp_factory(echo: bool) -> Iterator[Callable[[str], UDPPeer]]:
    peers: List[UDPPeer] = []

    def make(family: str = "udp4") -> UDPPeer:
        if family == "udp6" and not ipv6_available():
            pytest.skip("IPv6 loopback is not available")
        peer = UDPPeer(family, echo=echo)
        peers.append(peer)
        return peer

    yield make
    _close_all(peers)


@pytest.fixture
def udp_echo() -> Iterator[Callable[[str], UDPPeer]]:
    """``udp_echo(family="udp4"|"udp6") -> UDPPeer``: returns each datagram to its sender."""
    yield from _udp_factory(echo=True)


@pytest.fixture
def udp_sink() -> Iterator[Callable[[str], UDPPeer]]:
    """``udp_sink(family="udp4"|"udp6") -> UDPPeer``: records datagrams, answers nothing."""
    yield from _udp_factory(echo=False)


def _close_all(peers: Sequence[Any]) -> None:
    """Close every peer even if one fails, then raise the first failure."""
    errors = []
    for peer in peers:
        try:
            peer.close()
        except Exception as exc:  # noqa: BLE001  (re-raised below)
            errors.append(exc)
    if errors:
        raise errors[0]
