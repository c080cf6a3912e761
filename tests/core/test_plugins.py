"""The plugin manager: registration order, overrides, autoload switches, loud misspellings."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator

import pluggy
import pytest

import ftcore
from ftcore import hookimpl
from ftcore._core.plugins import AUTOLOAD_ENV, BUILTIN_PLUGINS

from .support import make_runtime, no_loop_thread_leak  # noqa: F401

REPO = Path(__file__).resolve().parents[2]
EP_MODULE = "ftcore_test_fake_ep"
EP_NAME = "fake-ep"


@pytest.fixture
def fake_entry_point(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A distribution on sys.path whose `ftcore` entry point is a module written here."""
    (tmp_path / (EP_MODULE + ".py")).write_text(
        textwrap.dedent(
            """
            import ftcore

            MADE = object()

            @ftcore.hookimpl
            def ftcore_http_transport_make(runtime):
                return ("entry point", MADE)
            """
        )
    )
    dist = tmp_path / "ftcore_test_fake_ep-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: ftcore-test-fake-ep\nVersion: 1.0\n"
    )
    (dist / "entry_points.txt").write_text("[ftcore]\n%s = %s\n" % (EP_NAME, EP_MODULE))
    monkeypatch.delenv(AUTOLOAD_ENV, raising=False)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield EP_MODULE
    sys.modules.pop(EP_MODULE, None)


class _Explicit:
    @hookimpl
    def ftcore_http_transport_make(self, runtime: Any) -> Any:
        return "explicit"


def _explicit_plugin() -> Any:
    return _Explicit()


def test_builtins_only_without_entry_points() -> None:
    rt = make_runtime(autostart=False)
    try:
        assert [name for name, _ in rt.pm.list_name_plugin()] == list(BUILTIN_PLUGINS)
    finally:
        rt.close()


def test_order_builtin_then_entry_point_then_explicit(fake_entry_point: str) -> None:
    explicit = _explicit_plugin()
    rt = ftcore.Runtime(plugins=[explicit], autostart=False)
    try:
        names = [name for name, _ in rt.pm.list_name_plugin()]
        plugins = [plugin for _, plugin in rt.pm.list_name_plugin()]
        assert names[: len(BUILTIN_PLUGINS)] == list(BUILTIN_PLUGINS)
        assert names[len(BUILTIN_PLUGINS)] == EP_NAME
        assert plugins[len(BUILTIN_PLUGINS)] is sys.modules[EP_MODULE]
        assert plugins[-1] is explicit and len(plugins) == len(BUILTIN_PLUGINS) + 2
        assert set(plugins) == rt.pm.get_plugins()
        # pluggy calls the last registered first: the explicit plugin's factory wins
        assert rt.transport("http") == "explicit"
    finally:
        rt.close()


def test_an_entry_point_overrides_the_builtins(fake_entry_point: str) -> None:
    rt = ftcore.Runtime(autostart=False)
    try:
        made = rt.transport("http")
        assert made == ("entry point", sys.modules[EP_MODULE].MADE)
        assert rt.transport("http") is made  # made once
    finally:
        rt.close()


def test_autoload_env_disables_entry_points(
    fake_entry_point: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(AUTOLOAD_ENV, "1")
    rt = ftcore.Runtime(autostart=False)
    try:
        assert EP_NAME not in dict(rt.pm.list_name_plugin())
    finally:
        rt.close()


def test_entrypoints_false_disables_entry_points(fake_entry_point: str) -> None:
    rt = ftcore.Runtime(entrypoints=False, autostart=False)
    try:
        assert EP_NAME not in dict(rt.pm.list_name_plugin())
    finally:
        rt.close()


def test_user_transport_overrides_a_builtin() -> None:
    sentinel = object()

    class MyTransport:
        @hookimpl
        def ftcore_http_transport_make(self, runtime: Any) -> Any:
            assert runtime is rt
            return sentinel

    rt = make_runtime(plugins=[MyTransport()], autostart=False)
    try:
        assert rt.transport("http") is sentinel
    finally:
        rt.close()


def test_a_builtin_default_is_trylast() -> None:
    # a user plugin returning a timeout wins over the builtin policy
    class Fixed:
        @hookimpl
        def ftcore_timeout_choose(self, runtime: Any, api: str, options: Any) -> float:
            return 1.5

    rt = make_runtime(plugins=[Fixed()], autostart=False)
    try:
        assert rt.timeout_for("request", {"timeout": 9000}) == 1.5
    finally:
        rt.close()


def test_missing_transport_raises_transport_unavailable() -> None:
    rt = make_runtime(autostart=False)
    try:
        rt.pm.set_blocked("ftcore_udp")  # unregisters the builtin UDP transport
        with pytest.raises(ftcore.FtError) as info:
            rt.transport("udp")
        assert info.value.errno == ftcore.Errno.TRANSPORT_UNAVAILABLE
        assert info.value.errMsg == "no udp transport"
    finally:
        rt.close()


def test_plugins_by_module_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ftcore_test_named_plugin.py").write_text(
        "import ftcore\n"
        "@ftcore.hookimpl\n"
        "def ftcore_websocket_transport_make(runtime):\n"
        "    return 'named'\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        rt = make_runtime(plugins=["ftcore_test_named_plugin"], autostart=False)
        try:
            assert rt.transport("websocket") == "named"
        finally:
            rt.close()
    finally:
        sys.modules.pop("ftcore_test_named_plugin", None)


def test_a_misspelt_hook_fails_loudly() -> None:
    class Misspelt:
        @hookimpl
        def ftcore_http_transport_mak(self, runtime: Any) -> Any:
            return object()

    with pytest.raises(pluggy.PluginValidationError, match="ftcore_http_transport_mak"):
        make_runtime(plugins=[Misspelt()])


def test_a_hook_with_a_wrong_argument_fails_loudly() -> None:
    class WrongArgs:
        @hookimpl
        def ftcore_http_transport_make(self, rt: Any) -> Any:
            return object()

    with pytest.raises(pluggy.PluginValidationError):
        make_runtime(plugins=[WrongArgs()])


def test_import_ftcore_is_light() -> None:
    code = (
        "import ftcore, sys, threading; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('urllib3', 'ssl', '_ssl') "
        "or m.startswith('ftcore_'))); "
        "print(ftcore._default, sorted(t.name for t in threading.enumerate()))"
    )
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(REPO / "plugins")])
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    modules, runtime = out.stdout.strip().splitlines()
    assert modules == "[]"
    # the default runtime `ft` is made on first use, not at import
    assert runtime == "None ['MainThread']"
