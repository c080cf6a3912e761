"""`profile.sendBytesCount` and `receivedBytedCount` are the bytes on the wire (API.md §11).

sendBytesCount: the request written, head and body; receivedBytedCount: the response read,
head, chunked framing and body as sent, before content decoding. Each test compares them with
what a real peer (`tests.peers.scripted_http`) counted on its side of the connection, for
request, downloadFile and uploadFile, fresh and reused connections, plain and TLS.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List

import ftcore
import pytest
from tests.http.helpers import call
from tests.peers.http_app import pattern_bytes
from tests.peers.scripted_http import ScriptedPeer, Seen, answer, gzip_response, response
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)

PLAIN = json.dumps({"text": "hello " * 2000}).encode()
BODY = pattern_bytes(300_000)  # more than one read buffer of the client, and than a TLS record


def routes(seen: Seen) -> Any:
    """The answer for each path: plain bytes, gzip, chunked, or the default JSON report."""
    path = seen.target.split("?")[0]
    if path.endswith("/bytes"):
        return answer(response(200, BODY))
    if path.endswith("/gzip"):
        return answer(gzip_response(PLAIN))
    if path.endswith("/chunked"):
        return answer(response(200, BODY, chunks=7))
    return answer()


def assert_counts(profile: Dict[str, Any], seen: Seen) -> None:
    """The client's counts are the peer's, byte for byte."""
    assert profile["sendBytesCount"] == seen.received, (profile, seen)
    assert profile["receivedBytedCount"] == seen.sent, (profile, seen)


def sandboxed(make_runtime: Callable[..., ftcore.Runtime], tmp_path: Any, **config: Any) -> Any:
    config.setdefault("sandbox", str(tmp_path / "sandbox"))
    return make_runtime(config)


@pytest.mark.parametrize("tls", [False, True], ids=["http", "https"])
def test_request_counts_heads_bodies_and_framing(make_runtime, scripted_peer, request, tls):
    peer: ScriptedPeer = scripted_peer(routes, tls=tls)
    cafile = request.getfixturevalue("tls_material").cafile if tls else None
    rt = make_runtime({"tls": {"cafile": cafile}})
    results: List[Dict[str, Any]] = [
        call(rt, url=peer.url + "/bytes", responseType="arraybuffer"),
        call(rt, url=peer.url + "/gzip"),
        call(rt, url=peer.url + "/chunked", responseType="arraybuffer"),
        call(rt, url=peer.url + "/echo", method="POST", data=b"x" * 77),
        call(rt, url=peer.url + "/echo", method="PUT", data=BODY),
    ]
    seen = peer.wait_done(len(results))
    assert [s.connection for s in seen] == [1] * len(results)  # counts are per exchange
    for res, record in zip(results, seen):
        assert res["statusCode"] == 200
        assert_counts(res["profile"], record)
    assert results[0]["data"] == BODY
    assert results[1]["data"] == json.loads(PLAIN)  # decoded, yet counted as gzip bytes
    assert seen[1].sent < len(PLAIN)
    assert results[2]["data"] == BODY and seen[2].sent > len(BODY) + 7 * 4  # chunk framing
    assert seen[3].body_received == 77 and seen[4].body_received == len(BODY)
    assert [r["profile"]["socketReused"] for r in results] == [False] + [True] * 4


@pytest.mark.parametrize("route", ["/f/bytes", "/f/gzip", "/f/chunked"])
def test_download_counts_the_wire_not_the_file(make_runtime, tmp_path, scripted_peer, route):
    rt = sandboxed(make_runtime, tmp_path)
    peer: ScriptedPeer = scripted_peer(routes)
    res = rt.downloadFile(url=peer.url + route).result(WAIT)
    (seen,) = peer.wait_done(1)
    assert res["statusCode"] == 200
    assert_counts(res["profile"], seen)
    with open(res["tempFilePath"], "rb") as handle:
        saved = handle.read()
    assert saved == (PLAIN if route.endswith("gzip") else BODY)


def test_upload_counts_the_whole_multipart_request(make_runtime, tmp_path, scripted_peer):
    rt = sandboxed(make_runtime, tmp_path)
    peer: ScriptedPeer = scripted_peer(routes)
    path = os.path.join(rt.env["USER_DATA_PATH"], "up.bin")
    with open(path, "wb") as handle:
        handle.write(os.urandom(1_000_003))
    progress: List[Dict[str, Any]] = []
    task = rt.uploadFile(url=peer.url + "/up", filePath=path, name="file", formData={"a": "b"})
    task.onProgressUpdate(progress.append)
    res = task.result(WAIT)
    (seen,) = peer.wait_done(1)
    assert res["statusCode"] == 200
    assert_counts(res["profile"], seen)
    assert seen.body_received == int(seen.header("Content-Length") or -1)
    assert json.loads(res["data"])["received"] == seen.body_received
    assert progress[-1]["totalBytesSent"] == seen.body_received  # the body only, not the head


def test_each_exchange_on_a_reused_connection_counts_its_own_bytes(make_runtime, scripted_peer):
    """Counts are per exchange: the second request on a kept-alive connection starts from 0."""
    peer: ScriptedPeer = scripted_peer(routes)
    rt = make_runtime()
    first = call(rt, url=peer.url + "/gzip")
    second = call(rt, url=peer.url + "/gzip")
    seen = peer.wait_done(2)
    assert second["profile"]["socketReused"] is True
    assert_counts(first["profile"], seen[0])
    assert_counts(second["profile"], seen[1])
    assert seen[0].sent == seen[1].sent == len(gzip_response(PLAIN))
