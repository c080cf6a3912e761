"""`check_http_url` remembers URLs that passed, within bounds a server cannot push past: a
redirect's Location is checked too, and its length is the server's to choose."""

from __future__ import annotations

from typing import Any, Dict, Iterator

import pytest

from ftcore import Errno, FtError
from ftcore._api import http


@pytest.fixture
def checked(monkeypatch: pytest.MonkeyPatch) -> Iterator[Dict[str, None]]:
    """An empty memo for the test (the module's own is process-wide)."""
    memo: Dict[str, None] = {}
    monkeypatch.setattr(http, "_CHECKED_URLS", memo)
    yield memo


def test_a_url_that_passed_is_remembered_and_answered_again(checked: Any) -> None:
    url = "http://127.0.0.1:8080/small"
    assert http.check_http_url(url) == url
    assert list(checked) == [url]
    assert http.check_http_url(url) == url


def test_a_long_url_is_checked_but_not_kept(checked: Any) -> None:
    url = "http://example.com/" + "a" * http._CHECKED_URL_MAX_LENGTH
    assert http.check_http_url(url) == url
    assert checked == {}


def test_the_memo_stops_growing_at_its_bound(checked: Any) -> None:
    for i in range(http._CHECKED_URLS_MAX + 50):
        http.check_http_url("http://example.com/%d" % i)
    assert len(checked) == http._CHECKED_URLS_MAX


@pytest.mark.parametrize("url", ["ftp://example.com/", "http://", "http://a\x00b/", 7, ""])
def test_a_bad_url_is_refused_and_never_kept(checked: Any, url: Any) -> None:
    with pytest.raises(FtError) as info:
        http.check_http_url(url)
    assert info.value.errno == Errno.INVALID_URL
    assert checked == {}
