"""The demo's loopback peers: an HTTP server and a UDP echo, stdlib only.

(The WebSocket echo is `ftcore_websocket.echo_server`: our codec in the server role.)
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import socket
import socketserver
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict
from urllib.parse import urlsplit

__all__ = ["DemoHttpServer", "UdpEcho", "TcpEcho", "CHAT_TOKENS"]

FILE_SIZE = 3 * 2**20
# An LLM-like answer, one SSE event per token; the stream is cut every CHAT_PIECE bytes, so
# multi-byte characters fall across chunk boundaries on purpose.
CHAT_TOKENS = ["你好", "！", "我是", " ftcore", "，", "流式", "输出", "不会", "乱码", " 😀", "。"]
CHAT_PIECE = 7


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "DemoHttpServer"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._route()

    def do_POST(self) -> None:  # noqa: N802
        self._route()

    def _route(self) -> None:
        path = urlsplit(self.path).path
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if path == "/json":
            self._send(200, json.dumps({"hello": "ft", "n": 1}).encode(), "application/json")
        elif path == "/echo":
            echoed = {"method": self.command, "query": urlsplit(self.path).query,
                      "body": body.decode("utf-8", "replace")}
            self._send(200, json.dumps(echoed).encode(), "application/json")
        elif path == "/redirect":
            self._send(302, b"", "text/plain", [("Location", "/json")])
        elif path == "/slow":
            self.server.release.wait(30)
            self._send(200, b"late", "text/plain")
        elif path == "/file.bin":
            self._send(200, bytes(range(256)) * (FILE_SIZE // 256), "application/octet-stream")
        elif path == "/chat":
            self._chat()
        elif path == "/upload":
            self._send(200, json.dumps(_parse_form(self.headers["Content-Type"], body)).encode(),
                       "application/json")
        else:
            self._send(404, b"not found", "text/plain")

    def _chat(self) -> None:
        """Server-Sent Events, chunked, a few bytes per chunk, as a slow model answers."""
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        events = [
            "data: %s\n\n" % json.dumps({"delta": token}, ensure_ascii=False)
            for token in CHAT_TOKENS
        ]
        raw = ("".join(events) + "event: done\ndata: [DONE]\n\n").encode("utf-8")
        for start in range(0, len(raw), CHAT_PIECE):
            piece = raw[start : start + CHAT_PIECE]
            self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            time.sleep(0.002)  # each piece its own read on the client
        self.wfile.write(b"0\r\n\r\n")

    def _send(self, status: int, body: bytes, ctype: str, extra: Any = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)


def _parse_form(content_type: str, body: bytes) -> Dict[str, Any]:
    head = ("Content-Type: %s\r\n\r\n" % content_type).encode()
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    fields: Dict[str, Any] = {}
    for part in message.iter_parts():
        payload = bytes(part.get_payload(decode=True) or b"")
        name = str(part.get_param("name", header="content-disposition"))
        filename = part.get_filename()
        if filename:
            fields[name] = {"filename": filename, "size": len(payload)}
        else:
            fields[name] = payload.decode("utf-8")
    return fields


class DemoHttpServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.release = threading.Event()
        self.url = "http://127.0.0.1:%d" % self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, name="demo-http", daemon=True)

    def __enter__(self) -> "DemoHttpServer":
        self._thread.start()
        return self

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Quiet: a client that hung up (the abort step) is part of the demo."""

    def __exit__(self, *exc: Any) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()


class UdpEcho:
    """Returns every datagram to its sender."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._run, name="demo-udp", daemon=True)

    def __enter__(self) -> "UdpEcho":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.sock.sendto(b"", ("127.0.0.1", self.port))  # wake the thread: empty means stop
        self._thread.join(5)
        self.sock.close()

    def _run(self) -> None:
        while True:
            data, peer = self.sock.recvfrom(65535)
            if not data and peer[1] == self.port:
                return
            self.sock.sendto(data, peer)


class _TcpEchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while True:
            data = self.request.recv(65536)
            if not data:
                return
            self.request.sendall(data)


class TcpEcho(socketserver.ThreadingTCPServer):
    """Returns every byte of a TCP connection to its sender, until EOF."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _TcpEchoHandler)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, name="demo-tcp", daemon=True)

    def __enter__(self) -> "TcpEcho":
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.shutdown()
        self.server_close()
