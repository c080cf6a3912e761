"""`python -m ftcore`: each API from the shell, the plugin list, and the demo (stdlib argparse)."""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import socket
import sys
import threading
from typing import Any, Dict, List, Optional

from .._core.plugins import BUILTIN_PLUGINS
from ..hookspecs import hookimpl
from .progress import ProgressBar
from .._api.runtime import Runtime
from ..errors import FtError

WAIT = None  # the CLI waits as long as the task's own timeout allows


def main(argv: Optional[List[str]] = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return int(args.command(args))
    except FtError as error:
        print(error.errMsg, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ftcore", description=__doc__)
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run every API against loopback servers")
    demo.set_defaults(command=_demo)

    request = commands.add_parser("request", help="ft.request; prints the result as JSON")
    request.add_argument("url")
    request.add_argument("-X", "--method", default="GET")
    request.add_argument("-H", "--header", action="append", default=[], metavar="'K: V'")
    request.add_argument("-d", "--data")
    request.add_argument("--json", action="store_true", help="DATA is JSON, sent as such")
    request.add_argument("--timeout", type=int, metavar="MS")
    streamed = request.add_mutually_exclusive_group()
    streamed.add_argument(
        "--stream", action="store_true", help="print the body's text as it arrives"
    )
    streamed.add_argument(
        "--sse", action="store_true", help="print one JSON line per Server-Sent Event"
    )
    request.set_defaults(command=_request)

    download = commands.add_parser("download", help="ft.downloadFile with a progress bar")
    download.add_argument("url")
    download.add_argument("-o", "--output", metavar="PATH")
    download.set_defaults(command=_download)

    upload = commands.add_parser("upload", help="ft.uploadFile with a progress bar")
    upload.add_argument("url")
    upload.add_argument("file")
    upload.add_argument("--name", default="file")
    upload.add_argument("-F", "--form", action="append", default=[], metavar="KEY=VALUE")
    upload.set_defaults(command=_upload)

    ws = commands.add_parser("ws", help="ft.connectSocket: stdin lines out, messages in")
    ws.add_argument("url")
    ws.add_argument("--protocol", action="append", default=[])
    ws.add_argument("--deflate", action="store_true")
    ws.set_defaults(command=_ws)

    tcp = commands.add_parser("tcp", help="ft.createTCPSocket, netcat-like: stdin out, data in")
    tcp.add_argument("host")
    tcp.add_argument("port", type=int)
    tcp.add_argument("-6", "--ipv6", action="store_true", help="an IPv6 socket (implied by ::)")
    tcp.add_argument("--timeout", type=float, metavar="S", help="connect timeout (default 2 s)")
    tcp.add_argument(
        "-q",
        "--quiet-after",
        type=float,
        default=1.0,
        metavar="S",
        help="after stdin ends, close once the peer has been silent this long (default 1 s)",
    )
    tcp.set_defaults(command=_tcp)

    udp = commands.add_parser("udp", help="ft.createUDPSocket")
    udp_commands = udp.add_subparsers(dest="udp_name", required=True, metavar="ACTION")
    listen = udp_commands.add_parser("listen", help="print every datagram received")
    listen.add_argument("port", type=int)
    listen.set_defaults(command=_udp_listen)
    send = udp_commands.add_parser("send", help="send one datagram")
    send.add_argument("host")
    send.add_argument("port", type=int)
    send.add_argument("message")
    send.set_defaults(command=_udp_send)

    plugins = commands.add_parser("plugins", help="plugins loaded and the hooks they implement")
    plugins.set_defaults(command=_plugins)
    return parser


def _demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(sys.stdout)


def _print_json(res: Dict[str, Any]) -> None:
    print(json.dumps(res, indent=2, ensure_ascii=False, default=_bytes_as_text))


def _bytes_as_text(value: Any) -> Any:
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "replace")
    return repr(value)


def _request(args: argparse.Namespace) -> int:
    header = dict(_split_header(h) for h in args.header)
    options: Dict[str, Any] = {"url": args.url, "method": args.method, "header": header}
    if args.data is not None:
        options["data"] = json.loads(args.data) if args.json else args.data
    if args.timeout:
        options["timeout"] = args.timeout
    with Runtime() as rt:
        if not (args.stream or args.sse):
            _print_json(rt.request(options).result(WAIT))
            return 0
        task = rt.request(options, enableChunked=True)
        if args.sse:
            for event in task.iter_events():
                print(json.dumps(event, ensure_ascii=False), flush=True)
        else:
            for text in task.iter_text():
                sys.stdout.write(text)
                sys.stdout.flush()
    return 0


def _split_header(line: str) -> List[str]:
    name, sep, value = line.partition(":")
    if not sep:
        raise SystemExit("a header is 'Name: value', got %r" % line)
    return [name.strip(), value.strip()]


def _download(args: argparse.Namespace) -> int:
    with Runtime() as rt:
        task = rt.downloadFile(url=args.url)
        bar = ProgressBar(sys.stderr)
        task.onProgressUpdate(
            lambda ev: bar.update(ev["totalBytesWritten"], ev["totalBytesExpectedToWrite"])
        )
        res = task.result(WAIT)
        bar.finish()
        target = args.output or os.path.basename(res["tempFilePath"])
        shutil.move(res["tempFilePath"], target)  # the host may take files out of the sandbox
    print(os.path.abspath(target))
    return 0


class _AllowOneFile:
    """The CLI user named this file: let uploadFile read it, wherever it is."""

    def __init__(self, path: str) -> None:
        self.path = os.path.realpath(path)

    @hookimpl(tryfirst=True)
    def ftcore_path_resolve(self, runtime: Any, path: str, mode: str) -> Optional[str]:
        if mode == "read" and os.path.realpath(path) == self.path:
            return self.path
        return None


def _upload(args: argparse.Namespace) -> int:
    form = dict(field.partition("=")[::2] for field in args.form)
    with Runtime(plugins=[_AllowOneFile(args.file)]) as rt:
        task = rt.uploadFile(
            url=args.url, filePath=os.path.abspath(args.file), name=args.name, formData=form
        )
        bar = ProgressBar(sys.stderr)
        task.onProgressUpdate(
            lambda ev: bar.update(ev["totalBytesSent"], ev["totalBytesExpectedToSend"])
        )
        res = task.result(WAIT)
        bar.finish()
    _print_json(res)
    return 0


def _ws(args: argparse.Namespace) -> int:
    closed: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    opened = threading.Event()
    with Runtime() as rt:
        task = rt.connectSocket(
            url=args.url, protocols=args.protocol, perMessageDeflate=args.deflate
        )

        def on_open(res: Dict[str, Any]) -> None:
            print("# open %s" % res["protocol"], file=sys.stderr)
            opened.set()

        def on_close(res: Dict[str, Any]) -> None:
            closed.put(res)
            opened.set()  # no longer worth waiting for

        task.onOpen(on_open)
        task.onMessage(
            lambda res: print(
                _bytes_as_text(res["data"]) if not isinstance(res["data"], str) else res["data"],
                flush=True,
            )
        )
        task.onError(lambda res: print("# error: %s" % res["errMsg"], file=sys.stderr))
        task.onClose(on_close)
        task.result(WAIT)
        opened.wait()  # open, or closed before it could open
        for line in sys.stdin:
            if not closed.empty():
                break
            task.send({"data": line.rstrip("\n")})
        if closed.empty():
            task.close({"code": 1000})
        res = closed.get()
        print("# closed %s %s" % (res["code"], res["reason"]), file=sys.stderr)
    return 0 if res["code"] in (1000, 1005) else 1


def _tcp(args: argparse.Namespace) -> int:
    """stdin goes out as it is read (line by line); what arrives is written to stdout raw."""
    ready = threading.Event()  # connected, or ended before it could connect
    ended = threading.Event()
    activity = threading.Event()  # a message arrived since the last look
    errors: List[Dict[str, Any]] = []

    def on_message(res: Dict[str, Any]) -> None:
        sys.stdout.buffer.write(res["message"])
        sys.stdout.flush()
        activity.set()

    def on_error(res: Dict[str, Any]) -> None:
        errors.append(res)
        print("# error: %s (errCode %d)" % (res["errMsg"], res["errCode"]), file=sys.stderr)

    def on_close(res: Dict[str, Any]) -> None:
        ended.set()
        ready.set()

    ipv6 = args.ipv6 or ":" in args.host
    with Runtime() as rt:
        sock = rt.createTCPSocket(type="ipv6" if ipv6 else "ipv4")
        sock.onConnect(lambda res: ready.set())
        sock.onMessage(on_message)
        sock.onError(on_error)
        sock.onClose(on_close)
        options: Dict[str, Any] = {"address": args.host, "port": args.port}
        if args.timeout is not None:
            options["timeout"] = args.timeout
        sock.connect(options)
        ready.wait()
        if not ended.is_set():
            print("# connected to %s:%d" % (args.host, args.port), file=sys.stderr)
            for line in sys.stdin.buffer:
                if ended.is_set():
                    break
                sock.write(line)
            while not ended.is_set():  # stdin is done: let the answers come in
                activity.clear()
                if not ended.wait(args.quiet_after) and not activity.is_set():
                    break
            sock.close()
            ended.wait()
        print("# closed", file=sys.stderr)
    return 1 if errors else 0


def _udp_listen(args: argparse.Namespace) -> int:
    with Runtime() as rt:
        sock = rt.createUDPSocket()
        sock.onMessage(
            lambda res: print(
                "%s:%s %s"
                % (
                    res["remoteInfo"]["address"],
                    res["remoteInfo"]["port"],
                    _bytes_as_text(res["message"]),
                ),
                flush=True,
            )
        )
        sock.onError(lambda res: print("# error: %s" % res["errMsg"], file=sys.stderr))
        print("# listening on %d" % sock.bind(args.port), file=sys.stderr)
        threading.Event().wait()
    return 0


def _udp_send(args: argparse.Namespace) -> int:
    # Resolve here, so the datagram is on its way (not waiting for a lookup) when we close.
    try:
        family, _, _, _, sockaddr = socket.getaddrinfo(
            args.host, args.port, type=socket.SOCK_DGRAM
        )[0]
    except (OSError, UnicodeError):
        print("send:fail name not resolved", file=sys.stderr)
        return 1
    errors: "queue.Queue[Dict[str, Any]]" = queue.Queue()
    with Runtime() as rt:
        sock = rt.createUDPSocket("udp6" if family == socket.AF_INET6 else "udp4")
        sock.onError(errors.put)
        sock.bind()
        sent = threading.Event()
        sock.send({"address": sockaddr[0], "port": args.port, "message": args.message})
        rt.loop.call_soon_threadsafe(sent.set)  # after the send has run on the loop
        sent.wait()
        sock.close()
    if not errors.empty():
        print(errors.get()["errMsg"], file=sys.stderr)
        return 1
    return 0


def _plugins(args: argparse.Namespace) -> int:
    with Runtime() as rt:
        pm = rt.pm
        for name, plugin in pm.list_name_plugin():
            hooks = sorted(caller.name for caller in pm.get_hookcallers(plugin) or ())
            origin = (
                "builtin"
                if name in BUILTIN_PLUGINS
                else (
                    "entry point"
                    if pm.get_plugin(name) in dict(pm.list_plugin_distinfo())
                    else "explicit"
                )
            )
            print("%-32s %-12s %s" % (name, origin, ", ".join(hooks)))
        print()
        for kind in ("http", "websocket", "udp", "tcp"):
            hook = getattr(rt.hook, "ftcore_%s_transport_make" % kind)
            impls = hook.get_hookimpls()
            winner = impls[-1].plugin_name if impls else "none"
            print("ftcore_%s_transport_make -> %s" % (kind, winner))
    return 0
