"""`python -m ftcore tcp HOST PORT`: netcat-like, against real loopback peers."""

from __future__ import annotations

from typing import Any

import pytest

from tests.cli.test_cli import ftcore_cli
from tests.net.support import refused_port
from tests.tcp.support import echo

pytestmark = pytest.mark.timeout(120)


def test_stdin_lines_go_out_and_what_comes_back_is_printed(hostile_server: Any) -> None:
    url = hostile_server(echo)
    out = ftcore_cli("tcp", "127.0.0.1", str(url.server.port), "-q", "0.5", stdin="hello\nwörld\n")
    assert out.returncode == 0, out.stderr
    assert out.stdout == "hello\nwörld\n"
    assert "# connected to 127.0.0.1:%d" % url.server.port in out.stderr


def test_a_refused_connect_prints_the_error_and_exits_one() -> None:
    out = ftcore_cli("tcp", "127.0.0.1", str(refused_port()), stdin="never sent\n")
    assert out.returncode == 1
    assert "connect:fail connection refused (errCode -4)" in out.stderr


def test_a_banned_port_is_refused_by_the_rules() -> None:
    out = ftcore_cli("tcp", "127.0.0.1", "22")
    assert out.returncode == 1 and "connect:fail port not allowed (errCode -3)" in out.stderr
