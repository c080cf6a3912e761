"""Fixtures of the streaming tests: scripted peers (the runtimes are tests/support's)."""

from __future__ import annotations

from typing import Any, Callable, Dict

import pytest

from tests.peers.tls import TLSMaterial
from tests.streaming.peer import Handler, StreamPeer


@pytest.fixture
def stream_peer(
    hostile_server: Callable[..., Any], request: pytest.FixtureRequest
) -> Callable[..., StreamPeer]:
    """`stream_peer(handler, tls=False) -> StreamPeer` (`.url`, `.conns`, `.conn(i)`)."""

    def make(handler: Handler, tls: bool = False) -> StreamPeer:
        context = None
        if tls:
            material: TLSMaterial = request.getfixturevalue("tls_material")
            context = material.server_context()
        return StreamPeer(hostile_server, handler, context)

    return make


@pytest.fixture
def tls_config(tls_material: TLSMaterial) -> Dict[str, Any]:
    return {"tls": {"cafile": tls_material.cafile}}
