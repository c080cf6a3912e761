"""The Runtime: config, plugins, the loop thread, and the `ft.*` entry points."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional, Union

from . import lazy
from .._core.config import load_config
from .._core.hookchain import chain
from .._core.options import Options, merge_options, options_error
from .._core.plugins import make_plugin_manager
from .._core.sandbox import Sandbox
from .._core.slots import Slots
from .._core.stash import Stash
from ..errors import Errno, FtError
from ..loop import EventLoop
from .._log import logger

if TYPE_CHECKING:
    from .request import RequestTask
    from .download import DownloadTask
    from .upload import UploadTask
    from .socket import SocketTask
    from .udp import UDPSocket
    from .tcp import TCPSocket
    from .eventsource import EventSource
    from .._core.endpoint import Endpoint
    from .._core.task import Task
    from .._net import Net

    Tracked = Union[Task, Endpoint]  # what the runtime keeps alive until it ends

__all__ = ["Runtime"]



class Runtime:
    """One configured instance of the API, with its own loop thread (unless `autostart=False`)."""

    def __init__(
        self,
        config: Options = None,
        plugins: Iterable[Any] = (),
        entrypoints: bool = True,
        autostart: bool = True,
        clock: Optional[Callable[[], float]] = None,
    ) -> None:
        self.config = load_config(config)
        self.pm = make_plugin_manager(plugins, entrypoints)
        self.hook = self.pm.hook
        # the per-task policy hooks, called as plain functions (`_core.hookchain`)
        self._options_prepare = chain(self.hook.ftcore_options_prepare)
        self._url_check = chain(self.hook.ftcore_url_check)
        self._timeout_choose = chain(self.hook.ftcore_timeout_choose)
        self._path_resolve = chain(self.hook.ftcore_path_resolve)
        self._result_rewrite = chain(self.hook.ftcore_result_rewrite)
        self._task_observe = chain(self.hook.ftcore_task_observe)
        self.sandbox = Sandbox(self.config["sandbox"])  # may fail: before the loop's fds exist
        self.loop = EventLoop(clock or time.monotonic, host_driven=not autostart)
        self.env = {"USER_DATA_PATH": self.sandbox.user}
        self.http_slots = Slots(self.config["maxConcurrent"]["http"], self.loop.call_soon)
        self.stash = Stash()  # what the API modules keep per runtime, under their own keys
        self.interceptors: Dict[Optional[str], Dict[str, Callable[..., Any]]] = {}
        self._lock = threading.RLock()
        self._tasks: Dict[int, "Tracked"] = {}
        self._transports: Dict[str, Any] = {}
        self._net: "Optional[Net]" = None
        self._closer: Optional[int] = None  # the thread that runs close()
        self._shut = threading.Event()  # set once close() has finished
        self._thread: Optional[threading.Thread] = None
        if autostart:
            self._thread = threading.Thread(
                target=self.loop.run_forever, name="ftcore-loop", daemon=True
            )
            self._thread.start()

    def __enter__(self) -> "Runtime":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- the API ------------------------------------------------------------------------------

    def request(self, options: Options = None, **kwargs: Any) -> "RequestTask":
        return self._launch(lazy.RequestTask, options, kwargs)

    def downloadFile(self, options: Options = None, **kwargs: Any) -> "DownloadTask":  # noqa: N802
        return self._launch(lazy.DownloadTask, options, kwargs)

    def uploadFile(self, options: Options = None, **kwargs: Any) -> "UploadTask":  # noqa: N802
        return self._launch(lazy.UploadTask, options, kwargs)

    def connectSocket(self, options: Options = None, **kwargs: Any) -> "SocketTask":  # noqa: N802
        return self._launch(lazy.SocketTask, options, kwargs)

    def sendSocketMessage(self, options: Options = None, **kwargs: Any) -> None:  # noqa: N802
        error = options_error(options)
        if error is not None:
            lazy.refuse(self, lazy.SEND_API, error, kwargs)
            return
        lazy.global_send(self, merge_options(options, kwargs))

    def closeSocket(self, options: Options = None, **kwargs: Any) -> None:  # noqa: N802
        error = options_error(options)
        if error is not None:
            lazy.refuse(self, lazy.CLOSE_API, error, kwargs)
            return
        lazy.global_close(self, merge_options(options, kwargs))

    def onSocketOpen(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Open", callback)

    def onSocketMessage(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Message", callback)

    def onSocketError(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Error", callback)

    def onSocketClose(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Close", callback)

    def createUDPSocket(self, type: str = "udp4") -> "UDPSocket":  # noqa: N802,A002
        return lazy.UDPSocket(self, type)

    def connectEventSource(  # noqa: N802
        self, options: Options = None, **kwargs: Any
    ) -> "EventSource":
        """An `EventSource` (API.md §10): `url`, `header`, `withCredentials`, and `retry`
        (ms before reconnecting, until the server sets it; default 3000)."""
        return lazy.EventSource(self, merge_options(options, kwargs), options_error(options))

    def createTCPSocket(  # noqa: N802
        self, options: Union[Options, str] = None, **kwargs: Any
    ) -> "TCPSocket":
        """`createTCPSocket()` (IPv4), `createTCPSocket({"type": "ipv6"})` or `type="ipv6"`."""
        return lazy.TCPSocket(self, options, kwargs)

    def addInterceptor(  # noqa: N802
        self, api: Optional[str], hooks: Dict[str, Callable[..., Any]]
    ) -> None:
        """Hooks `invoke`, `success`, `fail`, `complete` for `api` (None: every API)."""
        unknown = set(hooks) - {"invoke", "success", "fail", "complete"}
        if unknown:
            raise ValueError("unknown interceptor hook(s): %s" % ", ".join(sorted(unknown)))
        with self._lock:
            self.interceptors[api] = dict(hooks)

    def removeInterceptor(self, api: Optional[str]) -> None:  # noqa: N802
        with self._lock:
            self.interceptors.pop(api, None)

    # -- services for tasks and plugins -------------------------------------------------------

    def interceptors_for(self, api: str) -> List[Dict[str, Callable[..., Any]]]:
        """The hooks that apply to `api`, the global interceptor's first: a copy taken under
        the runtime's lock, so the caller runs them with no lock held."""
        if not self.interceptors:  # the usual case, checked without the lock: twice per task
            return []
        with self._lock:
            chosen = [self.interceptors.get(key) for key in (None, api)]
        return [hooks for hooks in chosen if hooks]

    @property
    def net(self) -> "Net":
        """The stream layer (`ftcore._net`) the runtime's transports share: one resolver, one
        TLS context per settings, one read buffer. Made on first use; closed with the runtime."""
        net = self._net
        if net is None:
            from .._net import Net

            with self._lock:
                if self._closer is not None:
                    raise FtError(Errno.TRANSPORT_UNAVAILABLE, "the runtime is closed")
                net = self._net
                if net is None:
                    net = self._net = Net(self.loop)
        return net

    def transport(self, kind: str) -> Any:
        """The transport of `kind` ("http", "websocket", "udp", "tcp"), made on first use.

        The plugin makes it with no lock of ours held (plugin code never runs under one); of
        two threads racing to make the first, one transport is kept, the other closed."""
        transport = self._transports.get(kind)  # made already: no lock (once per request)
        if transport is not None:
            return transport
        make = getattr(self.hook, "ftcore_%s_transport_make" % kind)
        made = make(runtime=self)
        if made is None:
            raise FtError(Errno.TRANSPORT_UNAVAILABLE, "no %s transport" % kind)
        with self._lock:
            transport = self._transports.setdefault(kind, made)
        if transport is not made:
            made.close()
        return transport

    def timeout_for(self, api: str, options: Dict[str, Any]) -> float:
        """Seconds allowed for the whole task (inf: none)."""
        timeout = self._timeout_choose(self, api, options)
        return float("inf") if timeout is None else float(timeout)

    def check_url(self, api: str, url: str) -> None:
        """Raise the `FtError` of the first policy that refuses `url`."""
        self._url_check(self, api, url)

    def resolve_path(self, path: str, mode: str) -> str:
        resolved = self._path_resolve(self, path, mode)
        if resolved is None:
            raise FtError(Errno.PATH_NOT_PERMITTED)
        return str(resolved)

    def _prepare(self, api: str, options: Dict[str, Any]) -> Dict[str, Any]:
        prepared = dict(options)
        self._options_prepare(self, api, prepared)
        return prepared

    def _rewrite_result(self, api: str, res: Dict[str, Any], ok: bool) -> Dict[str, Any]:
        try:
            replaced = self._result_rewrite(self, api, res, ok)
        except Exception:
            logger.exception("ftcore: a result hook raised for %s", api)
            return res
        return res if replaced is None else replaced

    def _observe(self, task: "Task", event: str, payload: Dict[str, Any]) -> None:
        try:
            self._task_observe(task, event, payload)
        except Exception:
            logger.exception("ftcore: an observer raised on %s %s", task, event)

    def _launch(self, task_class: Any, options: Options, kwargs: Dict[str, Any]) -> Any:
        task = task_class(self, merge_options(options, kwargs))
        return task.launch(options_error(options))

    def _track(self, task: "Tracked") -> None:
        with self._lock:
            if self._closer is not None:
                raise RuntimeError("this Runtime is closed")
            self._tasks[task.id] = task

    def _untrack(self, task: "Tracked") -> None:
        with self._lock:
            self._tasks.pop(task.id, None)

    def live_tasks(self) -> List["Tracked"]:
        """Tasks and sockets not yet ended, oldest first."""
        with self._lock:
            return list(self._tasks.values())

    def _global_socket_listener(self, name: str, callback: Callable[..., Any]) -> None:
        lazy.global_listen(self, name, callback)

    # -- shutdown -----------------------------------------------------------------------------

    def close(self) -> None:
        """Abort every task, close every socket, stop the loop and remove the temp area. A
        close() racing another returns once the first has finished: whichever returns, the
        runtime's threads and sockets are gone. One made by the closing thread itself (a
        listener the shutdown calls on a host-driven runtime) returns at once."""
        if self.loop.in_loop_thread():
            raise RuntimeError("close() on the loop thread would deadlock; use another thread")
        me = threading.get_ident()
        with self._lock:
            closer = self._closer
            if closer is None:
                self._closer = me
        if closer is not None:
            if closer != me:
                self._shut.wait()
            return
        try:
            self._tear_down()
        finally:
            self._shut.set()

    def _tear_down(self) -> None:
        done = threading.Event()

        def shut_down() -> None:
            try:
                for task in self.live_tasks():
                    task._shutdown()
                for transport in list(self._transports.values()):
                    try:
                        transport.close()
                    except Exception:
                        logger.exception("ftcore: closing %r raised", transport)
            finally:
                done.set()

        if self._thread is not None and self._thread.is_alive():
            self.loop.call_soon_threadsafe(shut_down)
            done.wait()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        else:
            shut_down()
            while self.loop.has_ready():
                self.loop.run_once(0)
        if self._net is not None:  # the loop has stopped: what transports left, and lookups
            self._net.close()
        self.loop.close()
        self.sandbox.close()

    @property
    def closed(self) -> bool:
        return self._closer is not None

    @property
    def host_driven(self) -> bool:
        """Made with `autostart=False`: no loop thread; the host runs `loop.run_once()`."""
        return self.loop.host_driven
