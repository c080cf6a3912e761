"""Dialling: from a name to a connected (and, with TLS, handshaken) socket, on the loop.

    resolve (worker thread; skipped for an IP literal) -> connect attempts -> TLS -> done

Attempts follow RFC 8305 (Happy Eyeballs): the resolved addresses are tried in its order
(`addresses.interleave`); the next attempt starts as soon as one fails, or after `stagger`
seconds (the "Connection Attempt Delay") if it has not finished, and then both race: the first
connected wins and the others are closed. While other addresses remain, an attempt is given
up after `attempt_timeout` seconds, so one blackholed address cannot take the whole dial; the
last runs until the dial's own `timeout`.

`cancel()` stops a dial at any stage (lookup, attempts, handshake): no watcher, timer or socket
is left, and a lookup in flight is dropped (see `resolver`). `done(result)` is called once,
on the loop thread and never from inside `start()`, with a `Connected` or a `DialError`;
never after `cancel()`.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Deque, Dict, List, Optional, Union

from ..transports import TlsSettings
from . import sockopts
from .addresses import Sockaddr, Target, interleave, ip_family
from .resolver import Lookup, LookupResult
from .tls import Handshake, tls_reason

if TYPE_CHECKING:
    from .net import Net

__all__ = ["Dial", "DialError", "Connected", "DialResult", "STAGGER_S", "ATTEMPT_TIMEOUT_S"]

STAGGER_S = 0.25  # RFC 8305 §5: the recommended Connection Attempt Delay
ATTEMPT_TIMEOUT_S = 2.0

_IN_PROGRESS = frozenset({0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY, errno.EINTR})
_UNREACHABLE = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT}
)


class DialError(Exception):
    """Why a dial failed. `kind`: "resolve", "refused", "unreachable", "timeout", "tls" or
    "network"; `reason`: a short text for errMsg; `cause`: the exception behind it."""

    def __init__(self, kind: str, reason: str, cause: Optional[BaseException] = None) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason
        self.cause = cause


class Connected:
    """A dial's success: the non-blocking socket (an `ssl.SSLSocket` with TLS), the peer's
    address, and `info` (ms since the epoch: `connectStart`/`End`, `SSLconnectionStart`/`End`,
    0 without TLS; DNS time is inside connectStart..connectEnd)."""

    __slots__ = ("sock", "family", "peer", "info")

    def __init__(self, sock: Any, family: int, peer: Sockaddr, info: Dict[str, float]) -> None:
        self.sock = sock
        self.family = family
        self.peer = peer
        self.info = info


DialResult = Union[Connected, DialError]


class _Attempt:
    __slots__ = ("sock", "family", "sockaddr", "timer")

    def __init__(self, sock: socket.socket, family: int, sockaddr: Sockaddr) -> None:
        self.sock = sock
        self.family = family
        self.sockaddr = sockaddr
        self.timer: Any = None


class Dial:
    """One connection being made; made by `Net.dial`, loop thread only."""

    def __init__(
        self,
        net: "Net",
        host: str,
        port: int,
        done: Callable[[DialResult], None],
        *,
        family: int = socket.AF_UNSPEC,
        timeout: Optional[float] = None,
        tls: Optional[TlsSettings] = None,
        server_hostname: Optional[str] = None,
        stagger: float = STAGGER_S,
        attempt_timeout: float = ATTEMPT_TIMEOUT_S,
        nodelay: Optional[bool] = None,
        keepalive: Optional[bool] = None,
    ) -> None:
        self._net = net
        self._loop = net.loop
        self.host = host
        self.port = port
        self._done: Optional[Callable[[DialResult], None]] = done
        self._family = family
        self._timeout = timeout
        self._tls = tls
        self._server_hostname = server_hostname if server_hostname is not None else host
        self._stagger = stagger
        self._attempt_timeout = attempt_timeout
        self._nodelay = nodelay
        self._keepalive = keepalive
        self._targets: Deque[Target] = deque()
        self._attempts: List[_Attempt] = []
        self._lookup: Optional[Lookup] = None
        self._handshake: Optional[Handshake] = None
        self._deadline: Any = None
        self._stagger_timer: Any = None
        self._last_error: Optional[BaseException] = None
        self.info: Dict[str, float] = {
            "connectStart": 0.0,
            "connectEnd": 0.0,
            "SSLconnectionStart": 0.0,
            "SSLconnectionEnd": 0.0,
        }

    def __repr__(self) -> str:
        return "<Dial %s:%d attempts=%d>" % (self.host, self.port, len(self._attempts))

    @property
    def finished(self) -> bool:
        return self._done is None

    # -- the stages ---------------------------------------------------------------------------

    def start(self) -> None:
        self.info["connectStart"] = _now_ms()
        if self._timeout is not None:
            self._deadline = self._loop.call_later(self._timeout, self._timed_out)
        family = ip_family(self.host)
        if family is not None:
            self._loop.call_soon(self._resolved, [_literal_target(self.host, self.port, family)])
            return
        flags = socket.AI_V4MAPPED if self._family == socket.AF_INET6 else 0
        try:
            self._lookup = self._net.resolver.lookup(
                self.host, self.port, self._family, flags, self._resolved
            )
        except RuntimeError as error:  # the resolver is closed: the runtime is going away
            self._loop.call_soon(self._fail, DialError("network", str(error), error))

    def _resolved(self, result: LookupResult) -> None:
        self._lookup = None
        if self._done is None:
            return
        if isinstance(result, BaseException):
            self._fail(DialError("resolve", "name not resolved: %s" % self.host, result))
            return
        targets = [
            _mapped(target) if self._family == socket.AF_INET6 else target
            for target in result
            if self._family in (socket.AF_UNSPEC, target[0])
            or (self._family == socket.AF_INET6 and target[0] == socket.AF_INET)
        ]
        if not targets:
            self._fail(DialError("resolve", "no address of the socket's family: %s" % self.host))
            return
        self._targets = deque(interleave(targets))
        self._next_attempt()

    def _next_attempt(self) -> None:
        """Start the next address's attempt (synchronous failures move on at once)."""
        loop = self._loop
        while self._targets:
            family, sockaddr = self._targets.popleft()
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as error:
                self._last_error = error
                continue
            sock.setblocking(False)
            try:
                code = sock.connect_ex(sockaddr)
            except OSError as error:
                code = error.errno or errno.EINVAL
            if code in _IN_PROGRESS:
                attempt = _Attempt(sock, family, sockaddr)
                self._attempts.append(attempt)
                loop.add_writer(sock, self._attempt_ready, attempt)
                if self._targets:
                    attempt.timer = loop.call_later(
                        self._attempt_timeout, self._attempt_timed_out, attempt
                    )
                    self._stagger_timer = loop.call_later(self._stagger, self._staggered)
                return
            sock.close()
            self._last_error = OSError(code, os.strerror(code))
        if not self._attempts:
            self._fail(_connect_error(self._last_error))

    def _staggered(self) -> None:
        """The running attempt is slow: race the next address against it."""
        self._stagger_timer = None
        self._next_attempt()

    def _attempt_ready(self, attempt: _Attempt) -> None:
        sock = attempt.sock
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._attempt_failed(attempt, OSError(code, os.strerror(code)))
            return
        self._attempts.remove(attempt)
        self._drop_attempt(attempt, close=False)
        self._drop_attempts()  # the losers of the race
        self._cancel_stagger()
        self._targets.clear()
        self.info["connectEnd"] = _now_ms()
        sockopts.configure(sock, nodelay=self._nodelay, keepalive=self._keepalive)
        if self._tls is None:
            self._succeed(sock, attempt.family, attempt.sockaddr)
            return
        self.info["SSLconnectionStart"] = _now_ms()
        handshake = self._handshake = Handshake(
            self._loop, sock, lambda error: self._tls_done(error, attempt)
        )
        handshake.start(self._net.tls.get(self._tls), self._server_hostname)

    def _attempt_timed_out(self, attempt: _Attempt) -> None:
        attempt.timer = None
        self._attempt_failed(attempt, TimeoutError(errno.ETIMEDOUT, "connect timed out"))

    def _attempt_failed(self, attempt: _Attempt, error: BaseException) -> None:
        self._attempts.remove(attempt)
        self._drop_attempt(attempt, close=True)
        self._last_error = error
        self._cancel_stagger()
        self._next_attempt()  # fails the dial when nothing is left to try

    def _tls_done(self, error: Optional[BaseException], attempt: _Attempt) -> None:
        handshake, self._handshake = self._handshake, None
        assert handshake is not None
        if self._done is None:
            return
        if error is not None:
            _close(handshake.sock)
            self._fail(DialError("tls", tls_reason(error), error))
            return
        self.info["SSLconnectionEnd"] = _now_ms()
        self._succeed(handshake.sock, attempt.family, attempt.sockaddr)

    def _timed_out(self) -> None:
        self._deadline = None
        self._fail(DialError("timeout", "timeout", TimeoutError(errno.ETIMEDOUT, "timed out")))

    # -- endings ------------------------------------------------------------------------------

    def _succeed(self, sock: Any, family: int, peer: Sockaddr) -> None:
        done = self._finish()
        if done is None:
            _close(sock)
            return
        done(Connected(sock, family, peer, self.info))

    def _fail(self, error: DialError) -> None:
        done = self._finish()
        if done is not None:
            done(error)

    def cancel(self) -> None:
        """Stop now, whatever the stage; `done` is never called. Idempotent."""
        self._finish()

    def _finish(self) -> Optional[Callable[[DialResult], None]]:
        """Release everything the dial holds; the `done` callback, once."""
        done, self._done = self._done, None
        if self._lookup is not None:
            self._lookup.cancel()
            self._lookup = None
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        self._cancel_stagger()
        self._drop_attempts()
        self._targets.clear()
        if self._handshake is not None:
            handshake, self._handshake = self._handshake, None
            handshake.cancel()
            _close(handshake.sock)
        self._net._forget_dial(self)
        return done

    def _drop_attempts(self) -> None:
        attempts, self._attempts = self._attempts, []
        for attempt in attempts:
            self._drop_attempt(attempt, close=True)

    def _drop_attempt(self, attempt: _Attempt, close: bool) -> None:
        if attempt.timer is not None:
            attempt.timer.cancel()
            attempt.timer = None
        if not self._loop.closed:
            self._loop.remove_writer(attempt.sock)
        if close:
            _close(attempt.sock)

    def _cancel_stagger(self) -> None:
        if self._stagger_timer is not None:
            self._stagger_timer.cancel()
            self._stagger_timer = None


def _literal_target(host: str, port: int, family: int) -> Target:
    if family == socket.AF_INET6:
        return (family, (host, port, 0, 0))
    return (family, (host, port))


def _mapped(target: Target) -> Target:
    """An IPv4 address for an IPv6 socket: `::ffff:a.b.c.d`."""
    family, sockaddr = target
    if family == socket.AF_INET:
        return (socket.AF_INET6, ("::ffff:" + sockaddr[0], sockaddr[1], 0, 0))
    return target


def _connect_error(error: Optional[BaseException]) -> DialError:
    code = getattr(error, "errno", None)
    if code == errno.ECONNREFUSED:
        return DialError("refused", "connection refused", error)
    if code in _UNREACHABLE:
        return DialError("unreachable", "unreachable: %s" % os.strerror(code), error)
    if code == errno.ETIMEDOUT:
        return DialError("timeout", "timeout", error)
    return DialError("network", "connect failed: %s" % (error,), error)


def _close(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _now_ms() -> float:
    return time.time() * 1000.0
