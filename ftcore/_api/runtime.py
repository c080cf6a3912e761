"""The Runtime: config, plugins, the loop thread, and the `ft.*` entry points."""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterable, List, Optional

from .._core.config import load_config
from .._core.options import Options, merge_options, options_error
from .._core.plugins import make_plugin_manager
from .._core.sandbox import Sandbox
from .._core.slots import Slots
from ..errors import Errno, FtError
from ..loop import EventLoop

if TYPE_CHECKING:
    from .request import RequestTask
    from .download import DownloadTask
    from .upload import UploadTask
    from .socket import SocketTask
    from .udp import UDPSocket
    from .._core.task import Task

__all__ = ["Runtime"]

logger = logging.getLogger("ftcore")


class Runtime:
    """One configured instance of the API, with its own loop thread (unless `autostart=False`)."""

    def __init__(
        self,
        config: Options = None,
        plugins: Iterable[Any] = (),
        entrypoints: bool = True,
        autostart: bool = True,
    ) -> None:
        self.config = load_config(config)
        self.pm = make_plugin_manager(plugins, entrypoints)
        self.hook = self.pm.hook
        self.sandbox = Sandbox(self.config["sandbox"])  # may fail: before the loop's fds exist
        self.loop = EventLoop()
        self.env = {"USER_DATA_PATH": self.sandbox.user}
        self.http_slots = Slots(self.config["maxConcurrent"]["http"], self.loop.call_soon)
        self.interceptors: Dict[Optional[str], Dict[str, Callable[..., Any]]] = {}
        self._lock = threading.RLock()
        self._tasks: Dict[int, "Task"] = {}
        self._transports: Dict[str, Any] = {}
        self._closed = False
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
        from .request import RequestTask

        return self._launch(RequestTask, options, kwargs)

    def downloadFile(self, options: Options = None, **kwargs: Any) -> "DownloadTask":  # noqa: N802
        from .download import DownloadTask

        return self._launch(DownloadTask, options, kwargs)

    def uploadFile(self, options: Options = None, **kwargs: Any) -> "UploadTask":  # noqa: N802
        from .upload import UploadTask

        return self._launch(UploadTask, options, kwargs)

    def connectSocket(self, options: Options = None, **kwargs: Any) -> "SocketTask":  # noqa: N802
        from .socket import SocketTask

        return self._launch(SocketTask, options, kwargs)

    def sendSocketMessage(self, options: Options = None, **kwargs: Any) -> None:  # noqa: N802
        from .socket import SEND_API, global_send, refuse

        error = options_error(options)
        if error is not None:
            refuse(self, SEND_API, error, kwargs)
            return
        global_send(self, merge_options(options, kwargs))

    def closeSocket(self, options: Options = None, **kwargs: Any) -> None:  # noqa: N802
        from .socket import CLOSE_API, global_close, refuse

        error = options_error(options)
        if error is not None:
            refuse(self, CLOSE_API, error, kwargs)
            return
        global_close(self, merge_options(options, kwargs))

    def onSocketOpen(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Open", callback)

    def onSocketMessage(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Message", callback)

    def onSocketError(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Error", callback)

    def onSocketClose(self, callback: Callable[[Dict[str, Any]], Any]) -> None:  # noqa: N802
        self._global_socket_listener("Close", callback)

    def createUDPSocket(self, type: str = "udp4") -> "UDPSocket":  # noqa: N802,A002
        from .udp import UDPSocket

        return UDPSocket(self, type)

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

    def transport(self, kind: str) -> Any:
        """The transport of `kind` ("http", "websocket", "udp"), made on first use."""
        transport = self._transports.get(kind)  # made already: no lock (once per request)
        if transport is not None:
            return transport
        with self._lock:
            transport = self._transports.get(kind)
            if transport is None:
                make = getattr(self.hook, "ftcore_%s_transport_make" % kind)
                transport = make(runtime=self)
                if transport is None:
                    raise FtError(Errno.TRANSPORT_UNAVAILABLE, "no %s transport" % kind)
                self._transports[kind] = transport
            return transport

    def timeout_for(self, api: str, options: Dict[str, Any]) -> float:
        """Seconds allowed for the whole task (inf: none)."""
        timeout = self.hook.ftcore_timeout_choose(runtime=self, api=api, options=options)
        return float("inf") if timeout is None else float(timeout)

    def check_url(self, api: str, url: str) -> None:
        """Raise the `FtError` of the first policy that refuses `url`."""
        self.hook.ftcore_url_check(runtime=self, api=api, url=url)

    def resolve_path(self, path: str, mode: str) -> str:
        resolved = self.hook.ftcore_path_resolve(runtime=self, path=path, mode=mode)
        if resolved is None:
            raise FtError(Errno.PATH_NOT_PERMITTED)
        return str(resolved)

    def _prepare(self, api: str, options: Dict[str, Any]) -> Dict[str, Any]:
        prepared = dict(options)
        self.hook.ftcore_options_prepare(runtime=self, api=api, options=prepared)
        return prepared

    def _rewrite_result(self, api: str, res: Dict[str, Any], ok: bool) -> Dict[str, Any]:
        hook = self.hook.ftcore_result_rewrite
        if not hook.get_hookimpls():  # a pluggy call costs µs even with nothing to call
            return res
        try:
            replaced = hook(runtime=self, api=api, res=res, ok=ok)
        except Exception:
            logger.exception("ftcore: a result hook raised for %s", api)
            return res
        return res if replaced is None else replaced

    def _observe(self, task: "Task", event: str, payload: Dict[str, Any]) -> None:
        hook = self.hook.ftcore_task_observe
        if not hook.get_hookimpls():  # the usual case: nobody observes, skip pluggy's call
            return
        try:
            hook(task=task, event=event, payload=payload)
        except Exception:
            logger.exception("ftcore: an observer raised on %s %s", task, event)

    def _launch(self, task_class: Any, options: Options, kwargs: Dict[str, Any]) -> Any:
        task = task_class(self, merge_options(options, kwargs))
        task._refusal = options_error(options)
        return task.launch()

    def _track(self, task: "Task") -> None:
        with self._lock:
            if self._closed:
                raise RuntimeError("this Runtime is closed")
            self._tasks[task.id] = task

    def _untrack(self, task: "Task") -> None:
        with self._lock:
            self._tasks.pop(task.id, None)

    def live_tasks(self) -> List["Task"]:
        """Tasks not yet ended, oldest first."""
        with self._lock:
            return list(self._tasks.values())

    def _global_socket_listener(self, name: str, callback: Callable[..., Any]) -> None:
        from .socket import global_listen

        global_listen(self, name, callback)

    # -- shutdown -----------------------------------------------------------------------------

    def close(self) -> None:
        """Abort every task, close every socket, stop the loop and remove the temp area."""
        if self.loop.in_loop_thread():
            raise RuntimeError("close() on the loop thread would deadlock; use another thread")
        with self._lock:
            if self._closed:
                return
            self._closed = True
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
        self.loop.close()
        self.sandbox.close()

    @property
    def closed(self) -> bool:
        return self._closed
