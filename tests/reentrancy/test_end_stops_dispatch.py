"""A listener that ends its task is the last to hear the event it was given: the listeners
after it in the same dispatch are not called after the task's fail/complete (or onClose)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.recorder import Recorder

pytestmark = pytest.mark.timeout(60)


def test_a_request_aborted_by_its_first_headers_listener(rt: Any, http_server: Any) -> None:
    rec = Recorder()
    task = rt.request(url=http_server.url + "/bytes/100", **rec.callbacks())
    task.onHeadersReceived(rec.listener("first", then=lambda res: task.abort()))
    task.onHeadersReceived(rec.listener("second"))
    rec.wait()
    assert rec.names() == ["first", "fail", "complete"]
    assert rec.outcome["errMsg"] == "request:fail abort"


def test_a_udp_socket_closed_by_its_first_message_listener(rt: Any) -> None:
    sock = rt.createUDPSocket()
    port = sock.bind(0)
    rec = Recorder()
    sock.onMessage(rec.listener("first", then=lambda res: sock.close()))
    sock.onMessage(rec.listener("second"))
    sock.onClose(rec.listener("Close"))
    sock.send({"address": "127.0.0.1", "port": port, "message": b"ping"})
    rec.wait_name("Close")
    assert rec.names() == ["first", "Close"]
