"""`python -m ftcore`: every subcommand against real loopback peers, in a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from typing import Any, List

import pytest

from tests.peers.http_app import pattern_bytes

pytestmark = pytest.mark.timeout(120)


def ftcore_cli(*args: str, stdin: str = "", cwd: Any = None) -> "subprocess.CompletedProcess[str]":
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    return subprocess.run(
        [sys.executable, "-m", "ftcore", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=100,
        env=env,
        cwd=cwd,
    )


def test_demo_runs_every_api_and_exits_zero() -> None:
    out = ftcore_cli("demo")
    assert out.returncode == 0, out.stdout + out.stderr
    assert "14 passed, 0 failed" in out.stdout
    assert "Traceback" not in out.stderr


def test_request_prints_the_result_as_json(http_server: Any) -> None:
    out = ftcore_cli(
        "request",
        http_server.url + "/echo?cli=1",
        "-X",
        "post",
        "-H",
        "X-Cli: yes",
        "-d",
        '{"a": 1}',
        "--json",
    )
    assert out.returncode == 0, out.stderr
    res = json.loads(out.stdout)
    assert res["errMsg"] == "request:ok" and res["statusCode"] == 200
    assert res["data"]["method"] == "POST" and json.loads(res["data"]["body"]) == {"a": 1}
    assert res["data"]["headers"]["x-cli"] == "yes"


def test_request_failure_prints_errmsg_and_exits_one() -> None:
    out = ftcore_cli("request", "ftp://example.invalid/")
    assert out.returncode == 1
    assert out.stderr.strip() == "request:fail invalid url"


def test_download_saves_to_output_with_plain_progress_lines(
    http_server: Any, tmp_path: Any
) -> None:
    target = tmp_path / "saved.bin"
    out = ftcore_cli("download", http_server.url + "/bytes/300000", "-o", str(target))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == str(target)
    assert target.read_bytes() == pattern_bytes(300000)
    lines: List[str] = out.stderr.strip().splitlines()
    assert lines and "100%" in lines[-1] and "ETA" in lines[-1]


def test_upload_sends_the_named_file_and_fields(http_server: Any, tmp_path: Any) -> None:
    source = tmp_path / "report.txt"
    source.write_bytes(b"cli upload\n" * 5000)
    out = ftcore_cli(
        "upload",
        http_server.url + "/upload",
        str(source),
        "--name",
        "doc",
        "-F",
        "user=ft",
        "-F",
        "kind=cli",
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(json.loads(out.stdout)["data"])
    assert seen["fields"] == {"user": "ft", "kind": "cli"}
    assert seen["files"]["doc"]["sha256"] == hashlib.sha256(source.read_bytes()).hexdigest()


def test_ws_sends_stdin_lines_and_prints_messages(ws_server: Any) -> None:
    server = ws_server("echo")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    with subprocess.Popen(
        [sys.executable, "-m", "ftcore", "ws", server.url, "--deflate"],
        env=env,
        text=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    ) as proc:
        assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
        for line in ("one", "two"):  # each echo is read before the next line is typed
            proc.stdin.write(line + "\n")
            proc.stdin.flush()
            assert proc.stdout.readline() == line + "\n"
        proc.stdin.close()  # Ctrl-D
        assert proc.wait(60) == 0
        assert "# closed 1000" in proc.stderr.read()


def test_udp_send_reaches_a_peer(udp_sink: Any) -> None:
    peer = udp_sink("udp4")
    out = ftcore_cli("udp", "send", "localhost", str(peer.port), "hello udp")
    assert out.returncode == 0, out.stderr
    data, _sender = peer.received.get(timeout=10)
    assert data == b"hello udp"


def test_plugins_lists_builtins_and_the_winning_transports() -> None:
    out = ftcore_cli("plugins")
    assert out.returncode == 0, out.stderr
    assert "ftcore_policies.domains" in out.stdout and "builtin" in out.stdout
    assert "ftcore_http_transport_make -> ftcore_urllib3" in out.stdout
    assert "ftcore_websocket_transport_make -> ftcore_websocket" in out.stdout
    assert "ftcore_udp_transport_make -> ftcore_udp" in out.stdout
