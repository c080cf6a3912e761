"""UDP argument checks: each failure is the seed's errCode with a short reason.

The codes: -1 system error (an argument other than address/port is wrong), -2 socket error
(the socket call failed), -3 no permission (domain list, broadcast without the flag,
EACCES/EPERM), 1 bad address, 2 bad port. `_udp.py` turns a `Refused` into one onError event.
"""

from __future__ import annotations

import errno as _errno
import re
import socket
from typing import Any, Callable, Dict, Optional, Tuple
from .._log import logger

SYSTEM_ERROR = -1
SOCKET_ERROR = -2
NO_PERMISSION = -3
BAD_ADDRESS = 1
BAD_PORT = 2

MAX_DATAGRAM = 65507  # 65,535 - 8 (UDP header) - 20 (IPv4 header)
FAMILIES = {"udp4": socket.AF_INET, "udp6": socket.AF_INET6}
FAMILY_NAMES = {socket.AF_INET: "IPv4", socket.AF_INET6: "IPv6"}
LIMITED_BROADCAST = "255.255.255.255"
HOST_NAME = re.compile(
    r"(?=.{1,253}\.?$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
    r"(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*\.?$"
)
NUMERIC = re.compile(r"[0-9.]+$")
REASONS = {
    _errno.EADDRINUSE: "address in use",
    _errno.EADDRNOTAVAIL: "address not available",
    _errno.ECONNREFUSED: "connection refused",
    _errno.EMSGSIZE: "message too long",
    _errno.ENOBUFS: "no buffer space",
    _errno.EACCES: "permission denied",
    _errno.EPERM: "operation not permitted",
    _errno.ENETUNREACH: "network unreachable",
    _errno.EHOSTUNREACH: "host unreachable",
    _errno.EINVAL: "invalid argument",
    _errno.EBADF: "socket is closed",
}

Sockaddr = Tuple[Any, ...]


class Refused(Exception):
    """A check failed: becomes one onError event."""

    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


class Reported:
    """`with Reported(error, method):` runs a call's checks and work, turning what fails into
    one `error(method, code, reason)`: a refusal, an OS error, or a policy plugin's bug (logged;
    it never breaks the caller). A class, not a generator context manager: it wraps every
    send, where the generator's machinery cost a microsecond of the two a datagram takes."""

    __slots__ = ("_error", "_method")

    def __init__(self, error: Callable[[str, int, str], None], method: str) -> None:
        self._error = error
        self._method = method

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: Any, failure: Optional[BaseException], trace: Any) -> bool:
        if failure is None:
            return False
        method = self._method
        if isinstance(failure, Refused):
            self._error(method, failure.code, failure.reason)
        elif isinstance(failure, OSError):
            self._error(method, *os_error(failure))
        elif isinstance(failure, Exception):
            logger.exception("ftcore: %s raised", method)  # __exit__ runs as its handler
            self._error(method, SYSTEM_ERROR, "internal error: %s" % failure)
        else:
            return False  # KeyboardInterrupt, SystemExit: not ours to swallow
        return True


def port(value: Any, allow_zero: bool) -> int:
    """The port as an int, or `Refused` errCode 2 (bool, str and fractions are refused)."""
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, float) and value.is_integer():
        port = int(value)
    else:
        raise Refused(BAD_PORT, "invalid port")
    if (0 if allow_zero else 1) <= port <= 65535:
        return port
    raise Refused(BAD_PORT, "invalid port")


def message(options: Dict[str, Any], copy_mutable: bool) -> Any:
    """The datagram to send: bytes, or a view of the caller's buffer; `Refused` -1."""
    message = options.get("message")
    if isinstance(message, str):
        data: Any = message.encode("utf-8")
    elif isinstance(message, (bytes, bytearray, memoryview)):
        data = message
        if isinstance(data, memoryview) and (data.ndim != 1 or data.itemsize != 1):
            try:
                data = data.cast("B")
            except TypeError:
                raise Refused(SYSTEM_ERROR, "invalid message") from None
    else:
        raise Refused(SYSTEM_ERROR, "invalid message")
    size = len(data)
    offset = options.get("offset")
    length = options.get("length")
    if offset is not None or length is not None:
        start = index(offset, 0, size, "offset")
        count = index(length, size - start, size - start, "length")
        if start != 0 or count != size:
            data = memoryview(data)[start : start + count]
            size = count
    if size > MAX_DATAGRAM:
        raise Refused(SYSTEM_ERROR, "message too long")
    if copy_mutable and not isinstance(data, bytes):
        data = bytes(data)
    return data


def index(value: Any, default: int, limit: int, name: str) -> int:
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= limit:
        raise Refused(SYSTEM_ERROR, "invalid " + name)
    return value


def literal(host: str, family: int) -> Optional[Sockaddr]:
    """The sockaddr of an IP literal, port 0, for a socket of `family`; None for a host name.

    Raises `Refused` errCode 1 for what is neither (256.1.1.1, 1.2.3, an IPv6 literal on a
    udp4 socket, a name with spaces)."""
    try:
        socket.inet_pton(socket.AF_INET, host)
    except OSError:
        pass
    else:
        if family == socket.AF_INET6:
            return ("::ffff:" + host, 0, 0, 0)
        return (host, 0)
    if ":" in host:
        if family != socket.AF_INET6:
            raise Refused(BAD_ADDRESS, "invalid address")
        try:
            if "%" not in host:
                socket.inet_pton(socket.AF_INET6, host)
                return (host, 0, 0, 0)
            return socket.getaddrinfo(  # a scoped literal (fe80::1%eth0): numeric, no DNS
                host, 0, socket.AF_INET6, socket.SOCK_DGRAM, 0, socket.AI_NUMERICHOST
            )[0][4]
        except (OSError, UnicodeError):
            raise Refused(BAD_ADDRESS, "invalid address") from None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")  # an internationalised name
        except UnicodeError:
            raise Refused(BAD_ADDRESS, "invalid address") from None
    if NUMERIC.match(host) or not HOST_NAME.match(host):
        raise Refused(BAD_ADDRESS, "invalid address")
    return None


def os_error(error: OSError) -> Tuple[int, str]:
    code = error.errno
    reason = REASONS.get(code) if code is not None else None
    if reason is None:
        reason = (error.strerror or str(error) or "socket error").lower()
    if code in (_errno.EACCES, _errno.EPERM):
        return NO_PERMISSION, reason
    return SOCKET_ERROR, reason
