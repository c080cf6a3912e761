"""Calls whose options are not a dict fail through `fail` (600012), never by raising.

API.md §2: "Options that are wrong (missing url, bad method, bad type) fail the task through
`fail` (asynchronously, like every other failure), never by raising from the API call."
Keyword callbacks still hear it; a task-returning call returns a task that fails.
"""

from __future__ import annotations

import threading
from typing import Any, Dict, List

import pytest

import ftcore

pytestmark = pytest.mark.timeout(30)

NOT_A_DICT = ["http://127.0.0.1:1/", ["url"], 7]


def invalid_option(api: str, value: Any) -> str:
    return "%s:fail invalid option: options must be a dict, not %s" % (api, type(value).__name__)


@pytest.mark.parametrize("value", NOT_A_DICT, ids=["str", "list", "int"])
@pytest.mark.parametrize("api", ["request", "downloadFile", "uploadFile", "connectSocket"])
def test_task_calls_fail_through_fail(api: str, value: Any) -> None:
    heard: List[Dict[str, Any]] = []
    done = threading.Event()
    with ftcore.Runtime(entrypoints=False) as rt:
        task = getattr(rt, api)(value, fail=heard.append, complete=lambda res: done.set())
        assert done.wait(10)
        assert [res["errMsg"] for res in heard] == [invalid_option(api, value)]
        assert heard[0]["errno"] == ftcore.Errno.INVALID_OPTION
        with pytest.raises(ftcore.FtError) as raised:
            task.result(5)
        assert raised.value.errno == ftcore.Errno.INVALID_OPTION


@pytest.mark.parametrize("api", ["sendSocketMessage", "closeSocket"])
def test_global_socket_calls_fail_through_fail(api: str) -> None:
    heard: List[Dict[str, Any]] = []
    done = threading.Event()
    with ftcore.Runtime(entrypoints=False) as rt:
        result = getattr(rt, api)("x", fail=heard.append, complete=lambda res: done.set())
        assert result is None
        assert done.wait(10)
        assert [res["errMsg"] for res in heard] == [invalid_option(api, "x")]


def test_none_still_means_no_options() -> None:
    with ftcore.Runtime(entrypoints=False) as rt:
        with pytest.raises(ftcore.FtError) as raised:
            rt.request(None, url="not a url").result(5)
        assert raised.value.errno == ftcore.Errno.INVALID_URL
