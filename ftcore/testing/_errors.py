"""The failures a scripted route can stand for, as a real transport reports them."""

from __future__ import annotations

from typing import Dict, Optional, Tuple, Union

from ..errors import Errno, FtError

__all__ = ["ERROR_KINDS", "transport_error"]

ERROR_KINDS: Dict[str, Tuple[Errno, Optional[str]]] = {
    "refused": (Errno.CONNECTION_REFUSED, None),
    "reset": (Errno.CONNECTION_RESET, None),
    "tls": (Errno.TLS, "ssl error: certificate verify failed"),
    "dns": (Errno.NAME_NOT_RESOLVED, None),
    "network": (Errno.NETWORK, None),
}


def transport_error(kind: Union[str, Exception]) -> Exception:
    """The exception a real transport reports for `kind` (a key of `ERROR_KINDS`)."""
    if isinstance(kind, Exception):
        return kind
    try:
        errno, reason = ERROR_KINDS[kind]
    except KeyError:
        raise ValueError(
            "unknown error kind %r (expected one of %s, or an exception)"
            % (kind, ", ".join(sorted(ERROR_KINDS)))
        ) from None
    return FtError(errno, reason)
