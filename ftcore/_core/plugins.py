"""The plugin manager: builtins first, then entry points, then the host's own plugins."""

from __future__ import annotations

import importlib
import os
from typing import Any, Iterable

import pluggy

from .. import hookspecs
from .entrypoints import declared_names

__all__ = ["BUILTIN_PLUGINS", "AUTOLOAD_ENV", "make_plugin_manager"]

# Module names, registered under these names (the entry points of the same names are then
# skipped by pluggy, so a source tree and an installed distribution behave the same).
BUILTIN_PLUGINS = (
    "ftcore_policies.headers",
    "ftcore_policies.timeouts",
    "ftcore_policies.domains",
    "ftcore_policies.sandbox",
    "ftcore_policies.interceptors",
    "ftcore_urllib3",
    "ftcore_websocket",
    "ftcore_udp",
    "ftcore_tcp",
)

AUTOLOAD_ENV = "FTCORE_DISABLE_PLUGIN_AUTOLOAD"


def make_plugin_manager(
    plugins: Iterable[Any] = (), entrypoints: bool = True
) -> pluggy.PluginManager:
    """Register every plugin and fail loudly on a hook that matches no spec (a misspelling)."""
    pm = pluggy.PluginManager("ftcore")
    pm.add_hookspecs(hookspecs)
    for name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(name), name=name)
    if entrypoints and not os.environ.get(AUTOLOAD_ENV) and _unregistered_entry_points(pm):
        pm.load_setuptools_entrypoints("ftcore")
    for plugin in plugins:
        pm.register(importlib.import_module(plugin) if isinstance(plugin, str) else plugin)
    pm.check_pending()
    return pm


def _unregistered_entry_points(pm: pluggy.PluginManager) -> bool:
    """Whether pluggy's entry-point scan could register anything: it skips a name that is
    registered or blocked, and usually only our builtins declare entry points."""
    names = declared_names("ftcore")
    if names is None:
        return True
    return any(pm.get_plugin(name) is None and not pm.is_blocked(name) for name in names)
