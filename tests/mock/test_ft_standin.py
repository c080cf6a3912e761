"""`ft_mock` stands in for the default `ftcore.ft` during a test, as `responses` and `respx` do
for the network: code that bound `ft` at import (`miniprogram.py`) is served by the mock, from
any thread, and the real default is back when the test ends, passed or failed."""

from __future__ import annotations

import importlib
import inspect
import os
import queue
import threading
from types import ModuleType
from typing import Any, Iterator

import pytest

import ftcore
from ftcore._api.default import ROUTED, current_stand_in, stand_in
from ftcore.testing import FtMock
from tests.support.waits import WAIT

pytest_plugins = ["pytester"]


@pytest.fixture(scope="module")
def miniprogram() -> Iterator[ModuleType]:
    """The mini-program module, imported as an app imports it: `ft` is bound at import, before
    any `ft_mock` exists. The default runtime made by that import is closed after this module,
    since other folders check that no loop thread outlives their tests."""
    made_here = ftcore._default is None
    module = importlib.import_module("tests.mock.miniprogram")
    yield module
    if made_here:
        module.ft.close()


def test_request_is_served_by_the_mock(ft_mock: FtMock, miniprogram: ModuleType) -> None:
    ft_mock.http.add("GET", miniprogram.API + "/users/7", json={"name": "ft"})
    task = miniprogram.load_profile(7)
    assert isinstance(task, ftcore.RequestTask)
    assert task.result(WAIT)["data"] == {"name": "ft"}
    assert ft_mock.requests[0].header("Authorization") == "Bearer t"
    assert ft_mock.runtime.live_tasks() == []  # the task ran on the mock's runtime


def test_download_file_writes_into_the_mock_runtimes_sandbox(
    ft_mock: FtMock, miniprogram: ModuleType
) -> None:
    ft_mock.http.add("GET", miniprogram.API + "/avatars/7.png", body=b"\x89PNG-bytes")
    res = miniprogram.save_avatar(7).result(WAIT)
    user_data = ft_mock.runtime.env["USER_DATA_PATH"]
    assert res["filePath"] == os.path.join(user_data, "avatar-7.png")
    with open(res["filePath"], "rb") as saved:
        assert saved.read() == b"\x89PNG-bytes"


def test_upload_file_sends_the_file_to_the_mock(ft_mock: FtMock, miniprogram: ModuleType) -> None:
    ft_mock.http.add("POST", miniprogram.API + "/logs", status=201, body="stored")
    res = miniprogram.upload_log("started\n").result(WAIT)
    assert (res["statusCode"], res["data"]) == (201, "stored")
    body = ft_mock.requests[0].body
    assert b'name="log"; filename="app.log"' in body and b"started\n" in body
    assert b'name="app"' in body


def test_connect_socket_talks_to_the_mock_peer(ft_mock: FtMock, miniprogram: ModuleType) -> None:
    peer = ft_mock.ws.add(miniprogram.CHAT).expect("hello").send("welcome")
    heard: "queue.Queue[Any]" = queue.Queue()
    task = miniprogram.join_chat(heard.put)
    assert isinstance(task, ftcore.SocketTask)
    assert heard.get(timeout=WAIT) == "welcome"
    assert peer.connections[0].received == ["hello"]
    ft_mock.verify()


def test_calls_from_other_threads_are_served_too(ft_mock: FtMock, miniprogram: ModuleType) -> None:
    ft_mock.http.add("GET", miniprogram.API + "/users/8", json={"name": "worker"})
    results: "queue.Queue[Any]" = queue.Queue()
    worker = threading.Thread(target=lambda: results.put(miniprogram.load_profile(8).result(WAIT)))
    worker.start()
    worker.join(WAIT)
    assert results.get(timeout=WAIT)["data"] == {"name": "worker"}


def test_the_real_default_is_back_after_a_test_even_a_failed_one(
    pytester: pytest.Pytester,
    monkeypatch: pytest.MonkeyPatch,
    http_server: Any,
    miniprogram: ModuleType,
) -> None:
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    url = http_server.url + "/echo?standin=1"
    pytester.makepyfile(
        """
        from tests.mock import miniprogram

        URL = %r

        def test_fails_while_the_mock_stands_in(ft_mock):
            ft_mock.http.add("GET", URL, json={"from": "mock"})
            assert miniprogram.ft.request(url=URL).result(20)["data"] == {"from": "mock"}
            raise AssertionError("failed on purpose")

        def test_then_ft_is_the_real_default_again():
            assert miniprogram.ft.request(url=URL).result(20)["data"]["query"] == "standin=1"
        """
        % url
    )
    result = pytester.runpytest("-p", "ftcore.testing", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*AssertionError: failed on purpose*"])
    assert current_stand_in() is None
    assert miniprogram.ft is ftcore.ft
    assert miniprogram.ft.request(url=url).result(WAIT)["statusCode"] == 200


def test_stand_ins_nest_and_unwind() -> None:
    outer, inner = object(), object()
    with stand_in(outer):  # type: ignore[arg-type]
        with stand_in(inner):  # type: ignore[arg-type]
            assert current_stand_in() is inner
        assert current_stand_in() is outer
        with pytest.raises(KeyError), stand_in(inner):  # type: ignore[arg-type]
            raise KeyError("left by an exception")
        assert current_stand_in() is outer
    assert current_stand_in() is None


def test_every_public_runtime_method_is_routed_or_a_service_of_the_runtime_itself() -> None:
    """A new `ft.*` entry point must be added to ROUTED, or tests would send it to the network."""
    own = {
        "close",
        "transport",
        "timeout_for",
        "check_url",
        "resolve_path",
        "live_tasks",
        "interceptors_for",
    }
    public = {
        name
        for name, _ in inspect.getmembers(ftcore.Runtime, inspect.isfunction)
        if not name.startswith("_")
    }
    assert public - own == public & set(ROUTED)
