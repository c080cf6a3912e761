"""Regressions found in review: parser disagreements, the slot queue, charsets, memory bounds."""

from __future__ import annotations

import os
import threading
from typing import Any, Callable
from urllib.parse import quote

import pytest

import ftcore
from ftcore import Errno
from tests.support.results import fail_of
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("api", ["request", "downloadFile"])
def test_a_backslash_in_the_authority_is_refused(rt: Any, http_server: Any, api: str) -> None:
    # urlsplit reads the host as allowed.example, urllib3 would connect to 127.0.0.1
    url = http_server.url + "\\@allowed.example/echo"
    task = getattr(rt, api)(url=url)
    assert fail_of(task).errno == Errno.INVALID_URL
    assert not http_server.requests_to("/echo\\@allowed.example/echo")


def test_a_redirect_to_a_backslash_authority_is_refused(
    make_runtime: Callable[..., ftcore.Runtime], http_server: Any
) -> None:
    rt = make_runtime({"domains": {"request": ["127.0.0.1"]}})
    port = http_server.url.rsplit(":", 1)[1]
    target = "http://localhost:%s\\@127.0.0.1:%s/echo" % (port, port)
    url = http_server.url + "/redirect/302?to=" + quote(target, safe="")
    error = fail_of(rt.request(url=url, header={"Authorization": "secret"}))
    assert error.errno == Errno.INVALID_URL


def test_a_socket_url_with_a_backslash_authority_is_refused(rt: Any) -> None:
    error = fail_of(rt.connectSocket(url="ws://127.0.0.1:9\\@allowed.example/"))
    assert error.errno == Errno.INVALID_URL


def test_a_long_queue_of_tasks_failing_at_once_neither_recurses_nor_hangs(
    make_runtime: Callable[..., ftcore.Runtime], http_server: Any
) -> None:
    rt = make_runtime({"maxConcurrent": {"http": 1}})
    held = rt.request(url=http_server.url + "/gate/slots-queue")
    assert http_server.gates.wait_arrived("slots-queue", 1, WAIT)
    path = os.path.join(rt.env["USER_DATA_PATH"], "gone.bin")
    with open(path, "wb") as handle:
        handle.write(b"x" * 100)
    uploads = [
        rt.uploadFile(url=http_server.url + "/upload", filePath=path, name="f")
        for _ in range(1500)  # deeper than the recursion limit if slots were handed over inline
    ]
    queued = threading.Event()
    rt.loop.call_soon_threadsafe(queued.set)  # after every upload has started and queued
    assert queued.wait(WAIT)
    os.unlink(path)  # every queued upload now fails as soon as it gets the slot
    http_server.gates.open("slots-queue")
    assert held.result(WAIT)["statusCode"] == 200
    for task in uploads:
        assert fail_of(task).errno == Errno.FILE_NOT_FOUND
    assert rt.request(url=http_server.url + "/json").result(WAIT)["statusCode"] == 200


def test_a_charset_that_is_not_a_text_encoding_falls_back_to_utf8(
    rt: Any, http_server: Any
) -> None:
    url = http_server.url + "/text?charset=utf-8&body=h%C3%A9llo&content_type=" + quote(
        "text/plain; charset=zlib", safe=""
    )
    res = rt.request(url=url, dataType="text").result(WAIT)
    assert res["data"] == "héllo"


def test_a_body_held_in_memory_is_bounded(
    make_runtime: Callable[..., ftcore.Runtime], http_server: Any
) -> None:
    rt = make_runtime({"limits": {"downloadMaxBytes": 64 * 1024}})
    error = fail_of(rt.request(url=http_server.url + "/bytes/300000"))
    assert error.errno == Errno.RESPONSE_TOO_LARGE
    small = rt.request(url=http_server.url + "/bytes/1000", responseType="arraybuffer")
    assert len(small.result(WAIT)["data"]) == 1000
