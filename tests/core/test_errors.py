"""errMsg formatting, FtError, and the errno table (ftcore.errors)."""

from __future__ import annotations

import pytest

import ftcore
from ftcore.errors import ERRNO_TABLE, Errno, FtError, fail_msg, ok_msg

from .support import no_loop_thread_leak  # noqa: F401


def test_ok_and_fail_messages() -> None:
    assert ok_msg("request") == "request:ok"
    assert fail_msg("request", "timeout") == "request:fail timeout"
    assert fail_msg("connectSocket", "invalid url") == "connectSocket:fail invalid url"


@pytest.mark.parametrize(
    "name,number",
    [
        ("DOMAIN_NOT_ALLOWED", 600002),
        ("TOO_MANY_TASKS", 600007),
        ("TOO_MANY_REDIRECTS", 600008),
        ("INVALID_URL", 600009),
        ("INVALID_DATA", 600010),
        ("FILE_TOO_LARGE", 603301),
        ("PATH_NOT_PERMITTED", 603303),
        ("WS_CONNECT_FAILED", 605103),
    ],
)
def test_wechat_numbers(name: str, number: int) -> None:
    assert Errno[name] == number


def test_every_errno_is_unique_and_has_a_reason() -> None:
    # an IntEnum silently turns a duplicate value into an alias: compare the declared names
    assert len(Errno.__members__) == len({int(v) for v in Errno.__members__.values()})
    assert set(ERRNO_TABLE) == set(Errno)
    reasons = list(ERRNO_TABLE.values())
    assert len(reasons) == len(set(reasons))
    assert all(isinstance(r, str) and r for r in reasons)


def test_fterror_without_api() -> None:
    err = FtError(Errno.TIMEOUT)
    assert err.errno == 600011 and type(err.errno) is int
    assert err.reason == "timeout" and err.errMsg == "timeout" and str(err) == "timeout"
    assert err.res is None and err.api == ""


def test_fterror_for_api_is_a_copy() -> None:
    shared = FtError(Errno.DOMAIN_NOT_ALLOWED)
    named = shared.for_api("request")
    assert named is not shared and shared.api == ""
    assert named.errMsg == "request:fail url not in domain list" and named.errno == 600002
    assert str(named) == named.errMsg
    assert named.to_res() == {"errMsg": "request:fail url not in domain list", "errno": 600002}


def test_fterror_fields() -> None:
    res = {"errMsg": "downloadFile:fail exceed max file size", "errno": 603301}
    err = FtError(603301, api="downloadFile", res=res)
    assert err.errMsg == res["errMsg"] and err.errno == 603301 and err.res is res
    assert FtError(Errno.NETWORK, "custom reason", api="request").errMsg == (
        "request:fail custom reason"
    )
    assert FtError(123456).reason == "error"  # a number outside the table
    assert FtError().errno == Errno.NETWORK
    assert isinstance(err, Exception)


def test_public_names() -> None:
    assert ftcore.FtError is FtError and ftcore.Errno is Errno
    for name in ftcore.__all__:
        if name != "ft":  # `ft` is made on first use: asking for it would start a runtime
            assert getattr(ftcore, name) is not None
    with pytest.raises(AttributeError):
        ftcore.no_such_name  # noqa: B018
