"""TLS on the loop: one client context per `TlsSettings`, and a non-blocking handshake.

Contexts are costly to make (loading the system store takes ~0.2 s) and safe to share, so a
runtime keeps one per settings (`TlsContexts`, thread-safe: a worker may ask too). The
handshake wraps a connected non-blocking socket and calls `do_handshake` each time the
socket is ready for what OpenSSL last asked for; the loop never blocks on it.

`ssl` is imported on first use: a runtime that never speaks TLS never pays for it.
"""

from __future__ import annotations

import threading
from typing import Any, Callable, Dict, Optional

from ..transports import TlsSettings

__all__ = ["TlsContexts", "Handshake", "tls_reason"]


class TlsContexts:
    """The client `ssl.SSLContext` of each `TlsSettings`, made once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._contexts: Dict[TlsSettings, Any] = {}

    def get(self, settings: TlsSettings) -> Any:
        context = self._contexts.get(settings)  # made already: no lock
        if context is not None:
            return context
        with self._lock:
            context = self._contexts.get(settings)
            if context is None:
                context = self._contexts[settings] = settings.client_context()
            return context


class Handshake:
    """The client side of one TLS handshake, driven by readiness on `loop`.

    `done(None)` once it completed (then `sock` is the `ssl.SSLSocket`), or `done(error)`;
    either from a loop callback or from `start()` itself. `cancel()` stops watching the
    socket (the caller closes it).
    """

    __slots__ = ("_loop", "sock", "_done", "_ssl", "_watching")

    def __init__(self, loop: Any, sock: Any, done: Callable[[Optional[BaseException]], None]):
        self._loop = loop
        self.sock = sock
        self._done: Optional[Callable[[Optional[BaseException]], None]] = done
        self._ssl: Any = None
        self._watching = False

    def start(self, context: Any, server_hostname: Optional[str]) -> None:
        import ssl

        self._ssl = ssl
        try:
            self.sock = context.wrap_socket(
                self.sock, server_hostname=server_hostname, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError, ValueError) as error:
            self._finish(error)
            return
        self._step()

    def _step(self) -> None:
        ssl, sock, loop = self._ssl, self.sock, self._loop
        try:
            sock.do_handshake()
        except ssl.SSLWantReadError:
            loop.remove_writer(sock)
            loop.add_reader(sock, self._step)
            self._watching = True
            return
        except ssl.SSLWantWriteError:
            loop.remove_reader(sock)
            loop.add_writer(sock, self._step)
            self._watching = True
            return
        except (ssl.SSLError, OSError) as error:
            self._finish(error)
            return
        self._finish(None)

    def _finish(self, error: Optional[BaseException]) -> None:
        self._unwatch()
        done, self._done = self._done, None
        if done is not None:
            done(error)

    def cancel(self) -> None:
        self._done = None
        self._unwatch()

    def _unwatch(self) -> None:
        if self._watching:
            self._watching = False
            if not self._loop.closed:
                self._loop.remove_reader(self.sock)
                self._loop.remove_writer(self.sock)


def tls_reason(error: BaseException) -> str:
    """What went wrong, as said in errMsg: the verification message when there is one."""
    message = getattr(error, "verify_message", None) or error
    return "ssl error: %s" % (message,)
