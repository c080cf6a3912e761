"""What a failed dial or socket read means for the user: the errno and reason of a urllib3,
socket or ssl error. (A malformed response is an `h1.H1ProtocolError`, which carries its own.)"""

from __future__ import annotations

import socket
import ssl
from typing import List, Optional

from urllib3 import exceptions as u3

from ftcore.errors import Errno, FtError

__all__ = ["map_error"]


def _chain(error: BaseException) -> List[BaseException]:
    seen: List[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if current is None or any(current is s for s in seen) or len(seen) > 20:
            continue
        seen.append(current)
        pending.extend(
            arg for arg in getattr(current, "args", ()) if isinstance(arg, BaseException)
        )
        reason = getattr(current, "reason", None)
        if isinstance(reason, BaseException):
            pending.append(reason)
        pending.append(current.__context__)  # type: ignore[arg-type]
        pending.append(current.__cause__)  # type: ignore[arg-type]
    return seen


def _ssl_reason(error: ssl.SSLError) -> str:
    reason = getattr(error, "reason", None) or ""
    detail = getattr(error, "verify_message", None) or ""
    if not reason and not detail:
        return str(error)
    return ("%s %s" % (reason, detail)).strip()


def map_error(error: BaseException) -> FtError:
    """The errno and reason of a urllib3/socket/ssl failure."""
    if isinstance(error, FtError):
        return error
    chain = _chain(error)

    def find(*kinds: type) -> Optional[BaseException]:
        for item in chain:
            if isinstance(item, kinds):
                return item
        return None

    found = find(ssl.CertificateError, ssl.SSLError)
    if found is not None and not isinstance(found, (ssl.SSLEOFError, ssl.SSLZeroReturnError)):
        if isinstance(found, ssl.SSLError):
            return FtError(Errno.TLS, "ssl error: %s" % _ssl_reason(found))
        return FtError(Errno.TLS, "ssl error: %s" % found)
    if find(socket.gaierror, u3.NameResolutionError):
        return FtError(Errno.NAME_NOT_RESOLVED)
    if find(ConnectionRefusedError):
        return FtError(Errno.CONNECTION_REFUSED)
    if find(socket.timeout, u3.ReadTimeoutError, u3.ConnectTimeoutError) and not find(
        u3.NewConnectionError
    ):
        return FtError(Errno.TIMEOUT)
    if find(ConnectionResetError, BrokenPipeError, ssl.SSLEOFError, ssl.SSLZeroReturnError):
        return FtError(Errno.CONNECTION_RESET)
    if find(ConnectionError):
        return FtError(Errno.CONNECTION_RESET, "connection reset: %s" % error)
    if find(u3.LocationValueError, u3.LocationParseError):
        return FtError(Errno.INVALID_URL)
    return FtError(Errno.NETWORK, "network error: %s" % (error,))
