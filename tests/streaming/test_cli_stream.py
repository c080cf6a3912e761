"""`python -m ftcore request --stream URL` prints text as it arrives; `--sse` one JSON line per
event (against a real peer, in a subprocess)."""

from __future__ import annotations

import json
from typing import Callable

import pytest

from tests.cli.test_cli import ftcore_cli
from tests.streaming.peer import PeerConn, StreamPeer

pytestmark = pytest.mark.timeout(120)

STREAM = "data: 你好\n\nid: 2\nevent: delta\ndata: 😀\n\n".encode("utf-8")


def serve(conn: PeerConn) -> None:
    conn.read_request()
    conn.respond()
    for i in range(0, len(STREAM), 4):  # characters cut across chunks
        conn.send(STREAM[i : i + 4])
    conn.end()
    conn.client_closed(2.0)


def test_stream_prints_the_text(stream_peer: Callable[..., StreamPeer]) -> None:
    peer = stream_peer(serve)
    out = ftcore_cli("request", "--stream", peer.url)
    assert out.returncode == 0, out.stderr
    assert out.stdout == STREAM.decode("utf-8")


def test_sse_prints_one_json_line_per_event(stream_peer: Callable[..., StreamPeer]) -> None:
    peer = stream_peer(serve)
    out = ftcore_cli("request", "--sse", peer.url)
    assert out.returncode == 0, out.stderr
    assert [json.loads(line) for line in out.stdout.splitlines()] == [
        {"event": "message", "data": "你好", "id": "", "retry": None},
        {"event": "delta", "data": "😀", "id": "2", "retry": None},
    ]


def test_a_failed_stream_exits_one(stream_peer: Callable[..., StreamPeer]) -> None:
    def cut(conn: PeerConn) -> None:
        conn.read_request()
        conn.respond()
        conn.send(b"data: 1\n\n")
        conn.conn.close()  # no last chunk: the body is cut short

    peer = stream_peer(cut)
    out = ftcore_cli("request", "--sse", peer.url)
    assert out.returncode == 1
    assert json.loads(out.stdout.splitlines()[0])["data"] == "1"
    assert out.stderr.startswith("request:fail")
