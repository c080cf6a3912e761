"""The error vocabulary: errMsg strings, the errno table and `FtError`.

Numbers are WeChat's where WeChat has one (600002, 600007–600010, 603301, 603303, 605103);
every other failure has its own stable number in the same bands, so mini-program code that
switches on `errno` keeps working and new failures never reuse an old meaning.
"""

from __future__ import annotations

import enum
from typing import Any, Dict, Optional

__all__ = ["Errno", "FtError", "ok_msg", "fail_msg", "ERRNO_TABLE"]


class Errno(enum.IntEnum):
    """Every errno ftcore reports, with its default reason in `ERRNO_TABLE`."""

    NETWORK = 600001
    DOMAIN_NOT_ALLOWED = 600002
    ABORT = 600003
    TOO_MANY_TASKS = 600007
    TOO_MANY_REDIRECTS = 600008
    INVALID_URL = 600009
    INVALID_DATA = 600010
    TIMEOUT = 600011
    INVALID_OPTION = 600012
    INVALID_HEADER = 600013
    CONNECTION_REFUSED = 600014
    CONNECTION_RESET = 600015
    NAME_NOT_RESOLVED = 600016
    TLS = 600017
    BAD_RESPONSE = 600018
    RESPONSE_TOO_LARGE = 600019
    INTERCEPTED = 600020
    TRANSPORT_UNAVAILABLE = 600021
    STREAM_BUFFER_FULL = 600022
    FILE_TOO_LARGE = 603301
    FILE_WRITE = 603302
    PATH_NOT_PERMITTED = 603303
    FILE_NOT_FOUND = 603304
    WS_CONNECT_FAILED = 605103
    WS_NOT_CONNECTED = 605104
    WS_INVALID_CLOSE = 605105
    WS_SEND_FAILED = 605106


ERRNO_TABLE: Dict[Errno, str] = {
    Errno.NETWORK: "network error",
    Errno.DOMAIN_NOT_ALLOWED: "url not in domain list",
    Errno.ABORT: "abort",
    Errno.TOO_MANY_TASKS: "too many tasks",
    Errno.TOO_MANY_REDIRECTS: "too many redirects",
    Errno.INVALID_URL: "invalid url",
    Errno.INVALID_DATA: "invalid request data",
    Errno.TIMEOUT: "timeout",
    Errno.INVALID_OPTION: "invalid option",
    Errno.INVALID_HEADER: "invalid header",
    Errno.CONNECTION_REFUSED: "connection refused",
    Errno.CONNECTION_RESET: "connection reset",
    Errno.NAME_NOT_RESOLVED: "name not resolved",
    Errno.TLS: "ssl error",
    Errno.BAD_RESPONSE: "bad response",
    Errno.RESPONSE_TOO_LARGE: "response too large",
    Errno.INTERCEPTED: "intercepted",
    Errno.TRANSPORT_UNAVAILABLE: "transport unavailable",
    # a streamed body's consumer lagged past limits.streamBufferBytes on a transport that
    # cannot pause reading (API.md §10)
    Errno.STREAM_BUFFER_FULL: "stream buffer full",
    Errno.FILE_TOO_LARGE: "exceed max file size",
    Errno.FILE_WRITE: "file write error",
    Errno.PATH_NOT_PERMITTED: "permission denied",
    Errno.FILE_NOT_FOUND: "file not found",
    Errno.WS_CONNECT_FAILED: "connect failed",
    Errno.WS_NOT_CONNECTED: "WebSocket is not connected",
    Errno.WS_INVALID_CLOSE: "invalid close",
    Errno.WS_SEND_FAILED: "send failed",
}


def ok_msg(api: str) -> str:
    return api + ":ok"


def fail_msg(api: str, reason: str) -> str:
    return "%s:fail %s" % (api, reason)


class FtError(Exception):
    """A failure with its errno; `errMsg` names the API once the core knows it.

    Policies and transports raise it without an API name (`FtError(Errno.TIMEOUT)`); the core
    fills `api` and `res` when it fails the task, and `task.result()` raises it again.
    """

    def __init__(
        self,
        errno: int = Errno.NETWORK,
        reason: Optional[str] = None,
        *,
        api: str = "",
        res: Optional[Dict[str, Any]] = None,
    ) -> None:
        self.errno = int(errno)
        if reason is None:
            reason = ERRNO_TABLE.get(Errno(errno), "error") if errno in _KNOWN else "error"
        self.reason = reason
        self.api = api
        self.res = res
        super().__init__(reason)

    def __str__(self) -> str:
        return self.errMsg

    @property
    def errMsg(self) -> str:  # noqa: N802 - the JS name is the contract
        return fail_msg(self.api, self.reason) if self.api else self.reason

    def for_api(self, api: str) -> "FtError":
        """A copy naming `api`, leaving a shared instance (a policy's) untouched."""
        return FtError(self.errno, self.reason, api=api)

    def to_res(self) -> Dict[str, Any]:
        return {"errMsg": self.errMsg, "errno": self.errno}


_KNOWN = frozenset(int(e) for e in Errno)
