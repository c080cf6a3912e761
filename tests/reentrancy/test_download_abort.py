"""Issue 11 §1, as reported: `abort()` from a downloadFile's `onProgressUpdate`, mid-body.

The loop thread used to hold the file writer's lock while the progress event ran; `abort` then
took the same lock to discard the file, and the loop blocked on itself for good (`rt.close()`
never returned). The peer sends the head, waits until the listener is attached, then sends a
tenth of the body and stalls, so the event runs inside the write of a body still arriving.
"""

from __future__ import annotations

import os
import socket
import threading
from typing import Any, Dict

import pytest

import ftcore
from tests.peers.hostile import HostileServer, read_request, response_head
from tests.peers.http_app import pattern_bytes
from tests.reentrancy.support import WAIT, Journal, close_bounded, run_bounded

pytestmark = pytest.mark.timeout(60)


def test_abort_from_a_progress_listener_mid_body_ends_the_task_and_the_runtime_closes(
    http_server: Any,
) -> None:
    attached = threading.Event()

    def script(conn: socket.socket, release: threading.Event) -> None:
        read_request(conn)
        conn.sendall(response_head(headers=[("Content-Length", "1000")]))
        attached.wait(WAIT)
        conn.sendall(pattern_bytes(100))
        release.wait()

    journal = Journal()
    with HostileServer(script) as peer:
        rt = ftcore.Runtime(entrypoints=False)
        try:
            task = rt.downloadFile(
                url=peer.url + "/file.bin",
                success=journal.recorder("success"),
                fail=journal.recorder("fail"),
                complete=journal.recorder("complete"),
            )

            def on_progress(res: Dict[str, Any]) -> None:
                journal.add("progress", res)
                task.abort()

            task.onProgressUpdate(on_progress)
            attached.set()
            journal.wait_for(lambda j: j.count("complete") >= 1, "complete")
            assert journal.names() == ["progress", "fail", "complete"]
            assert journal.first("progress")["progress"] == 10
            assert journal.first("fail")["errMsg"] == "downloadFile:fail abort"
            assert os.listdir(rt.sandbox.temp) == []  # the partial file is gone
            follow_up = run_bounded(
                lambda: rt.request(url=http_server.url + "/echo").result(WAIT),
                WAIT,
                "a request after the abort",
            )
            assert follow_up["statusCode"] == 200
        finally:
            close_bounded(rt)
