"""SocketTask.send/close with options that are not a dict: a failed call, never an exception.

API.md §2: wrong options fail through `fail`, never by raising from the API call. A stray
value has no callbacks of its own, so only keyword callbacks hear the failure, and ftcore
logs a warning; the socket is left as it was.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Dict, Iterator, List

import pytest

import ftcore
from ftcore._api.socket import SocketTask
from tests.websocket.support import SOCKET_EVENTS, Recorder

pytestmark = pytest.mark.timeout(30)

NOT_A_DICT = ["hello", ["data", "x"], 12, b"bytes", ("data", "x")]
NOT_A_DICT_IDS = ["str", "list", "int", "bytes", "tuple"]


@pytest.fixture
def rt() -> Iterator[ftcore.Runtime]:
    runtime = ftcore.Runtime()
    yield runtime
    runtime.close()


def open_socket(rt: ftcore.Runtime, url: str, rec: Recorder) -> SocketTask:
    task = rt.connectSocket(url=url)
    rec.attach(task, SOCKET_EVENTS)
    rec.wait_name("Open")
    return task


def invalid_option(api: str, value: Any) -> Dict[str, Any]:
    reason = "invalid option: options must be a dict, not %s" % type(value).__name__
    return {"errMsg": "%s:fail %s" % (api, reason), "errno": ftcore.Errno.INVALID_OPTION}


def assert_still_open(task: SocketTask, rec: Recorder) -> None:
    """Nothing was sent or closed: the next message echoed is the one sent now."""
    assert task.readyState == SocketTask.OPEN
    task.send(data="still open")
    assert rec.wait_name("Message") == {"data": "still open"}
    assert rec.count("Message") == 1 and rec.count("Close") == 0


@pytest.mark.parametrize("value", NOT_A_DICT, ids=NOT_A_DICT_IDS)
def test_send_with_options_not_a_dict_fails(rt: Any, ws_server: Any, value: Any) -> None:
    rec = Recorder()
    task = open_socket(rt, ws_server().url, rec)
    task.send(value, **rec.callbacks("send."))
    rec.wait_name("send.complete")
    assert rec.of("send.fail") == [invalid_option("sendSocketMessage", value)]
    assert rec.of("send.complete") == rec.of("send.fail")
    assert rec.count("send.success") == 0
    assert_still_open(task, rec)


@pytest.mark.parametrize("value", NOT_A_DICT, ids=NOT_A_DICT_IDS)
def test_close_with_options_not_a_dict_fails(rt: Any, ws_server: Any, value: Any) -> None:
    rec = Recorder()
    task = open_socket(rt, ws_server().url, rec)
    task.close(value, **rec.callbacks("close."))
    rec.wait_name("close.complete")
    assert rec.of("close.fail") == [invalid_option("closeSocket", value)]
    assert rec.count("close.success") == 0
    assert_still_open(task, rec)


def test_options_not_a_dict_without_callbacks_log_a_warning(
    rt: Any, ws_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="ftcore")
    rec = Recorder()
    task = open_socket(rt, ws_server().url, rec)
    task.send("hello")
    task.close(1000)
    warnings = [r.getMessage() for r in caplog.records if r.name == "ftcore"]
    assert warnings == [
        "ftcore: " + invalid_option("sendSocketMessage", "hello")["errMsg"],
        "ftcore: " + invalid_option("closeSocket", 1000)["errMsg"],
    ]
    assert_still_open(task, rec)


def test_options_not_a_dict_from_a_listener_fail_on_a_later_pass(rt: Any, ws_server: Any) -> None:
    rec = Recorder()
    order: List[str] = []
    task = rt.connectSocket(url=ws_server().url)

    def on_open(res: Dict[str, Any]) -> None:  # on the loop thread: the calls act at once
        task.send("hello", fail=lambda res: order.append("send.fail"))
        task.close("bye", fail=rec.listener("close.fail", lambda res: order.append("close.fail")))
        order.append("after the calls")

    task.onOpen(on_open)
    task.onMessage(rec.listener("Message"))
    task.onClose(rec.listener("Close"))
    rec.wait_name("close.fail")
    assert order == ["after the calls", "send.fail", "close.fail"]
    assert rec.threads() == ["ftcore-loop"]
    assert task.readyState == SocketTask.OPEN


def test_options_not_a_dict_from_another_thread(rt: Any, ws_server: Any) -> None:
    rec = Recorder()
    task = open_socket(rt, ws_server().url, rec)
    raised: List[BaseException] = []

    def call() -> None:
        try:
            task.send("hello", fail=rec.listener("send.fail"))
            task.close(["bye"], fail=rec.listener("close.fail"))
        except BaseException as error:  # noqa: BLE001 - the assertion below reports it
            raised.append(error)

    worker = threading.Thread(target=call)
    worker.start()
    worker.join()
    assert raised == []
    rec.wait_name("close.fail")
    assert rec.of("send.fail") == [invalid_option("sendSocketMessage", "hello")]
    assert rec.of("close.fail") == [invalid_option("closeSocket", ["bye"])]
    assert_still_open(task, rec)


def test_none_still_means_no_options(rt: Any, ws_server: Any) -> None:
    rec = Recorder()
    task = open_socket(rt, ws_server().url, rec)
    task.send(None, data="via keywords", **rec.callbacks("send."))
    assert rec.wait_name("Message") == {"data": "via keywords"}
    rec.wait_name("send.complete")
    assert rec.of("send.success") == [{"errMsg": "sendSocketMessage:ok"}]
    task.close(None)
    assert rec.wait_name("Close") == {"code": 1000, "reason": ""}
