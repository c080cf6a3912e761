"""Every hook a plugin may implement, grouped by family.

Plugins implement them with ``@ftcore.hookimpl``. Registration order: builtin plugins, then
the ``ftcore`` entry-point group, then ``Runtime(plugins=...)``. pluggy calls the plugin
registered last first, and the builtin transports are ``trylast``, so any plugin of yours
overrides them. Every hook runs on the runtime's loop thread unless it says otherwise, and must
not block it: do blocking work on your own threads and report back with
``runtime.loop.call_soon_threadsafe``.

Transports implement the protocols of `ftcore.transports`; everything a mini-program relies on
(errMsg, errno, encoding, redirects, progress, domain lists) is applied by the core around them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Dict, Optional

import pluggy

if TYPE_CHECKING:
    from ._api.runtime import Runtime
    from ._core.task import Task
    from .transports import HttpTransport, TcpTransport, UdpTransport, WsTransport

hookspec = pluggy.HookspecMarker("ftcore")
hookimpl = pluggy.HookimplMarker("ftcore")


# -- transports: choose one (firstresult) -----------------------------------------------------


@hookspec(firstresult=True)
def ftcore_http_transport_make(runtime: "Runtime") -> "Optional[HttpTransport]":
    """Make the runtime's HTTP transport, used by request, downloadFile and uploadFile.

    Called once, on first use. Stops at the first non-None result. Raise `FtError`
    (errno TRANSPORT_UNAVAILABLE) when a dependency is missing: HTTP calls then fail with it.
    """


@hookspec(firstresult=True)
def ftcore_websocket_transport_make(runtime: "Runtime") -> "Optional[WsTransport]":
    """Make the runtime's WebSocket transport. Called once, on first use; first non-None wins."""


@hookspec(firstresult=True)
def ftcore_udp_transport_make(runtime: "Runtime") -> "Optional[UdpTransport]":
    """Make the runtime's UDP transport. Called once, on first use; first non-None wins."""


@hookspec(firstresult=True)
def ftcore_tcp_transport_make(runtime: "Runtime") -> "Optional[TcpTransport]":
    """Make the runtime's TCP transport (`createTCPSocket`). Called once, on first use; first
    non-None wins. The builtin one (`ftcore_tcp`) adapts the stream layer, `runtime.net`."""


# -- policies: every plugin contributes -------------------------------------------------------


@hookspec
def ftcore_options_prepare(runtime: "Runtime", api: str, options: Dict[str, Any]) -> None:
    """Inspect or rewrite the options of a task before it starts (header rules, interceptors).

    `options` is the task's own copy: mutate it in place. Raise `FtError` to refuse the task;
    it then fails with that errno. Return values are ignored.
    """


@hookspec
def ftcore_url_check(runtime: "Runtime", api: str, url: str) -> None:
    """Refuse a destination by raising `FtError` (domain lists).

    Called for the first URL of a task and again for every redirect hop; for UDP with
    ``udp://host:port`` for every destination. Return values are ignored.
    """


@hookspec(firstresult=True)
def ftcore_timeout_choose(
    runtime: "Runtime", api: str, options: Dict[str, Any]
) -> Optional[float]:
    """The whole-task timeout in seconds for `api` with these options; first non-None wins.

    Return ``float("inf")`` for no timeout.
    """


@hookspec(firstresult=True)
def ftcore_path_resolve(runtime: "Runtime", path: str, mode: str) -> Optional[str]:
    """Map a `filePath` argument to a real absolute path the task may use; first non-None wins.

    `mode` is ``"read"`` (uploadFile's source) or ``"write"`` (downloadFile's destination).
    Raise `FtError` (errno 603303) for a path outside the sandbox. May be called on any thread.
    """


@hookspec(firstresult=True)
def ftcore_result_rewrite(
    runtime: "Runtime", api: str, res: Dict[str, Any], ok: bool
) -> Optional[Dict[str, Any]]:
    """Replace the result dict a task settles with (interceptors' success/fail/complete).

    Return a dict to replace `res` (success, fail, complete and `result()` all see it), or
    None to keep it. First non-None wins.
    """


# -- observers: every plugin is told ----------------------------------------------------------


@hookspec
def ftcore_task_observe(task: "Task", event: str, payload: Dict[str, Any]) -> None:
    """A task event, for logging and metrics: ``"started"`` (payload: the prepared options)
    and ``"settled"`` (payload: the result dict). Must not raise or block."""
