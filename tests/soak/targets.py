"""What each task of the campaign is aimed at, what it must end with, and how a success is checked.

Why: a soak that only counts callbacks would miss a task that "succeeds" with a truncated
file or the bytes of another response. Every target says whether it must succeed (a fast peer:
only an abort or a timeout may fail it), must fail (a hostile peer whose answer is broken), or
may go either way, and checks what a success carried.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional

from tests.peers.http_app import GZIP_PLAIN, JSON_OBJECT, pattern_bytes
from tests.soak.peers import DRIP_BODY, LIAR_DECLARED, Addresses

OK, FAIL, ANY = "ok", "fail", "any"
DOWNLOAD_MAX_BYTES = 2 * 2**20  # limits.downloadMaxBytes of every runtime of the campaign
UPLOAD_SIZES = (1, 1000, 65536, 1 << 20)
UPLOAD_FORM = {"who": "soak", "n": "1"}
FAST_FAILS = ("abort", "timeout")  # the only ways a task aimed at a fast peer may fail

# A check gets the success dict (with "body": the bytes received, when the kind has them)
# and returns what is wrong, or None.
Check = Callable[[Dict[str, Any]], Optional[str]]


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    expect: str  # OK, FAIL or ANY
    weight: float = 1.0
    options: Dict[str, Any] = field(default_factory=dict)
    check: Optional[Check] = None
    checks_upload: bool = False  # check with `uploaded(...)` of the file sent


def body_is(expected: bytes) -> Check:
    digest = hashlib.sha256(expected).hexdigest()

    def check(res: Dict[str, Any]) -> Optional[str]:
        body = res.get("body")
        if not isinstance(body, bytes):
            return "no body bytes (%s)" % type(body).__name__
        if len(body) != len(expected) or hashlib.sha256(body).hexdigest() != digest:
            return "body of %d bytes, expected %d (head %r)" % (
                len(body), len(expected), body[:16])
        return None

    return check


def data_is(expected: Any) -> Check:
    def check(res: Dict[str, Any]) -> Optional[str]:
        return None if res.get("data") == expected else "data %.80r" % (res.get("data"),)

    return check


def status_is(code: int) -> Check:
    def check(res: Dict[str, Any]) -> Optional[str]:
        return None if res.get("statusCode") == code else "status %r" % res.get("statusCode")

    return check


def echo_path(res: Dict[str, Any]) -> Optional[str]:
    data = res.get("data")
    return None if isinstance(data, dict) and data.get("path") == "/echo" else "data %.80r" % data


def echo_json(sent: Dict[str, Any]) -> Check:
    def check(res: Dict[str, Any]) -> Optional[str]:
        data: Any = res.get("data")
        try:
            body = data["body"].encode("latin-1").decode("utf-8")  # the peer's latin-1 view
            if json.loads(body) == sent:
                return None
        except (KeyError, TypeError, ValueError):
            pass
        return "echo %.80r" % data

    return check


def received_all(size: Optional[int] = None) -> Check:
    """The sink peer got every byte declared (and `size` bytes, when given)."""

    def check(res: Dict[str, Any]) -> Optional[str]:
        data = _json(res.get("data"))
        if not isinstance(data, dict):
            return "not JSON: %.80r" % (res.get("data"),)
        received = data.get("received")
        if received == data.get("content_length") and (size is None or received == size):
            return None
        return "peer reported %.120r (sent %s bytes)" % (data, size)

    return check


def uploaded(size: int, sha256: str, form: Dict[str, str]) -> Check:
    """The upload peer parsed our multipart body into `form` and a file of this size and hash."""

    def check(res: Dict[str, Any]) -> Optional[str]:
        data = _json(res.get("data"))
        try:
            got = data["files"]["file"]
            if got["size"] == size and got["sha256"] == sha256 and data["fields"] == form:
                return None
        except (KeyError, TypeError):
            pass
        return "peer parsed %.160r (sent %d bytes)" % (data, size)

    return check


def _json(data: Any) -> Any:
    if isinstance(data, str):
        try:
            return json.loads(data)
        except ValueError:
            return None
    return data


def _arraybuffer(**options: Any) -> Dict[str, Any]:
    return {"responseType": "arraybuffer", **options}


def request_targets(peers: Addresses) -> List[Target]:
    base = peers.http
    posted = {"soak": True, "text": "中文" * 40, "n": list(range(20))}
    sink = pattern_bytes(256 * 1024)
    fast = [
        Target("bytes", base + "/bytes/1000", OK, 3, _arraybuffer(), body_is(pattern_bytes(1000))),
        Target("big", base + "/big/1048576", OK, 1, _arraybuffer(),
               body_is(pattern_bytes(1 << 20))),
        Target("json", base + "/json", OK, 2, {}, data_is(JSON_OBJECT)),
        Target("gzip", base + "/gzip", OK, 1, {}, data_is(json.loads(GZIP_PLAIN))),
        Target("echo-post", base + "/echo", OK, 2, {"method": "POST", "data": posted},
               echo_json(posted)),
        Target("sink-put", base + "/sink", OK, 1, {"method": "PUT", "data": sink},
               received_all(len(sink))),
        Target("chunked-stream", base + "/chunked/65536?pieces=8&delay_ms=2", OK, 1,
               _arraybuffer(enableChunked=True), body_is(pattern_bytes(65536))),
        Target("slow-body", base + "/slow-body/4096?pieces=4&delay_ms=40", OK, 1, _arraybuffer(),
               body_is(pattern_bytes(4096))),
        Target("redirect", base + "/redirect-chain/3", OK, 1, {}, echo_path),
        Target("status-503", base + "/status/503", OK, 1, {}, status_is(503)),
    ]
    return fast + _hostile_http(peers, _arraybuffer())


def download_targets(peers: Addresses) -> List[Target]:
    base = peers.http
    too_big = DOWNLOAD_MAX_BYTES + 2**20
    fast = [
        Target("bytes", base + "/bytes/65536", OK, 3, {}, body_is(pattern_bytes(65536))),
        Target("big", base + "/big/1048576", OK, 1, {}, body_is(pattern_bytes(1 << 20))),
        Target("chunked", base + "/chunked/262144?pieces=8", OK, 1, {},
               body_is(pattern_bytes(262144))),
        Target("slow-body", base + "/slow-body/8192?pieces=4&delay_ms=40", OK, 1, {},
               body_is(pattern_bytes(8192))),
        Target("status-404", base + "/status/404", OK, 1, {}, body_is(b"status 404")),
        Target("too-big", base + "/big/%d" % too_big, FAIL, 0.5),
        Target("too-big-chunked", base + "/chunked/%d?pieces=12" % too_big, FAIL, 0.5),
    ]
    return fast + _hostile_http(peers, {})


def upload_targets(peers: Addresses) -> List[Target]:
    base = peers.http
    fast = [
        Target("upload", base + "/upload", OK, 3, {"formData": dict(UPLOAD_FORM)},
               checks_upload=True),
        Target("sink", base + "/sink", OK, 2, {}, received_all()),
    ]
    hostile = [t for t in _hostile_http(peers, {}) if t.name != "length-too-short"]
    return fast + hostile


def _hostile_http(peers: Addresses, options: Dict[str, Any]) -> List[Target]:
    """The broken HTTP peers, the same for every HTTP kind; checks compare the body bytes."""
    expectations = {
        "stall": (FAIL, None),
        "stall-mid-body": (FAIL, None),
        "reset-mid-body": (FAIL, None),
        "length-too-long": (FAIL, None),
        "length-too-short": (ANY, body_is(pattern_bytes(LIAR_DECLARED))),
        "no-response": (FAIL, None),
        "garbage-status": (FAIL, None),
        "bad-chunk": (FAIL, None),
        "slowloris-ok": (ANY, body_is(DRIP_BODY)),
        "slowloris-slow": (FAIL, None),
    }
    return [
        Target(name, peers.hostile_url(name) + "/" + name, expect, 0.6, options, check)
        for name, (expect, check) in expectations.items()
    ]


@dataclass(frozen=True)
class SocketTarget:
    """A WebSocket peer: `echo` (what comes back must be what we sent), `opens` False when
    the handshake can never complete (onOpen must not fire)."""

    name: str
    url: str
    weight: float
    echo: bool = False
    opens: bool = True
    deflate: bool = False


def socket_targets(peers: Addresses) -> List[SocketTarget]:
    hostile = peers.hostile_url
    return [
        SocketTarget("echo", peers.ws_echo, 3, echo=True),
        SocketTarget("echo-deflate", peers.ws_echo, 2, echo=True, deflate=True),
        SocketTarget("ping-flood", peers.ws_flood, 2, echo=True),
        SocketTarget("ws-stall", hostile("ws-stall", "ws"), 0.7, opens=False),
        SocketTarget("ws-bad-accept", hostile("ws-bad-accept", "ws"), 0.7, opens=False),
        SocketTarget("ws-open-then-reset", hostile("ws-open-then-reset", "ws"), 0.7),
        SocketTarget("ws-bad-utf8", hostile("ws-bad-utf8", "ws"), 0.7),
    ]


@dataclass(frozen=True)
class UdpTarget:
    """A UDP destination: the echo peer, or a port nobody listens on (`dead`)."""

    name: str
    port: int
    weight: float
    dead: bool = False


def udp_targets(peers: Addresses) -> List[UdpTarget]:
    return [
        UdpTarget("echo", peers.udp_echo_port, 3),
        UdpTarget("dead-port", peers.udp_dead_port, 1, dead=True),
    ]
