"""How a scripted route recognises a URL: exact, prefix or regular expression."""

from __future__ import annotations

import re
from typing import Any, List, Optional, Pattern, Tuple, Union
from urllib.parse import parse_qsl, urlsplit

__all__ = ["UrlMatcher", "UrlSpec"]

UrlSpec = Union[str, "Pattern[str]"]

_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


class UrlMatcher:
    """One route's URL rule.

    * a ``str`` matches exactly, after normalising case of scheme and host, default ports and
      an empty path; its query string, when it has one, must hold the same parameters (in any
      order), and when it has none the request's query is ignored;
    * a ``str`` with ``prefix=True`` matches any URL starting with it (plain string test);
    * a compiled regular expression matches when ``pattern.search(url)`` finds it.
    """

    def __init__(self, url: UrlSpec, prefix: bool = False) -> None:
        self.spec = url
        self._regex: Optional[Pattern[str]] = None
        self._prefix: Optional[str] = None
        self._exact: Optional[Tuple[Any, ...]] = None
        self._query: Optional[List[Tuple[str, str]]] = None
        if isinstance(url, re.Pattern):
            if prefix:
                raise ValueError("prefix=True applies to a str URL, not a regular expression")
            self._regex = url
        elif isinstance(url, str):
            if prefix:
                self._prefix = url
            else:
                self._exact = _origin_and_path(url)
                query = urlsplit(url).query
                self._query = sorted(parse_qsl(query, keep_blank_values=True)) if query else None
        else:
            raise TypeError("url must be a str or a compiled regular expression, not %r" % (url,))

    def matches(self, url: str) -> bool:
        if self._regex is not None:
            return self._regex.search(url) is not None
        if self._prefix is not None:
            return url.startswith(self._prefix)
        try:
            if _origin_and_path(url) != self._exact:
                return False
        except ValueError:
            return False
        if self._query is None:
            return True
        return sorted(parse_qsl(urlsplit(url).query, keep_blank_values=True)) == self._query

    def __repr__(self) -> str:
        if self._regex is not None:
            return "re(%r)" % self._regex.pattern
        if self._prefix is not None:
            return "%s*" % self._prefix
        return str(self.spec)


def _origin_and_path(url: str) -> Tuple[str, str, Optional[int], str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    port = parts.port or _DEFAULT_PORTS.get(scheme)
    return scheme, (parts.hostname or "").lower(), port, parts.path or "/"
