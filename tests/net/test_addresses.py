"""The IP-literal check and the RFC 8305 order of resolved addresses."""

from __future__ import annotations

import socket

from ftcore._net import interleave, ip_family, strip_brackets

V4, V6 = socket.AF_INET, socket.AF_INET6


def test_literals_and_names() -> None:
    assert ip_family("127.0.0.1") == V4
    assert ip_family("::1") == V6
    assert ip_family("[::1]") is None  # brackets are the caller's to strip
    assert strip_brackets("[::1]") == "::1" and strip_brackets("::1") == "::1"
    for name in ("localhost", "1.2.3", "256.1.1.1", "", "example.com"):
        assert ip_family(name) is None


def test_families_alternate_starting_with_the_first_answer() -> None:
    a6, b6 = (V6, ("2001:db8::1", 80, 0, 0)), (V6, ("2001:db8::2", 80, 0, 0))
    a4, b4, c4 = (V4, ("192.0.2.1", 80)), (V4, ("192.0.2.2", 80)), (V4, ("192.0.2.3", 80))
    assert interleave([a6, b6, a4, b4, c4]) == [a6, a4, b6, b4, c4]
    assert interleave([a4, b4, a6]) == [a4, a6, b4]
    assert interleave([a4, a4, a6, a6]) == [a4, a6]  # duplicates dropped
    assert interleave([]) == []
