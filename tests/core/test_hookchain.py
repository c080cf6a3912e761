"""Policy hooks called as plain functions (`_core.hookchain`) behave as pluggy's own call."""

from __future__ import annotations

import itertools
from typing import Any, Callable, Generator, List, Optional

import pluggy
import pytest

from ftcore import Errno, FtError, hookimpl, hookspecs
from ftcore._core.hookchain import chain

from .support import make_runtime, no_loop_thread_leak  # noqa: F401

RUNTIME, API, OPTIONS = object(), "request", {"url": "http://x/"}
_calls: List[str] = []  # what the plugins of a test were called with, in order


def _manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager("ftcore")
    pm.add_hookspecs(hookspecs)
    return pm


def _timeout_plugin(name: str, value: Optional[float], **marks: Any) -> Any:
    """A plugin whose `ftcore_timeout_choose` records its call and answers `value`; it takes
    only `api` and `options` (pluggy passes an implementation the arguments it names)."""

    class Plugin:
        @hookimpl(**marks)
        def ftcore_timeout_choose(self, options: Any, api: str) -> Optional[float]:
            assert (api, options) == (API, OPTIONS)
            _calls.append(name)
            return value

    return Plugin()


def _both(pm: pluggy.PluginManager, compiled: Callable[..., Any], name: str) -> Any:
    """Call the hook through pluggy and through the chain; both must call the same plugins
    in the same order and agree on the result."""
    hook = getattr(pm.hook, name)
    outcomes = []
    for call in (
        lambda: hook(runtime=RUNTIME, api=API, options=OPTIONS),
        lambda: compiled(RUNTIME, API, OPTIONS),
    ):
        _calls.clear()
        outcomes.append((call(), list(_calls)))
    assert outcomes[0] == outcomes[1]
    return outcomes[0]


MARKS = [{}, {"tryfirst": True}, {"trylast": True}]
VALUES = [None, 1.0]


def test_firstresult_order_and_stop_match_pluggy() -> None:
    """Three plugins, every mix of tryfirst/trylast and of answers, registered one by one."""
    for setup in itertools.product(itertools.product(MARKS, VALUES), repeat=3):
        pm = _manager()
        compiled = chain(pm.hook.ftcore_timeout_choose)
        assert _both(pm, compiled, "ftcore_timeout_choose") == (None, [])
        for index, (marks, value) in enumerate(setup):
            pm.register(_timeout_plugin("p%d" % index, value, **marks))
            _both(pm, compiled, "ftcore_timeout_choose")  # registered later: compiled again


def test_every_implementation_runs_and_an_exception_propagates_unchanged() -> None:
    pm = _manager()
    compiled = chain(pm.hook.ftcore_url_check)
    seen: List[str] = []
    refusal = FtError(Errno.DOMAIN_NOT_ALLOWED)

    class Allow:
        @hookimpl
        def ftcore_url_check(self, url: str) -> None:
            seen.append("allow " + url)

    class Refuse:
        @hookimpl(tryfirst=True)
        def ftcore_url_check(self, runtime: Any, api: str, url: str) -> str:
            seen.append("refuse")
            if url == "http://bad/":
                raise refusal
            return "checked"

    allow, refuse = Allow(), Refuse()
    pm.register(allow)
    pm.register(refuse)
    assert compiled(RUNTIME, API, "http://ok/") == ["checked"]
    assert seen == ["refuse", "allow http://ok/"]
    with pytest.raises(FtError) as info:
        compiled(RUNTIME, API, "http://bad/")
    assert info.value is refusal
    pm.unregister(refuse)  # unregistered later: no longer called
    seen.clear()
    assert compiled(RUNTIME, API, "http://bad/") == []
    assert seen == ["allow http://bad/"]


def test_a_hook_with_a_wrapper_runs_through_pluggy() -> None:
    pm = _manager()
    compiled = chain(pm.hook.ftcore_timeout_choose)
    pm.register(_timeout_plugin("inner", 3.0))

    class Wrapper:
        @hookimpl(wrapper=True)
        def ftcore_timeout_choose(self) -> Generator[None, Any, Any]:
            _calls.append("before")
            result = yield
            _calls.append("after")
            return result * 2

    class OldWrapper:
        @hookimpl(hookwrapper=True)
        def ftcore_timeout_choose(self) -> Generator[None, Any, None]:
            outcome = yield
            outcome.force_result(outcome.get_result() + 1)

    pm.register(Wrapper())
    assert _both(pm, compiled, "ftcore_timeout_choose") == (6.0, ["before", "inner", "after"])
    pm.register(OldWrapper())
    assert _both(pm, compiled, "ftcore_timeout_choose")[0] == 7.0


def test_the_runtime_sees_a_plugin_registered_or_blocked_after_it_was_made() -> None:
    rt = make_runtime(config={"domains": {"request": ["ok.example.com"]}}, autostart=False)
    try:
        with pytest.raises(FtError):
            rt.check_url("request", "https://other.example.com/")
        rt.pm.set_blocked("ftcore_policies.domains")
        rt.check_url("request", "https://other.example.com/")

        class NoHttp:
            @hookimpl
            def ftcore_url_check(self, url: str) -> None:
                if url.startswith("http:"):
                    raise FtError(Errno.DOMAIN_NOT_ALLOWED)

        rt.pm.register(NoHttp())
        with pytest.raises(FtError):
            rt.check_url("request", "http://ok.example.com/")
        rt.check_url("request", "https://ok.example.com/")
    finally:
        rt.close()


def test_monitoring_and_tracing_see_every_call() -> None:
    """While pluggy's call monitoring is on, the chain calls through pluggy, so the monitor
    hears each call; once it is off, the compiled path is taken again."""
    pm = _manager()
    pm.register(_timeout_plugin("a", 3.0))
    compiled = chain(pm.hook.ftcore_timeout_choose)
    heard: List[str] = []
    undo = pm.add_hookcall_monitoring(
        lambda name, impls, kwargs: heard.append(name), lambda *args: None
    )
    assert compiled(RUNTIME, API, OPTIONS) == 3.0
    assert heard == ["ftcore_timeout_choose"]
    undo()
    assert compiled(RUNTIME, API, OPTIONS) == 3.0
    assert heard == ["ftcore_timeout_choose"]
