"""The re-entrancy matrix of issue 11 §1 (API.md §11): subject kind x hook x re-entrant call.

A cell makes a fresh runtime, starts one subject (a task or a socket) against the real loopback
peers, and gives one of its listeners or callbacks (the *hook*) one re-entrant call to make the
first time it runs. Then it drives the subject to its end and checks the callback rules, the
call's own outcome, that the runtime still serves a request, and that `rt.close()` returns. Every
wait is bounded (`support.WAIT`), so a deadlock fails the cell with every thread's stack.

Each kind is one row of `KINDS`: the hooks it has, the calls that make sense on it, how to start
and drive its subject, and its rules. A combination that does not exist (a UDP socket has no
headers, the global socket API has no `off`) is not in the table, so nothing is skipped. A new
kind is one more `Kind` subclass and one more entry in `KINDS`.

Besides the calls of API.md §11, two more: `wait_on_thread` (the hook waits for another thread
that uses the runtime: any lock of ours held while user code runs would deadlock it) and
`runtime_close` (refused on the loop thread with RuntimeError, as `result()` is).

Subjects are started on the loop thread (`support.on_loop`), so the hooks can reach the subject
through the context before any event can fire. The call is made only the first time the hook
runs: a `send` from `onMessage` answered by an echo would otherwise never end.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple
from urllib.parse import quote

import ftcore
from ftcore import FtError
from tests.reentrancy.support import WAIT, Journal, close_bounded, on_loop, run_bounded

__all__ = ["Cell", "Peers", "KINDS", "CELLS", "PEER_MESSAGES", "run_cell"]

PEER_MESSAGES = ("m1", "m2", "m3")  # what the WebSocket peer sends on open, before echoing
UPLOAD_BYTES = 192 * 1024
INTERCEPTOR_HOOKS = ("invoke", "intercept.success", "intercept.fail", "intercept.complete")
CALLS = ("abort", "off_same", "off_other", "close", "send", "new_call", "result_other",
         "result_self", "wait_on_thread", "runtime_close")  # fmt: skip


@dataclass(frozen=True)
class Peers:
    http: str  # "http://127.0.0.1:PORT"
    ws: str  # "ws://127.0.0.1:PORT", greets with PEER_MESSAGES then echoes
    udp: Tuple[str, int]  # an echo
    tcp: int  # a loopback TCP echo's port
    refused: int  # a loopback TCP port that refuses connections


@dataclass(frozen=True)
class Cell:
    kind: "Kind"
    hook: str
    call: str

    @property
    def id(self) -> str:
        return "%s-%s-%s" % (self.kind.name, self.hook, self.call)


@dataclass
class Ctx:
    """One cell's run: its runtime, its subject, what ran, and how the call went."""

    cell: Cell
    rt: ftcore.Runtime
    peers: Peers
    journal: Journal = field(default_factory=Journal)
    subject: Any = None
    other: Any = None  # a task that finished before the subject started (result_other)
    spawned: List[Any] = field(default_factory=list)  # tasks made by new_call
    outcome: Optional[Tuple[str, Any]] = None  # ("returned" | "raised", value) of the call
    done_at_call: Optional[bool] = None  # subject.done() when result_self was called
    shadow_before_off: int = 0  # the shadow listener's calls when off_other removed it
    shadows: Dict[str, Callable[..., None]] = field(default_factory=dict)

    def fn(self, name: str) -> Callable[..., None]:
        """The callback recording `name`: the hook of the cell if it is `name`."""
        return self._hook if name == self.cell.hook else self.journal.recorder(name)

    def _hook(self, res: Any = None, *rest: Any) -> None:
        self.journal.add(self.cell.hook, res)
        if self.outcome is not None:
            return
        self.outcome = ("running", None)
        try:
            value = CALL_IMPLS[self.cell.call](self)
        except BaseException as error:  # noqa: BLE001 - checked by the cell
            self.outcome = ("raised", error)
        else:
            self.outcome = ("returned", value)
        self.journal.add("call.returned")

    def attach(self, target: Any, listeners: Dict[str, str]) -> None:
        """`on<Event>` for each hook (the recorder or the cell's hook), then a shadow listener
        per event: the "other" listener that off_other removes."""
        for hook, event in listeners.items():
            getattr(target, "on" + event)(self.fn(hook))
            shadow = self.shadows[event] = self.journal.recorder("shadow." + event)
            getattr(target, "on" + event)(shadow)

    def wait(self, predicate: Callable[[Journal], bool], what: str) -> None:
        self.journal.wait_for(predicate, "%s (%s)" % (what, self.cell.id))


# -- the re-entrant calls ----------------------------------------------------------------------


def _abort(ctx: Ctx) -> None:
    ctx.subject.abort()


def _off_same(ctx: Ctx) -> None:
    ctx.cell.kind.off_same(ctx)


def _off_other(ctx: Ctx) -> None:
    ctx.cell.kind.off_other(ctx)


def _close(ctx: Ctx) -> None:
    ctx.cell.kind.close(ctx)


def _send(ctx: Ctx) -> None:
    ctx.cell.kind.send(ctx)


def _new_call(ctx: Ctx) -> None:
    ctx.spawned.append(ctx.cell.kind.new_call(ctx))


def _result_other(ctx: Ctx) -> Any:
    return ctx.other.result()


def _result_self(ctx: Ctx) -> Any:
    ctx.done_at_call = ctx.subject.done()
    return ctx.subject.result()


def _wait_on_thread(ctx: Ctx) -> None:
    """Wait, inside the hook, for another thread that uses the runtime and the subject (its
    listeners, the interceptors, a new call). Any lock of ours held while the hook runs would
    stop that thread, and the hook would wait for it for ever: a deadlock made visible."""
    rt, subject, kind = ctx.rt, ctx.subject, ctx.cell.kind

    def noop(res: Any = None) -> None:
        pass

    def use() -> None:
        rt.live_tasks()
        rt.addInterceptor("no-such-api", {"invoke": noop})
        rt.removeInterceptor("no-such-api")
        for event in kind.listeners.values():
            if kind.name == GlobalSocketKind.name:
                getattr(rt, "onSocket" + event)(noop)
            else:
                getattr(subject, "on" + event)(noop)
                getattr(subject, "off" + event)(noop)
        ctx.spawned.append(rt.request(url=ctx.peers.http + "/echo?from-a-thread=1"))

    run_bounded(use, WAIT, "another thread using the runtime while a hook waits for it")


def _runtime_close(ctx: Ctx) -> None:
    ctx.rt.close()


CALL_IMPLS: Dict[str, Callable[[Ctx], Any]] = {
    "abort": _abort,
    "off_same": _off_same,
    "off_other": _off_other,
    "close": _close,
    "send": _send,
    "new_call": _new_call,
    "result_other": _result_other,
    "result_self": _result_self,
    "wait_on_thread": _wait_on_thread,
    "runtime_close": _runtime_close,
}


# -- kinds ---------------------------------------------------------------------------------------


class Kind:
    """A row of the table. Subclasses fill in the class attributes and the four steps."""

    name = ""
    api = ""  # the API its interceptors are registered for ("" none)
    listeners: Dict[str, str] = {}  # hook -> event of its on/off methods
    callbacks: Tuple[str, ...] = ()  # hooks passed as callbacks (no off)
    config: Dict[str, Any] = {}  # the runtime's
    call_callbacks = False  # its send and close take success/fail/complete
    intercepted = False  # has the interceptor hooks
    observed = False  # has an observer hook (`ftcore_task_observe`)
    calls: Tuple[str, ...] = ()

    def hooks(self) -> List[str]:
        hooks = list(self.listeners) + list(self.callbacks)
        if self.intercepted:
            hooks += INTERCEPTOR_HOOKS
        if self.observed:
            hooks.append("observe")
        return hooks

    def cells(self) -> List[Cell]:
        return [
            Cell(self, hook, call)
            for hook in self.hooks()
            for call in self.calls
            if call != "off_same" or hook in self.listeners or hook in INTERCEPTOR_HOOKS
        ]

    # steps: start (loop thread), drive, check (the cell's thread)

    def start(self, ctx: Ctx) -> None:
        raise NotImplementedError

    def drive(self, ctx: Ctx) -> None:
        raise NotImplementedError

    def check(self, ctx: Ctx) -> None:
        raise NotImplementedError

    # the calls that depend on the kind

    def off_same(self, ctx: Ctx) -> None:
        hook = ctx.cell.hook
        if hook in INTERCEPTOR_HOOKS:
            ctx.rt.removeInterceptor(self.api)
        else:
            getattr(ctx.subject, "off" + self.listeners[hook])(ctx.fn(hook))

    def off_other(self, ctx: Ctx) -> None:
        """Another listener of the same event; every shadow for a callback; or the other
        interceptor (the global one)."""
        hook = ctx.cell.hook
        if hook in INTERCEPTOR_HOOKS:
            ctx.rt.removeInterceptor(None)
            return
        events = [self.listeners[hook]] if hook in self.listeners else list(ctx.shadows)
        ctx.shadow_before_off = sum(ctx.journal.count("shadow." + event) for event in events)
        for event in events:
            getattr(ctx.subject, "off" + event)(ctx.shadows[event])

    def close(self, ctx: Ctx) -> None:
        ctx.subject.close({"complete": ctx.journal.recorder("call.complete")})

    def send(self, ctx: Ctx) -> None:
        ctx.subject.send({"data": "re-entrant", "complete": ctx.journal.recorder("call.complete")})

    def new_call(self, ctx: Ctx) -> Any:
        """Another API than the subject's, so the subject's interceptors do not see it."""
        url = ctx.peers.http + "/echo?spawned=1"
        if self.api == "request":
            return ctx.rt.downloadFile(url=url)
        return ctx.rt.request(url=url)

    def intercept(self, ctx: Ctx) -> None:
        """The subject API's interceptor (the hooks) and a global one (the "other")."""
        ctx.rt.addInterceptor(None, {"invoke": ctx.journal.recorder("shadow.interceptor")})
        ctx.rt.addInterceptor(self.api, {
            "invoke": ctx.fn("invoke"),
            "success": ctx.fn("intercept.success"),
            "fail": ctx.fn("intercept.fail"),
            "complete": ctx.fn("intercept.complete"),
        })  # fmt: skip


def heard(journal: Journal, hook: str) -> int:
    """How many events of `hook` arrived: its shadow hears them all after an off_same, the hook
    after an off_other."""
    event = hook[0].upper() + hook[1:]
    return max(journal.count(hook), journal.count("shadow." + event))


def _settled_once(journal: Journal, api: str, outcome: str, reason: str = "") -> None:
    """success or fail (`outcome`), once, then complete, once, with the same dict; `reason`
    the fail's errMsg tail."""
    names = [n for n in journal.names() if n in ("success", "fail", "complete")]
    assert names == [outcome, "complete"], names
    res = journal.first(outcome)
    expected = api + ":ok" if outcome == "success" else "%s:fail %s" % (api, reason)
    assert res["errMsg"] == expected, res
    assert journal.first("complete") is res


class HttpKind(Kind):
    """request, downloadFile, uploadFile: the hooks run before the task settles, or as it does."""

    callbacks = ("success", "fail", "complete")
    intercepted = observed = True
    calls = ("abort", "off_same", "off_other", "new_call", "result_other", "result_self",
             "wait_on_thread", "runtime_close")  # fmt: skip
    failing_hooks = ("fail", "intercept.fail")  # these run against the refusing port
    # hooks that run before the task settles (observe: its first event is "started")
    before_settle: Tuple[str, ...] = ("headers", "chunk", "progress", "invoke", "observe")

    def options(self, ctx: Ctx, url: str) -> Dict[str, Any]:
        raise NotImplementedError

    def start(self, ctx: Ctx) -> None:
        peers = ctx.peers
        if ctx.cell.hook in self.failing_hooks:
            options = self.options(ctx, "http://127.0.0.1:%d/refused" % peers.refused)
        else:
            options = self.options(ctx, peers.http)
        for name in self.callbacks:
            options[name] = ctx.fn(name)
        self.intercept(ctx)
        ctx.subject = getattr(ctx.rt, self.api)(options)
        ctx.attach(ctx.subject, self.listeners)

    def drive(self, ctx: Ctx) -> None:
        ctx.wait(lambda j: j.count("complete") >= 1, "complete")

    def check(self, ctx: Ctx) -> None:
        cell = ctx.cell
        if cell.call == "abort" and cell.hook in self.before_settle:
            outcome, reason = "fail", "abort"
        elif cell.hook in self.failing_hooks:
            outcome, reason = "fail", "connection refused"
        else:
            outcome, reason = "success", ""
        _settled_once(ctx.journal, self.api, outcome, reason)
        if outcome == "success":
            assert ctx.subject.result(WAIT)["errMsg"] == self.api + ":ok"
        else:
            try:
                ctx.subject.result(WAIT)
            except FtError as error:
                assert error.errMsg == "%s:fail %s" % (self.api, reason)
            else:
                raise AssertionError("result() of a failed task returned")


class RequestKind(HttpKind):
    """With enableChunked: the chunks, and the text, line and Server-Sent Event views of them
    (API.md §10)."""

    name = "request"
    api = "request"
    listeners = {
        "headers": "HeadersReceived",
        "chunk": "ChunkReceived",
        "text": "TextChunkReceived",
        "line": "LineReceived",
        "event": "ServerSentEvent",
    }
    before_settle = HttpKind.before_settle + ("text", "line", "event")
    events_body = quote("data: a\n\nid: 2\ndata: b\n\ndata: c\n\n")

    def options(self, ctx: Ctx, url: str) -> Dict[str, Any]:
        if ctx.cell.hook == "event":
            url += "/text?content_type=text/event-stream&body=" + self.events_body
        else:  # four pieces a few ms apart: several events, even on a busy machine
            url += "/chunked/4096?pieces=4&delay_ms=2"  # (a pattern with "\n" in it: lines)
        return {"url": url, "enableChunked": True}


class DownloadKind(HttpKind):
    name = "downloadFile"
    api = "downloadFile"
    listeners = {"headers": "HeadersReceived", "progress": "ProgressUpdate"}

    def options(self, ctx: Ctx, url: str) -> Dict[str, Any]:
        # a Content-Length and four paced pieces: progress events arrive mid-body
        return {"url": url + "/slow-body/65536?pieces=4&delay_ms=2"}

    def check(self, ctx: Ctx) -> None:
        super().check(ctx)
        if ctx.journal.first("fail") is not None:
            assert os.listdir(ctx.rt.sandbox.temp) == []  # no partial file left


class UploadKind(HttpKind):
    name = "uploadFile"
    api = "uploadFile"
    listeners = {"headers": "HeadersReceived", "progress": "ProgressUpdate"}

    def options(self, ctx: Ctx, url: str) -> Dict[str, Any]:
        path = os.path.join(ctx.rt.env["USER_DATA_PATH"], "upload.bin")
        with open(path, "wb") as out:
            out.write(os.urandom(UPLOAD_BYTES))
        return {"url": url + "/sink", "filePath": path, "name": "file"}


class SocketKind(Kind):
    """connectSocket's SocketTask: callbacks while it connects, listeners once it is created,
    `send`/`close` callbacks once it is open. Hooks other than `error` (a refused connection)
    and `fail` (a refused option) run against the greeting echo peer; the driver then sends a
    message and closes, so every socket ends with one onClose."""

    name = "SocketTask"
    api = "connectSocket"
    listeners = {"open": "Open", "message": "Message", "error": "Error", "close": "Close"}
    callbacks: Tuple[str, ...] = ("success", "fail", "complete", "send.complete", "close.complete")
    intercepted = observed = True
    call_callbacks = True
    calls: Tuple[str, ...] = CALLS
    connect_complete = "complete"  # what the journal calls connectSocket's complete
    # where the hooks run (first time): while it connects, while it is open, or neither
    while_connecting = ("success", "complete", "intercept.success", "intercept.complete", "observe")
    while_open = ("open", "message", "send.complete")

    def scenario(self, cell: Cell) -> str:
        if cell.hook == "error":
            return "refused"
        if cell.hook in ("fail", "intercept.fail"):
            return "invalid"
        return "greeting"

    def url(self, ctx: Ctx) -> str:
        scenario = self.scenario(ctx.cell)
        if scenario == "refused":
            return "ws://127.0.0.1:%d/" % ctx.peers.refused
        if scenario == "invalid":
            return "http://127.0.0.1/not-a-ws-url"
        return ctx.peers.ws + "/"

    def started(self, cell: Cell) -> bool:
        """Whether connectSocket gets past its checks (the socket is created)."""
        aborted_first = cell.hook == "invoke" and cell.call == "abort"
        return self.scenario(cell) != "invalid" and not aborted_first

    def start(self, ctx: Ctx) -> None:
        options: Dict[str, Any] = {"url": self.url(ctx)}
        for name in ("success", "fail", "complete"):
            options[name] = ctx.fn(name)
        self.intercept(ctx)
        ctx.subject = ctx.rt.connectSocket(options)
        ctx.attach(ctx.subject, self.listeners)

    def drive(self, ctx: Ctx) -> None:
        settled = self.connect_complete
        ctx.wait(lambda j: j.count(settled) >= 1, "connectSocket's complete")
        if not self.started(ctx.cell):
            return
        if self.scenario(ctx.cell) == "refused":
            ctx.wait(lambda j: j.count("close") >= 1, "onClose")
            return
        ctx.wait(lambda j: j.count("open") + j.count("close") >= 1, "onOpen")
        self.driver_send(ctx)
        greeted = len(PEER_MESSAGES)
        ctx.wait(lambda j: heard(j, "message") >= greeted or j.count("close") >= 1, "messages")
        self.driver_close(ctx)
        ctx.wait(
            lambda j: j.count("close") >= 1
            and j.count("send.complete") >= 1
            and j.count("close.complete") >= 1,
            "onClose and the driver's send/close callbacks",
        )

    def driver_send(self, ctx: Ctx) -> None:
        ctx.subject.send({"data": "from the driver", "complete": ctx.fn("send.complete")})

    def driver_close(self, ctx: Ctx) -> None:
        ctx.subject.close({"complete": ctx.fn("close.complete")})

    def close_codes(self, cell: Cell) -> Sequence[int]:
        """onClose's possible codes: 1006 when no close frame was exchanged (refused, or ended
        while connecting), 1001 for an abort of an open socket, else the driver's 1000."""
        if self.scenario(cell) == "refused":
            return (1006,)
        if cell.call in ("abort", "close") and cell.hook in self.while_connecting:
            return (1006,)
        if cell.call == "abort" and cell.hook in self.while_open:
            return (1001,)
        if cell.call == "abort" and cell.hook == "close.complete":  # the close may be done
            return (1000, 1001)
        return (1000,)

    def check(self, ctx: Ctx) -> None:
        cell, journal = ctx.cell, ctx.journal
        if not self.started(cell):
            aborted_first = cell.hook == "invoke" and cell.call == "abort"
            reason = "abort" if aborted_first else "invalid url"
            _settled_once(journal, self.api, "fail", reason)
            assert journal.count("close") == 0, journal.names()
            return
        _settled_once(journal, self.api, "success")
        assert ctx.subject.result(WAIT)["socketTaskId"] == ctx.subject.id
        self.check_close(ctx)
        assert ctx.subject.readyState == 3

    def check_close(self, ctx: Ctx) -> None:
        """onClose once, with the expected code, and no onOpen or onMessage after it."""
        journal = ctx.journal
        names = journal.names()
        assert names.count("close") == 1, names
        assert journal.first("close")["code"] in self.close_codes(ctx.cell), journal.first("close")
        # Listeners run synchronously, from a snapshot: one that ends the socket has onClose
        # run nested, so a listener attached after it (a shadow) still gets the event being
        # dispatched, after onClose. The first-attached listeners tell the order.
        after = names[names.index("close") + 1 :]
        assert "open" not in after and "message" not in after, names
        if self.scenario(ctx.cell) == "greeting":
            assert journal.count("send.complete") == 1 and journal.count("close.complete") == 1


class GlobalSocketKind(SocketKind):
    """The global socket API: `onSocketX` listeners of the runtime (no `off`), and the
    callbacks of `sendSocketMessage`/`closeSocket`; calls are the global ones."""

    name = "globalSocket"
    api = ""
    callbacks = ("send.complete", "close.complete")
    intercepted = observed = False
    calls = ("close", "send", "new_call", "result_other", "wait_on_thread", "runtime_close")
    connect_complete = "connect.complete"

    def scenario(self, cell: Cell) -> str:
        return "refused" if cell.hook == "error" else "greeting"

    def start(self, ctx: Ctx) -> None:
        rt = ctx.rt
        for hook, event in self.listeners.items():
            getattr(rt, "onSocket" + event)(ctx.fn(hook))
        ctx.subject = rt.connectSocket(
            url=self.url(ctx),
            success=ctx.journal.recorder("connect.success"),
            fail=ctx.journal.recorder("connect.fail"),
            complete=ctx.journal.recorder("connect.complete"),
        )

    def close(self, ctx: Ctx) -> None:
        ctx.rt.closeSocket({"complete": ctx.journal.recorder("call.complete")})

    def send(self, ctx: Ctx) -> None:
        ctx.rt.sendSocketMessage(
            {"data": "re-entrant", "complete": ctx.journal.recorder("call.complete")}
        )

    def driver_send(self, ctx: Ctx) -> None:
        ctx.rt.sendSocketMessage({"data": "from the driver", "complete": ctx.fn("send.complete")})

    def driver_close(self, ctx: Ctx) -> None:
        ctx.rt.closeSocket({"complete": ctx.fn("close.complete")})

    def check(self, ctx: Ctx) -> None:
        names = [n for n in ctx.journal.names() if n.startswith("connect.")]
        assert names == ["connect.success", "connect.complete"], names
        self.check_close(ctx)


class UdpKind(Kind):
    """UDPSocket: events only. The socket binds (onListening), sends three datagrams to the
    echo (onMessage) and one to port 0 (onError, errCode 2), then the driver closes it."""

    name = "UDPSocket"
    listeners = {
        "listening": "Listening",
        "message": "Message",
        "error": "Error",
        "close": "Close",
    }
    calls = ("close", "send", "off_same", "off_other", "new_call", "result_other",
             "wait_on_thread", "runtime_close")  # fmt: skip

    def start(self, ctx: Ctx) -> None:
        udp = ctx.subject = ctx.rt.createUDPSocket()
        ctx.attach(udp, self.listeners)
        assert udp.bind(0) > 0
        address, port = ctx.peers.udp
        for index in range(3):
            udp.send({"address": address, "port": port, "message": b"m%d" % index})
        udp.send({"address": address, "port": 0, "message": b"to nowhere"})

    def drive(self, ctx: Ctx) -> None:
        ctx.wait(
            lambda j: j.count("close") >= 1
            or (j.count("listening") >= 1 and j.count("error") >= 1 and heard(j, "message") >= 3),
            "onListening, onError and the echoes",
        )
        ctx.subject.close()
        ctx.wait(lambda j: j.count("close") >= 1, "onClose")

    def check(self, ctx: Ctx) -> None:
        journal = ctx.journal
        names = journal.names()
        assert names.count("close") == 1, names
        assert "listening" in names[: names.index("close")], names  # onListening first
        after = names[names.index("close") + 1 :]
        assert "message" not in after and "shadow.Message" not in after, names
        assert journal.first("error")["errCode"] == 2  # the datagram to port 0, sent first

    def close(self, ctx: Ctx) -> None:
        ctx.subject.close()

    def send(self, ctx: Ctx) -> None:
        address, port = ctx.peers.udp
        ctx.subject.send({"address": address, "port": port, "message": b"re-entrant"})


def received(journal: Journal, name: str) -> int:
    """Bytes the `name` entries (TCP message events) carried."""
    return sum(len(res["message"]) for res in journal.all(name))


class TcpKind(Kind):
    """TCPSocket: events only. It connects to the echo (onConnect) and writes three pieces
    while connecting (onMessage, however the reads split them), or to the refusing port for
    the `error` hook (onError -4, onClose); then the driver closes it."""

    name = "TCPSocket"
    config = {"tcp": {"bannedPorts": []}}  # the peers' ports are whatever the kernel gave
    listeners = {"connect": "Connect", "message": "Message", "error": "Error", "close": "Close"}
    calls = UdpKind.calls
    pieces = (b"m1", b"m2", b"m3")

    def start(self, ctx: Ctx) -> None:
        tcp = ctx.subject = ctx.rt.createTCPSocket()
        ctx.attach(tcp, self.listeners)
        refused = ctx.cell.hook == "error"
        port = ctx.peers.refused if refused else ctx.peers.tcp
        tcp.connect({"address": "127.0.0.1", "port": port})
        if not refused:
            for piece in self.pieces:
                tcp.write(piece)

    def drive(self, ctx: Ctx) -> None:
        total = sum(len(piece) for piece in self.pieces)
        ctx.wait(
            lambda j: j.count("close") >= 1
            or max(received(j, "message"), received(j, "shadow.Message")) >= total,
            "onConnect and the echo",
        )
        ctx.subject.close()
        ctx.wait(lambda j: j.count("close") >= 1, "onClose")

    def check(self, ctx: Ctx) -> None:
        journal, names = ctx.journal, ctx.journal.names()
        assert names.count("close") == 1, names
        after = names[names.index("close") + 1 :]
        assert "message" not in after and "connect" not in after, names
        if ctx.cell.hook == "error":
            assert journal.first("error")["errCode"] == -4, journal.first("error")
        else:
            assert "connect" in names[: names.index("close")], names

    def close(self, ctx: Ctx) -> None:
        ctx.subject.close()

    def send(self, ctx: Ctx) -> None:
        ctx.subject.write("re-entrant")


KINDS: Tuple[Kind, ...] = (
    RequestKind(),
    DownloadKind(),
    UploadKind(),
    SocketKind(),
    GlobalSocketKind(),
    UdpKind(),
    TcpKind(),
)

CELLS: List[Cell] = [cell for kind in KINDS for cell in kind.cells()]


# -- one cell ------------------------------------------------------------------------------------


class _Observer:
    """A plugin whose `ftcore_task_observe` is the cell's observe hook for the subject."""

    def __init__(self) -> None:
        self.ctx: Optional[Ctx] = None

    @ftcore.hookimpl
    def ftcore_task_observe(self, task: Any, event: str, payload: Dict[str, Any]) -> None:
        ctx = self.ctx
        if ctx is not None and task is ctx.subject:
            ctx.fn("observe")(dict(payload, event=event))


def run_cell(cell: Cell, peers: Peers) -> None:
    observer = _Observer()
    rt = ftcore.Runtime(config=cell.kind.config, entrypoints=False, plugins=[observer])
    try:
        ctx = observer.ctx = Ctx(cell, rt, peers)
        if cell.call == "result_other":
            ctx.other = rt.request(url=peers.http + "/echo?other=1")
            ctx.other.result(WAIT)
        on_loop(rt, lambda: cell.kind.start(ctx))
        cell.kind.drive(ctx)
        ctx.wait(lambda j: j.count("call.returned") >= 1, "the hook's call to return")
        cell.kind.check(ctx)
        _check_call(ctx)
        follow_up = rt.request(url=peers.http + "/echo?follow-up=1").result(WAIT)
        assert follow_up["statusCode"] == 200
    finally:
        close_bounded(rt)


def _check_call(ctx: Ctx) -> None:
    """The re-entrant call returned (or raised what API.md says) and did what it should."""
    cell, journal = ctx.cell, ctx.journal
    assert ctx.outcome is not None
    how, value = ctx.outcome
    if cell.call == "result_self":
        if ctx.done_at_call:  # a finished task answers on any thread
            assert how == "returned" or isinstance(value, FtError), ctx.outcome
        else:  # unfinished, on the loop thread: refused, never a deadlock
            assert how == "raised" and isinstance(value, RuntimeError), ctx.outcome
        return
    if cell.call == "runtime_close":  # close() waits for the loop: refused on it
        assert how == "raised" and isinstance(value, RuntimeError), ctx.outcome
        assert not ctx.rt.closed
        return
    assert how == "returned", "%s raised %r" % (cell.call, value)
    if cell.call == "result_other":
        assert value["errMsg"] == "request:ok", value
    elif cell.call in ("new_call", "wait_on_thread"):
        (spawned,) = ctx.spawned
        assert spawned.result(WAIT)["statusCode"] == 200
    elif cell.call == "off_same" and cell.hook in cell.kind.listeners:
        assert journal.count(cell.hook) == 1, journal.names()  # never called again
    elif cell.call == "off_same":
        assert cell.kind.api not in ctx.rt.interceptors
    elif cell.call == "off_other" and cell.hook in INTERCEPTOR_HOOKS:
        assert None not in ctx.rt.interceptors
    elif cell.call == "off_other":
        # removed during its own event's dispatch, it still gets that event (the snapshot),
        # and nothing after; removed from a callback, nothing more at all
        listener = cell.hook in cell.kind.listeners
        events = [cell.kind.listeners[cell.hook]] if listener else list(ctx.shadows)
        calls = sum(journal.count("shadow." + event) for event in events)
        assert calls == ctx.shadow_before_off + listener, journal.names()
    elif cell.call in ("send", "close") and cell.kind.call_callbacks:
        ctx.wait(lambda j: j.count("call.complete") >= 1, "the call's complete")
        assert journal.count("call.complete") == 1, journal.names()
