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
from typing import Any, Callable, Dict, List, Tuple

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


Upload = Callable[[bytes, str], Tuple[Any, ScriptedPeer, Recorder]]


@pytest.fixture
def early_upload(make_runtime: Any, tmp_path: Any, scripted_peer: Any) -> Upload:
    """`early_upload(raw, then)`: uploadFile of SIZE random bytes to a peer that answers `raw`
    at the head, then does `then` with the body; the runtime, the peer, and the recorder once
    the task ended."""

    def run(raw: bytes, then: str) -> Tuple[Any, ScriptedPeer, Recorder]:
        rt = make_runtime({"sandbox": str(tmp_path / "sandbox")})
        plan = Early(raw, then)
        peer: ScriptedPeer = scripted_peer(plan)
        path = os.path.join(rt.env["USER_DATA_PATH"], "big.bin")
        with open(path, "wb") as handle:
            handle.write(os.urandom(SIZE))
        url = peer.url + "/upload"
        return rt, peer, plan.run(rt, "uploadFile", url=url, filePath=path, name="file")

    return run


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


def test_upload_answered_200_at_its_head_sends_every_byte_first(early_upload):
    rt, peer, recorder = early_upload(OK_EARLY, "read")
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


def test_an_early_200_whose_server_then_goes_away_fails(early_upload):
    """The server said 200 and kept the connection, then reset it mid-body: the body was not
    delivered, so the upload is not reported as done."""
    _, _, recorder = early_upload(OK_EARLY, "reset")
    res = recorder.outcome
    assert res["errno"] == 600015 and res["errMsg"].startswith("uploadFile:fail connection reset")
    assert all(event["progress"] < 100 for event in recorder.of("progress"))


# -- an early error status, or a close: stop sending --------------------------------------------


@pytest.mark.parametrize("closes", [True, False], ids=["connection-close", "keep-alive"])
def test_upload_answered_413_stops_sending_and_never_reuses(early_upload, closes):
    raw = response(413, b"too large", [CLOSE] if closes else [])
    rt, peer, recorder = early_upload(raw, "close" if closes else "read")
    res = recorder.outcome
    assert (res["statusCode"], res["data"]) == (413, "too large")
    (seen,) = peer.wait_done(1)  # the peer read until the client closed the connection
    total = int(seen.header("Content-Length") or -1)
    assert seen.body_received < total
    assert res["profile"]["sendBytesCount"] == seen.received  # every byte written arrived
    check_progress(recorder.of("progress"), seen.body_received, total)
    again = call(rt, url=peer.url + "/next")
    assert again["profile"]["socketReused"] is False and peer.accepted == 2


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
def test_an_early_200_that_closes_the_connection_stops_the_body(early_upload, raw):
    """RFC 9112 §9.5: a response showing that the server closes the connection (it says so,
    or its body runs until the close) tells the client to stop sending; the task settles with
    it, progress short of 100."""
    _, peer, recorder = early_upload(raw, "close")
    res = recorder.outcome
    assert (res["statusCode"], res["data"]) == (200, "enough")
    (seen,) = peer.wait_done(1)
    total = int(seen.header("Content-Length") or -1)
    assert seen.body_received < total
    check_progress(recorder.of("progress"), seen.body_received, total)


# -- request(): the same rules for a body in memory ---------------------------------------------


@pytest.mark.parametrize(
    ("raw", "answer", "sends_all"),
    [(OK_EARLY, (200, "early"), True), (TOO_LARGE, (413, "too large"), False)],
    ids=["200-sends-it-all", "413-stops-sending"],
)
def test_request_with_a_large_body_answered_early(
    make_runtime, scripted_peer, raw, answer, sends_all
):
    """After an early 200 the whole body goes and the connection is reused; after an early
    413 the rest does not, and the connection is not reused."""
    rt = make_runtime()
    plan = Early(raw, "read")
    peer: ScriptedPeer = scripted_peer(plan)
    body = os.urandom(SIZE)
    res = plan.run(rt, "request", url=peer.url + "/upload", method="POST", data=body).outcome
    assert (res["statusCode"], res["data"]) == answer
    (seen,) = peer.wait_done(1)
    assert (seen.body_received == len(body)) if sends_all else (seen.body_received < len(body))
    assert res["profile"]["sendBytesCount"] == seen.received
    assert call(rt, url=peer.url + "/next")["profile"]["socketReused"] is sends_all
