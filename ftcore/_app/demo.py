"""`python -m ftcore demo`: every API end to end against loopback peers the demo starts itself.

Each step prints the call and what came back, and checks it; the exit status is 0 only if
every step did what it should. No network and nothing beyond ftcore's own dependencies.
"""

from __future__ import annotations

import json
import os
import queue
import traceback
from typing import Any, Callable, Dict, List, Tuple

from .demo_servers import CHAT_TOKENS, FILE_SIZE, DemoHttpServer, TcpEcho, UdpEcho
from .._api.runtime import Runtime
from ..errors import FtError

WAIT = 10.0

Step = Tuple[str, Callable[[], str]]


def run_demo(out: Any) -> int:
    from ftcore_websocket.echo_server import EchoServer  # our codec, in the server role

    with DemoHttpServer() as http, EchoServer() as ws, UdpEcho() as udp, TcpEcho() as tcp, \
            Runtime() as rt:
        steps = _steps(rt, http.url, ws.url, udp.port, tcp.port)
        failures = 0
        for name, step in steps:
            try:
                detail = step()
                out.write("ok    %-44s %s\n" % (name, detail))
            except Exception as error:  # a demo step that breaks is reported, never fatal
                failures += 1
                out.write("FAIL  %-44s %s\n" % (name, _describe(error)))
                if os.environ.get("FTCORE_DEMO_DEBUG"):
                    traceback.print_exc()
            out.flush()
        out.write("\n%d passed, %d failed\n" % (len(steps) - failures, failures))
        return 1 if failures else 0


def _describe(error: Exception) -> str:
    if isinstance(error, FtError):
        return error.errMsg
    return "%s: %s" % (type(error).__name__, error)


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _short(value: Any) -> str:
    text = json.dumps(value, default=repr)
    return text if len(text) < 90 else text[:87] + "..."


def _steps(rt: Runtime, http: str, ws: str, udp_port: int, tcp_port: int) -> List[Step]:
    def request_json() -> str:
        res = rt.request(url=http + "/json").result(WAIT)
        _check(res["data"] == {"hello": "ft", "n": 1}, "data not parsed")
        return "request(url=/json) -> %s" % _short({k: res[k] for k in ("statusCode", "data")})

    def request_text() -> str:
        res = rt.request(url=http + "/json", dataType="text").result(WAIT)
        _check(isinstance(res["data"], str), "data should stay text")
        return "dataType=text -> %s" % _short(res["data"])

    def request_arraybuffer() -> str:
        res = rt.request(url=http + "/json", responseType="arraybuffer").result(WAIT)
        _check(isinstance(res["data"], bytes), "data should be bytes")
        return "responseType=arraybuffer -> %d bytes" % len(res["data"])

    def request_post() -> str:
        res = rt.request(url=http + "/echo", method="POST", data={"a": [1, 2]}).result(WAIT)
        _check(json.loads(res["data"]["body"]) == {"a": [1, 2]}, "JSON body not echoed")
        return "POST data={'a': [1, 2]} -> %s" % _short(res["data"])

    def request_get_query() -> str:
        res = rt.request(url=http + "/echo?x=1", data={"y": 2}).result(WAIT)
        _check(res["data"]["query"] == "x=1&y=2", "query not merged")
        return "GET data={'y': 2} -> query %s" % res["data"]["query"]

    def request_redirect() -> str:
        followed = rt.request(url=http + "/redirect").result(WAIT)
        manual = rt.request(url=http + "/redirect", redirect="manual").result(WAIT)
        _check(followed["statusCode"] == 200 and manual["statusCode"] == 302, "redirects")
        return "follow -> %d, manual -> %d" % (followed["statusCode"], manual["statusCode"])

    def request_abort() -> str:
        headers: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        task = rt.request(url=http + "/slow", complete=headers.put)
        task.abort()
        res = headers.get(timeout=WAIT)
        _check(res["errMsg"] == "request:fail abort", "abort not reported")
        return "task.abort() -> %s" % res["errMsg"]

    def request_llm_stream() -> str:
        task = rt.request(url=http + "/chat", enableChunked=True)
        split = []  # chunks that end inside a character: the parser must put it together

        def on_chunk(res: Dict[str, Any]) -> None:
            try:
                res["data"].decode("utf-8")
            except UnicodeDecodeError:
                split.append(res["data"])

        task.onChunkReceived(on_chunk)
        tokens = []
        for event in task.iter_events():  # one event per token, as the model writes it
            if event["event"] == "message":
                tokens.append(json.loads(event["data"])["delta"])
        _check(task.result(WAIT)["statusCode"] == 200, "the stream did not end well")
        _check(tokens == CHAT_TOKENS, "tokens garbled: %r" % tokens)
        _check(bool(split), "no chunk split a character")
        return "iter_events() -> %s (%d chunks cut a character)" % ("|".join(tokens), len(split))

    def download() -> str:
        progress: List[int] = []
        task = rt.downloadFile(url=http + "/file.bin")
        task.onProgressUpdate(lambda ev: progress.append(ev["progress"]))
        res = task.result(WAIT)
        size = os.path.getsize(res["tempFilePath"])
        _check(size == FILE_SIZE and progress[-1:] == [100], "download incomplete")
        return "downloadFile -> %s (%d bytes, %d progress events)" % (
            os.path.basename(res["tempFilePath"]), size, len(progress))

    def upload() -> str:
        path = os.path.join(rt.env["USER_DATA_PATH"], "hello.txt")
        with open(path, "w") as handle:
            handle.write("hello from ftcore\n" * 1000)
        res = rt.uploadFile(url=http + "/upload", filePath=path, name="file",
                            formData={"user": "demo"}).result(WAIT)
        echoed = json.loads(res["data"])
        _check(echoed["file"]["size"] == 18000 and echoed["user"] == "demo", "upload mismatch")
        return "uploadFile -> server saw %s" % _short(echoed)

    def socket_global() -> str:
        events: "queue.Queue[Tuple[str, Dict[str, Any]]]" = queue.Queue()
        for name in ("Open", "Message", "Close"):
            getattr(rt, "onSocket" + name)(lambda res, name=name: events.put((name, res)))
        rt.connectSocket(url=ws + "/global")
        _expect(events, "Open")
        rt.sendSocketMessage(data="hello, global")
        message = _expect(events, "Message")
        rt.closeSocket()
        closed = _expect(events, "Close")
        _check(message["data"] == "hello, global", "no echo")
        return "ft.sendSocketMessage -> echo %r, close %s" % (message["data"], closed["code"])

    def socket_task() -> str:
        events: "queue.Queue[Tuple[str, Dict[str, Any]]]" = queue.Queue()
        task = rt.connectSocket(url=ws + "/task", perMessageDeflate=True)
        task.onOpen(lambda res: events.put(("Open", res)))
        task.onMessage(lambda res: events.put(("Message", res)))
        task.onClose(lambda res: events.put(("Close", res)))
        _expect(events, "Open")
        task.send({"data": b"\x00\x01binary"})
        message = _expect(events, "Message")
        task.close({"code": 1000, "reason": "bye"})
        closed = _expect(events, "Close")
        _check(message["data"] == b"\x00\x01binary", "no binary echo")
        return "SocketTask.send(bytes) -> echo %r, onClose %s" % (message["data"], closed)

    def udp_both_ways() -> str:
        messages: "queue.Queue[Dict[str, Any]]" = queue.Queue()
        sock = rt.createUDPSocket()
        sock.onMessage(messages.put)
        port = sock.bind()
        sock.send({"address": "127.0.0.1", "port": udp_port, "message": "ping over udp"})
        res = messages.get(timeout=WAIT)
        sock.close()
        _check(res["message"] == b"ping over udp", "no UDP echo")
        return "UDPSocket.bind() -> %d, echo %r from port %d" % (
            port, res["message"], res["remoteInfo"]["port"])

    def tcp_echo() -> str:
        events: "queue.Queue[Tuple[str, Dict[str, Any]]]" = queue.Queue()
        sock = rt.createTCPSocket()
        for name in ("Connect", "Message", "Close"):
            getattr(sock, "on" + name)(lambda res, name=name: events.put((name, res)))
        sock.connect({"address": "127.0.0.1", "port": tcp_port})
        _expect(events, "Connect")
        sock.write("hello over tcp")
        received = b""
        while len(received) < 14:  # TCP is a stream: the echo may come in pieces
            received += _expect(events, "Message")["message"]
        sock.close()
        _expect(events, "Close")
        _check(received == b"hello over tcp", "no TCP echo")
        return "TCPSocket.write() -> echo %r, then onClose" % received

    return [
        ("request dataType=json", request_json),
        ("request dataType=text", request_text),
        ("request responseType=arraybuffer", request_arraybuffer),
        ("request POST JSON", request_post),
        ("request GET query merge", request_get_query),
        ("request redirect follow/manual", request_redirect),
        ("request abort", request_abort),
        ("request SSE token stream (LLM-like)", request_llm_stream),
        ("downloadFile with progress", download),
        ("uploadFile with formData", upload),
        ("global socket API", socket_global),
        ("SocketTask (permessage-deflate)", socket_task),
        ("UDP both ways", udp_both_ways),
        ("TCPSocket echo", tcp_echo),
    ]


def _expect(events: "queue.Queue[Tuple[str, Dict[str, Any]]]", name: str) -> Dict[str, Any]:
    try:
        got, res = events.get(timeout=WAIT)
    except queue.Empty:
        raise AssertionError("no on%s within %.0f s" % (name, WAIT)) from None
    if got != name:
        raise AssertionError("expected on%s, got on%s %s" % (name, got, _short(res)))
    return res
