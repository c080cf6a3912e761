"""A server that answers before it has read the whole request body (issue 11, §6).

nginx's `location = /upload { return 200; }` answers as soon as the head arrives, then reads
and discards the body. RFC 9112 and curl: after an early 2xx/3xx the client sends the body in
full, then settles; after an early final status >= 400 (or an answer that closes the
connection) it stops sending, settles with that response and never reuses the connection.
Progress reports the bytes actually written, and 100 only once all were. The peer
(`tests.peers.scripted_http`) counts on its side every byte it received, and reads the body
only once the client has heard the answer (`gate`), so the answer is early on any machine.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List

import pytest

from tests.http.helpers import Recorder, call, paused_loop
from tests.peers.hostile import response_head
from tests.peers.scripted_http import ScriptedPeer, answer, early, response
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)

MIB = 2**20
SIZE = 16 * MIB  # far more than the socket buffers hold: the answer comes mid-body
OK_EARLY = response(200, b"early", [("Content-Type", "text/plain")])
TOO_LARGE = response(413, b"too large", [("Content-Type", "text/plain")])
CLOSE = ("Connection", "close")


class Early:
    """The plan: every POST is answered `raw` at its head, and its body is read (`then`) once
    the client has heard that answer; anything else is answered normally."""

    def __init__(self, raw: bytes, then: str) -> None:
        self.raw, self.then = raw, then
        self.heard = threading.Event()

    def __call__(self, seen: Any) -> Any:
        return early(self.raw, self.then, self.heard) if seen.method == "POST" else answer()

    def run(self, rt: Any, api: str, **options: Any) -> Recorder:
        """`rt.<api>(options)` with its events recorded; the recorder once the task ended."""
        recorder = Recorder()

        def headers(res: Dict[str, Any]) -> None:
            recorder.listener("headers")(res)
            self.heard.set()

        with paused_loop(rt):  # the listeners are in place before any event
            task = getattr(rt, api)(dict(options, **recorder.callbacks()))
            task.onHeadersReceived(headers)
            if api == "uploadFile":
                task.onProgressUpdate(recorder.listener("progress"))
        return recorder.wait(WAIT)


def upload(rt: Any, plan: Early, url: str) -> Recorder:
    """uploadFile of SIZE random bytes through `plan`."""
    path = os.path.join(rt.env["USER_DATA_PATH"], "big.bin")
    with open(path, "wb") as handle:
        handle.write(os.urandom(SIZE))
    return plan.run(rt, "uploadFile", url=url, filePath=path, name="file")


def check_progress(progress: List[Dict[str, Any]], written: int, total: int) -> None:
    """Monotonic, never past what was written, 100 only when all of it was."""
    sent = [event["totalBytesSent"] for event in progress]
    percents = [event["progress"] for event in progress]
    assert sent == sorted(sent) and percents == sorted(percents), progress
    assert {event["totalBytesExpectedToSend"] for event in progress} == {total}
    assert sent[-1] <= written
    assert (percents[-1] == 100) == (written == total), (percents[-1], written, total)
    assert all(event["progress"] < 100 for event in progress[:-1])


# -- an early 2xx: the whole body is still sent ------------------------------------------------


def test_upload_answered_200_at_its_head_sends_every_byte_first(
    make_runtime, tmp_path, scripted_peer
):
    rt = make_runtime({"sandbox": str(tmp_path / "sandbox")})
    plan = Early(OK_EARLY, "read")
    peer: ScriptedPeer = scripted_peer(plan)
    recorder = upload(rt, plan, peer.url + "/upload")
    res = recorder.outcome
    assert (res["statusCode"], res["data"]) == (200, "early")
    (seen,) = peer.wait_done(1)
    total = int(seen.header("Content-Length") or -1)
    assert seen.body_received == total  # the server got every byte
    assert res["profile"]["sendBytesCount"] == seen.received
    check_progress(recorder.of("progress"), total, total)
    names = recorder.names()
    assert names.index("headers") < len(names) - 3  # the answer came long before the end
    assert names[-3:] == ["progress", "success", "complete"]  # 100 once all left, then settled
    again = call(rt, url=peer.url + "/next")  # the connection stayed in step: reused
    assert again["profile"]["socketReused"] is True and peer.accepted == 1


def test_request_with_a_large_body_answered_early_sends_it_all(make_runtime, scripted_peer):
    rt = make_runtime()
    plan = Early(OK_EARLY, "read")
    peer: ScriptedPeer = scripted_peer(plan)
    body = os.urandom(SIZE)
    res = plan.run(rt, "request", url=peer.url + "/upload", method="POST", data=body).outcome
    assert (res["statusCode"], res["data"]) == (200, "early")
    (seen,) = peer.wait_done(1)
    assert seen.body_received == len(body)
    assert res["profile"]["sendBytesCount"] == seen.received
    assert call(rt, url=peer.url + "/next")["profile"]["socketReused"] is True


def test_an_early_200_whose_server_then_goes_away_fails(make_runtime, tmp_path, scripted_peer):
    """The server said 200 and kept the connection, then reset it mid-body: the body was not
    delivered, so the upload is not reported as done."""
    rt = make_runtime({"sandbox": str(tmp_path / "sandbox")})
    plan = Early(OK_EARLY, "reset")
    peer: ScriptedPeer = scripted_peer(plan)
    recorder = upload(rt, plan, peer.url + "/upload")
    res = recorder.outcome
    assert res["errno"] == 600015 and res["errMsg"].startswith("uploadFile:fail connection reset")
    assert all(event["progress"] < 100 for event in recorder.of("progress"))


# -- an early error status, or a close: stop sending --------------------------------------------


@pytest.mark.parametrize("closes", [True, False], ids=["connection-close", "keep-alive"])
def test_upload_answered_413_stops_sending_and_never_reuses(
    make_runtime, tmp_path, scripted_peer, closes
):
    raw = response(413, b"too large", [CLOSE] if closes else [])
    rt = make_runtime({"sandbox": str(tmp_path / "sandbox")})
    plan = Early(raw, "close" if closes else "read")
    peer: ScriptedPeer = scripted_peer(plan)
    recorder = upload(rt, plan, peer.url + "/upload")
    res = recorder.outcome
    assert (res["statusCode"], res["data"]) == (413, "too large")
    (seen,) = peer.wait_done(1)  # the peer read until the client closed the connection
    total = int(seen.header("Content-Length") or -1)
    assert seen.body_received < total
    assert res["profile"]["sendBytesCount"] == seen.received  # every byte written arrived
    check_progress(recorder.of("progress"), seen.body_received, total)
    again = call(rt, url=peer.url + "/next")
    assert again["profile"]["socketReused"] is False and peer.accepted == 2


def test_request_answered_413_stops_sending(make_runtime, scripted_peer):
    rt = make_runtime()
    plan = Early(TOO_LARGE, "read")
    peer: ScriptedPeer = scripted_peer(plan)
    body = os.urandom(SIZE)
    res = plan.run(rt, "request", url=peer.url + "/upload", method="POST", data=body).outcome
    assert (res["statusCode"], res["data"]) == (413, "too large")
    (seen,) = peer.wait_done(1)
    assert seen.body_received < len(body)
    assert res["profile"]["sendBytesCount"] == seen.received
    assert call(rt, url=peer.url + "/next")["profile"]["socketReused"] is False


def test_a_413_whose_server_resets_at_once_is_still_the_answer(make_runtime, scripted_peer):
    """The server answers 413 and closes with the body unread at once (the kernel resets):
    the write that fails on the reset ends only the sending side, so the answer that came
    before it is what the task settles with, whichever of the two the loop sees first."""
    rt = make_runtime()
    for attempt in range(5):
        peer: ScriptedPeer = scripted_peer(lambda seen: early(TOO_LARGE, "reset"))
        res = call(rt, url=peer.url + "/upload", method="POST", data=os.urandom(SIZE))
        assert (res.get("statusCode"), res.get("data")) == (413, "too large"), (attempt, res)


@pytest.mark.parametrize(
    "raw",
    [response(200, b"enough", [CLOSE]), response_head(200, "OK") + b"enough"],
    ids=["connection-close", "body-until-eof"],
)
def test_an_early_200_that_closes_the_connection_stops_the_body(
    make_runtime, tmp_path, scripted_peer, raw
):
    """RFC 9112 §9.5: a response showing that the server closes the connection (it says so,
    or its body runs until the close) tells the client to stop sending; the task settles with
    it, progress short of 100."""
    rt = make_runtime({"sandbox": str(tmp_path / "sandbox")})
    plan = Early(raw, "close")
    peer: ScriptedPeer = scripted_peer(plan)
    recorder = upload(rt, plan, peer.url + "/upload")
    res = recorder.outcome
    assert (res["statusCode"], res["data"]) == (200, "enough")
    (seen,) = peer.wait_done(1)
    total = int(seen.header("Content-Length") or -1)
    assert seen.body_received < total
    check_progress(recorder.of("progress"), seen.body_received, total)
