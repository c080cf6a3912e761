"""The builtin policies (plugins/ftcore_policies) through the real Runtime paths."""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

import ftcore
from ftcore import Errno, FtError
from ftcore._core.task import Task

from .support import (
    LOOP_THREAD,
    WAIT,
    InstantTask,
    Recorder,
    make_runtime,
    no_loop_thread_leak,  # noqa: F401
)


@pytest.fixture(scope="module")
def rt() -> Iterator[ftcore.Runtime]:
    runtime = make_runtime()
    yield runtime
    runtime.close()


def task_for(api: str) -> Any:
    return type("Instant_" + api, (InstantTask,), {"api": api})


def prepared(rt: ftcore.Runtime, api: str = "request", **options: Any) -> Dict[str, Any]:
    """The options a task of `api` starts with, after every policy."""
    return task_for(api)(rt, options).launch().result(WAIT)["options"]


def refused(rt: ftcore.Runtime, api: str = "request", **options: Any) -> FtError:
    with pytest.raises(FtError) as info:
        task_for(api)(rt, options).launch().result(WAIT)
    return info.value


# -- headers ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["Referer", "referer", "REFERER", "rEfErEr"])
def test_referer_is_dropped(rt: ftcore.Runtime, name: str) -> None:
    header = {name: "https://evil.example.com/", "X-Keep": "1"}
    got = prepared(rt, url="https://a/", header=header)["header"]
    assert got == {"X-Keep": "1", "content-type": "application/json"}
    assert name in header  # the caller's dict is left alone


@pytest.mark.parametrize(
    "header",
    [
        {"X-A": "a\r\nInjected: 1"},
        {"X-A": "a\nb"},
        {"X-A": "a\rb"},
        {"X-A": "a\0b"},
        {"X-A\r\nInjected": "v"},
        {"X\nA": "v"},
        {"X\0A": "v"},
        {"": "empty name"},
        {"Referer": "a\r\nb"},
    ],
)
def test_header_injection_is_refused(rt: ftcore.Runtime, header: Dict[str, str]) -> None:
    for api in ("request", "downloadFile", "uploadFile", "connectSocket"):
        error = refused(rt, api, url="https://a/", header=header)
        assert error.errno == Errno.INVALID_HEADER == 600013
        assert error.errMsg.startswith(api + ":fail invalid header")
        assert error.res == {"errMsg": error.errMsg, "errno": 600013}


def test_default_content_type_for_request_only(rt: ftcore.Runtime) -> None:
    assert prepared(rt, url="https://a/")["header"] == {"content-type": "application/json"}
    for api in ("downloadFile", "uploadFile", "connectSocket"):
        assert prepared(rt, api, url="https://a/")["header"] == {}


@pytest.mark.parametrize("name", ["content-type", "Content-Type", "CONTENT-TYPE"])
def test_callers_content_type_is_kept(rt: ftcore.Runtime, name: str) -> None:
    got = prepared(rt, url="https://a/", header={name: "text/plain"})["header"]
    assert got == {name: "text/plain"}


def test_header_values_become_strings(rt: ftcore.Runtime) -> None:
    got = prepared(rt, "downloadFile", url="https://a/", header={"X-N": 1, "X-B": True})
    assert got["header"] == {"X-N": "1", "X-B": "true"}


@pytest.mark.parametrize("header", [["X-A", "1"], "X-A: 1", 5])
def test_non_dict_header_is_refused(rt: ftcore.Runtime, header: Any) -> None:
    error = refused(rt, url="https://a/", header=header)
    assert error.errno == Errno.INVALID_OPTION
    assert error.errMsg == "request:fail header must be an object"


def test_other_apis_are_left_alone(rt: ftcore.Runtime) -> None:
    options = {"header": "not a dict"}
    rt.hook.ftcore_options_prepare(runtime=rt, api="udp", options=options)
    assert options == {"header": "not a dict"}


# -- timeouts ---------------------------------------------------------------------------------


def test_per_call_timeout_wins() -> None:
    rt = make_runtime(config={"networkTimeout": {"request": 2000}}, autostart=False)
    try:
        assert rt.timeout_for("request", {"timeout": 1500}) == 1.5
        assert rt.timeout_for("request", {"timeout": 0.5}) == 0.0005
        assert rt.timeout_for("request", {}) == 2.0
        assert rt.timeout_for("request", {"timeout": None}) == 2.0
        assert rt.timeout_for("downloadFile", {}) == 60.0
        assert rt.timeout_for("uploadFile", {}) == 60.0
        assert rt.timeout_for("connectSocket", {"timeout": 3000}) == 3.0
        assert rt.timeout_for("udp", {}) == float("inf")
    finally:
        rt.close()


@pytest.mark.parametrize("timeout", [0, -1, "1000", True, False, float("nan"), [1000]])
def test_invalid_timeout_is_refused(rt: ftcore.Runtime, timeout: Any) -> None:
    with pytest.raises(FtError) as info:
        rt.timeout_for("request", {"timeout": timeout})
    assert info.value.errno == Errno.INVALID_OPTION
    assert "invalid timeout" in info.value.errMsg


# -- domain lists -----------------------------------------------------------------------------

DOMAINS = {
    "request": [
        "api.example.com",
        "HTTPS://Secure.Example.com:8443",
        "http://plain.example.com",
        "https://dflt.example.com:443",
        "[::1]",
        "https://[2001:db8::1]",
        "fe80::2",
    ],
    "downloadFile": [],
    "socket": ["wss://ws.example.com"],
    "udp": ["udp.example.com", "udp://10.0.0.1:53"],
}


@pytest.fixture(scope="module")
def domain_rt() -> Iterator[ftcore.Runtime]:
    runtime = make_runtime(config={"domains": DOMAINS}, autostart=False)
    yield runtime
    runtime.close()


@pytest.mark.parametrize(
    "url",
    [
        "https://api.example.com/x",
        "http://api.example.com/x",
        "http://api.example.com:8080/x",
        "wss://api.example.com/",
        "https://API.Example.COM/x",
        "https://api.example.com:443/x?q=1#f",
        "https://secure.example.com:8443/p",
        "HTTPS://SECURE.example.com:8443/p",
        "http://plain.example.com/",
        "http://plain.example.com:80/",
        "https://dflt.example.com/",
        "http://[::1]:8080/",
        "https://[::1]/",
        "https://[2001:db8::1]/",
        "https://[2001:DB8::1]:443/",
        "http://[fe80::2]:81/",
    ],
)
def test_url_in_domain_list(domain_rt: ftcore.Runtime, url: str) -> None:
    domain_rt.check_url("request", url)


@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example.com/",
        "https://api.example.com.evil.com/",
        "https://sub.api.example.com/",
        "https://example.com/",
        "https://secure.example.com/",  # the origin says port 8443
        "http://secure.example.com:8443/",  # ... and https
        "https://plain.example.com/",
        "http://plain.example.com:8080/",
        "http://dflt.example.com/",
        "https://dflt.example.com:8443/",
        "http://[::2]/",
        "http://[2001:db8::1]/",
        "https://[2001:db8::1]:8443/",
        "http://127.0.0.1/",
        "http:///no-host",
        "file:///etc/passwd",
        "not a url",
        "",
    ],
)
def test_url_not_in_domain_list(domain_rt: ftcore.Runtime, url: str) -> None:
    with pytest.raises(FtError) as info:
        domain_rt.check_url("request", url)
    assert info.value.errno == Errno.DOMAIN_NOT_ALLOWED == 600002
    assert info.value.errMsg == "url not in domain list"


def test_empty_list_allows_nothing(domain_rt: ftcore.Runtime) -> None:
    for url in ("https://api.example.com/", "http://127.0.0.1/"):
        with pytest.raises(FtError):
            domain_rt.check_url("downloadFile", url)


def test_missing_key_allows_everything(domain_rt: ftcore.Runtime) -> None:
    domain_rt.check_url("uploadFile", "https://anything.example.org/x")
    make = make_runtime(autostart=False)
    try:
        for api in ("request", "downloadFile", "uploadFile", "connectSocket", "udp"):
            make.check_url(api, "https://anywhere.example.net/")
    finally:
        make.close()


def test_each_api_has_its_list(domain_rt: ftcore.Runtime) -> None:
    domain_rt.check_url("connectSocket", "wss://ws.example.com/chat")
    domain_rt.check_url("connectSocket", "wss://ws.example.com:443/chat")
    with pytest.raises(FtError):
        domain_rt.check_url("connectSocket", "ws://ws.example.com/")
    with pytest.raises(FtError):
        domain_rt.check_url("connectSocket", "wss://api.example.com/")  # request's list
    domain_rt.check_url("udp", "udp://udp.example.com:9999")
    domain_rt.check_url("udp", "udp://10.0.0.1:53")
    with pytest.raises(FtError):
        domain_rt.check_url("udp", "udp://10.0.0.1:54")


def test_hook_is_callable_directly(domain_rt: ftcore.Runtime) -> None:
    domain_rt.hook.ftcore_url_check(runtime=domain_rt, api="request", url="https://api.example.com")
    with pytest.raises(FtError):
        domain_rt.hook.ftcore_url_check(runtime=domain_rt, api="request", url="https://x.org")


def test_a_task_refused_by_the_domain_list() -> None:
    class Checked(Task):
        api = "request"

        def _start(self, options: Dict[str, Any]) -> None:
            self._runtime.check_url(self.api, options["url"])
            self._loop.call_soon(self._succeed, {})

    with make_runtime(config={"domains": {"request": ["ok.example.com"]}}) as rt:
        assert Checked(rt, {"url": "https://ok.example.com/"}).launch().result(WAIT)
        rec = Recorder()
        task = Checked(rt, dict(url="https://no.example.com/", **rec.options())).launch()
        with pytest.raises(FtError) as info:
            task.result(WAIT)
        assert info.value.errMsg == "request:fail url not in domain list"
        assert info.value.errno == 600002
        assert rec.names() == ["fail", "complete"]


# -- sandbox ----------------------------------------------------------------------------------


def path_refused(rt: ftcore.Runtime, path: Any, mode: str) -> FtError:
    with pytest.raises(FtError) as info:
        rt.resolve_path(path, mode)
    assert info.value.errno == Errno.PATH_NOT_PERMITTED == 603303
    return info.value


def test_relative_paths_are_under_user_data_path(rt: ftcore.Runtime) -> None:
    user = rt.env["USER_DATA_PATH"]
    assert os.path.isabs(user) and os.path.isdir(user)
    assert user == os.path.realpath(user)
    assert rt.resolve_path("a.txt", "write") == os.path.join(user, "a.txt")
    assert rt.resolve_path("dir/../b.txt", "read") == os.path.join(user, "b.txt")
    assert rt.resolve_path(os.path.join(user, "c.txt"), "write") == os.path.join(user, "c.txt")


def test_escaping_paths_are_refused(rt: ftcore.Runtime, tmp_path: Path) -> None:
    for mode in ("read", "write"):
        path_refused(rt, "../../../../etc/passwd", mode)
        path_refused(rt, "/etc/passwd", mode)
        path_refused(rt, str(tmp_path / "outside.txt"), mode)
        path_refused(rt, rt.sandbox.root + "-sibling/x", mode)  # a prefix is not a parent
        path_refused(rt, "", mode)
        path_refused(rt, "a\0b", mode)
        path_refused(rt, None, mode)
        path_refused(rt, b"a.txt", mode)


def test_symlink_out_of_the_sandbox_is_refused(rt: ftcore.Runtime, tmp_path: Path) -> None:
    outside = tmp_path / "secret"
    outside.mkdir()
    (outside / "file").write_text("secret")
    link = os.path.join(rt.env["USER_DATA_PATH"], "link-out")
    os.symlink(str(outside), link)
    try:
        for mode in ("read", "write"):
            path_refused(rt, "link-out/file", mode)
            path_refused(rt, link, mode)
    finally:
        os.unlink(link)


def test_symlink_inside_the_sandbox_is_followed(rt: ftcore.Runtime) -> None:
    user = rt.env["USER_DATA_PATH"]
    os.makedirs(os.path.join(user, "real"), exist_ok=True)
    os.symlink(os.path.join(user, "real"), os.path.join(user, "alias"))
    try:
        assert rt.resolve_path("alias/f", "write") == os.path.join(user, "real", "f")
    finally:
        os.unlink(os.path.join(user, "alias"))


def test_write_mode_is_limited_to_user_and_temp_areas(rt: ftcore.Runtime) -> None:
    sandbox = rt.sandbox
    fd, temp_file = sandbox.temp_file(".json")
    os.close(fd)
    assert temp_file.endswith(".json") and os.path.dirname(temp_file) == sandbox.temp
    assert rt.resolve_path(temp_file, "write") == temp_file
    assert rt.resolve_path(temp_file, "read") == temp_file
    elsewhere = [
        os.path.join(sandbox.root, "top.txt"),
        os.path.join(os.path.dirname(sandbox.temp), "rt-someone-else", "f"),
    ]
    for path in elsewhere:
        path_refused(rt, path, "write")
        assert rt.resolve_path(path, "read") == path  # read mode: anywhere in the root


def test_given_sandbox_is_used_and_kept(tmp_path: Path) -> None:
    root = tmp_path / "box"
    rt = make_runtime(config={"sandbox": str(root)}, autostart=False)
    user, temp = rt.env["USER_DATA_PATH"], rt.sandbox.temp
    assert rt.sandbox.root == os.path.realpath(str(root))
    assert user.startswith(rt.sandbox.root + os.sep) and temp.startswith(rt.sandbox.root + os.sep)
    Path(user, "keep.txt").write_text("kept")
    fd, temp_file = rt.sandbox.temp_file()
    os.write(fd, b"temp")
    os.close(fd)
    rt.close()
    assert Path(user, "keep.txt").read_text() == "kept"
    assert not os.path.exists(temp)
    again = make_runtime(config={"sandbox": str(root)}, autostart=False)
    try:
        assert again.env["USER_DATA_PATH"] == user  # the user area outlives runtimes
        assert again.sandbox.temp != temp
    finally:
        again.close()


def test_default_sandbox_is_removed_at_close() -> None:
    rt = make_runtime(autostart=False)
    root = rt.sandbox.root
    Path(rt.env["USER_DATA_PATH"], "f").write_text("x")
    assert os.path.isdir(root)
    rt.close()
    assert not os.path.exists(root)


def test_a_plugin_may_map_paths_first(tmp_path: Path) -> None:
    class Mapper:
        @ftcore.hookimpl
        def ftcore_path_resolve(self, runtime: Any, path: str, mode: str) -> Any:
            return str(tmp_path / "mapped") if path == "special" else None

    rt = make_runtime(plugins=[Mapper()], autostart=False)
    try:
        assert rt.resolve_path("special", "read") == str(tmp_path / "mapped")
        path_refused(rt, "/etc/passwd", "read")  # the builtin still guards the rest
    finally:
        rt.close()


# -- interceptors -----------------------------------------------------------------------------


@pytest.fixture
def irt() -> Iterator[ftcore.Runtime]:
    runtime = make_runtime()
    yield runtime
    runtime.close()


def test_invoke_rewrites_options(irt: ftcore.Runtime) -> None:
    def invoke(options: Dict[str, Any]) -> None:
        options["url"] = options["url"] + "?signed=1"
        options["header"] = {"X-Sig": "abc"}

    irt.addInterceptor("request", {"invoke": invoke})
    got = prepared(irt, url="https://a/x")
    assert got["url"] == "https://a/x?signed=1"
    # the header rules still apply after the interceptor
    assert got["header"] == {"X-Sig": "abc", "content-type": "application/json"}


def test_invoke_returning_a_dict_replaces_options(irt: ftcore.Runtime) -> None:
    irt.addInterceptor("request", {"invoke": lambda options: {"url": "https://b/"}})
    got = prepared(irt, url="https://a/", data="x")
    assert got["url"] == "https://b/" and "data" not in got


def test_invoke_returning_false_refuses(irt: ftcore.Runtime) -> None:
    irt.addInterceptor("request", {"invoke": lambda options: False})
    rec = Recorder()
    task = InstantTask(irt, dict(url="https://a/", **rec.options())).launch()
    with pytest.raises(FtError) as info:
        task.result(WAIT)
    assert info.value.errMsg == "request:fail intercepted"
    assert info.value.errno == Errno.INTERCEPTED
    assert rec.names() == ["fail", "complete"]
    assert rec.calls[0][1]["errMsg"] == "request:fail intercepted"


def test_interceptors_are_per_api(irt: ftcore.Runtime) -> None:
    irt.addInterceptor("downloadFile", {"invoke": lambda options: False})
    assert prepared(irt, url="https://a/")["url"] == "https://a/"
    with pytest.raises(FtError, match="downloadFile:fail intercepted"):
        task_for("downloadFile")(irt, {"url": "https://a/"}).launch().result(WAIT)


def test_success_hook_replaces_the_result_everywhere(irt: ftcore.Runtime) -> None:
    seen: List[Any] = []

    def on_success(res: Dict[str, Any]) -> Dict[str, Any]:
        seen.append(("success hook", dict(res), threading.current_thread().name))
        return {"errMsg": res["errMsg"], "replaced": True}

    def on_complete(res: Dict[str, Any]) -> None:
        seen.append(("complete hook", res.get("replaced")))

    irt.addInterceptor("request", {"success": on_success, "complete": on_complete})
    rec = Recorder()
    task = InstantTask(irt, rec.options()).launch()
    res = task.result(WAIT)
    assert res == {"errMsg": "request:ok", "replaced": True}
    assert rec.names() == ["success", "complete"]
    assert rec.calls[0][1] is res and rec.calls[1][1] is res
    assert seen[0][0] == "success hook" and seen[0][2] == LOOP_THREAD
    assert seen[1] == ("complete hook", True)  # complete hooks see the replacement


def test_fail_hook_replaces_the_failure(irt: ftcore.Runtime) -> None:
    irt.addInterceptor("request", {"invoke": lambda options: False})
    irt.addInterceptor(
        None,
        {"fail": lambda res: {"errMsg": "request:fail rewritten", "errno": 42, "extra": 1}},
    )
    rec = Recorder()
    task = InstantTask(irt, rec.options()).launch()
    with pytest.raises(FtError) as info:
        task.result(WAIT)
    err = info.value
    assert err.res == {"errMsg": "request:fail rewritten", "errno": 42, "extra": 1}
    assert err.errMsg == "request:fail rewritten" and err.errno == 42
    assert rec.calls[0][1] is err.res and rec.calls[1][1] is err.res


def test_fail_hook_with_a_bad_errno_does_not_hang_the_task(irt: ftcore.Runtime) -> None:
    irt.addInterceptor("request", {"invoke": lambda options: False})
    irt.addInterceptor(None, {"fail": lambda res: {"errMsg": "request:fail x", "errno": "E42"}})
    rec = Recorder()
    task = InstantTask(irt, rec.options()).launch()
    with pytest.raises(FtError) as info:
        task.result(WAIT)
    assert info.value.res == {"errMsg": "request:fail x", "errno": "E42"}
    assert rec.names() == ["fail", "complete"]


def test_remove_interceptor(irt: ftcore.Runtime) -> None:
    irt.addInterceptor("request", {"invoke": lambda options: False})
    irt.addInterceptor(None, {"invoke": lambda options: False})
    irt.removeInterceptor("request")
    with pytest.raises(FtError, match="intercepted"):
        InstantTask(irt, {}).launch().result(WAIT)
    irt.removeInterceptor(None)
    assert InstantTask(irt, {}).launch().result(WAIT)["errMsg"] == "request:ok"
    irt.removeInterceptor("never added")


def test_global_runs_before_per_api(irt: ftcore.Runtime) -> None:
    order: List[str] = []

    def hooks(tag: str) -> Dict[str, Any]:
        return {
            "invoke": lambda options: order.append(tag + ".invoke"),
            "success": lambda res: order.append(tag + ".success"),
            "complete": lambda res: order.append(tag + ".complete"),
        }

    irt.addInterceptor("request", hooks("api"))
    irt.addInterceptor(None, hooks("global"))
    InstantTask(irt, {}).launch().result(WAIT)
    assert order == [
        "global.invoke",
        "api.invoke",
        "global.success",
        "global.complete",
        "api.success",
        "api.complete",
    ]


def test_unknown_interceptor_hook_is_refused(irt: ftcore.Runtime) -> None:
    with pytest.raises(ValueError, match="sucess"):
        irt.addInterceptor("request", {"sucess": lambda res: None})


def test_raising_invoke_is_logged_and_fails_the_task(
    irt: ftcore.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    def invoke(options: Dict[str, Any]) -> None:
        raise ValueError("interceptor bug")

    irt.addInterceptor("request", {"invoke": invoke})
    rec = Recorder()
    with caplog.at_level(logging.ERROR, logger="ftcore"):
        task = InstantTask(irt, rec.options()).launch()
        with pytest.raises(FtError):
            task.result(WAIT)
    assert rec.names() == ["fail", "complete"]
    assert any(
        r.name == "ftcore" and r.exc_info and isinstance(r.exc_info[1], ValueError)
        for r in caplog.records
    )


def test_raising_result_hook_is_logged_and_the_task_completes(
    irt: ftcore.Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    def on_success(res: Dict[str, Any]) -> None:
        raise ValueError("result hook bug")

    irt.addInterceptor(None, {"success": on_success})
    rec = Recorder()
    with caplog.at_level(logging.ERROR, logger="ftcore"):
        res = InstantTask(irt, rec.options()).launch().result(WAIT)
    assert res["errMsg"] == "request:ok"
    assert rec.names() == ["success", "complete"]
    assert any(
        r.name == "ftcore" and r.exc_info and isinstance(r.exc_info[1], ValueError)
        for r in caplog.records
    )


def test_abort_is_never_lost_behind_an_interceptor(irt: ftcore.Runtime) -> None:
    class Never(Task):
        api = "request"

        def _start(self, options: Dict[str, Any]) -> None:
            pass

    irt.addInterceptor("request", {"invoke": lambda options: None})
    task = Never(irt, {}).launch()
    task.abort()
    with pytest.raises(FtError, match="request:fail abort"):
        task.result(WAIT)
