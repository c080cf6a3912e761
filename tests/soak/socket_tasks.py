"""WebSocket tasks and UDP sockets: launched, listened to, disturbed and checked.

A SocketTask sends a few messages once open and closes when they are back (an echo must return
what was sent), or is closed or aborted from onOpen, onMessage or the caller thread; every
socket is reaped after a few seconds at the latest. A UDPSocket sends datagrams to the echo
peer (or to a port nobody listens on) and is closed from onMessage or the caller thread.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List

from tests.peers.http_app import pattern_bytes
from tests.soak.ledger import FAILURE, Record
from tests.soak.scenarios import (
    TIMEOUT_MS,
    P_TIMEOUT_OPTION,
    Env,
    Slot,
    after_complete,
    maybe_abort_later,
)
from tests.soak.targets import SocketTarget, UdpTarget

P_CLOSE_ON_OPEN = 0.08
P_ABORT_ON_OPEN = 0.05
P_ABORT_ON_MESSAGE = 0.05
P_SEND_CALLBACKS = 0.3  # send/close with success/fail/complete, checked like a task's
P_UDP_CLOSE_IN_LISTENER = 0.5
WS_LIFE_S = (0.3, 3.0)  # every socket is closed or aborted by then at the latest
UDP_LIFE_S = (0.1, 1.5)


def start_socket(env: Env, slot: Slot, record: Record, target: SocketTarget, rng: Any) -> None:
    tally = env.tally
    options: Dict[str, Any] = {"url": target.url, "perMessageDeflate": target.deflate}
    if rng.random() < P_TIMEOUT_OPTION:
        options["timeout"] = rng.randint(*TIMEOUT_MS)
    open_action = rng.random()
    message_abort = rng.random() < P_ABORT_ON_MESSAGE
    count = rng.randint(1, 4)
    messages = [_message(rng, index) for index in range(count)]

    def success(res: Dict[str, Any]) -> None:
        record.settled(True, res)

    def fail(res: Dict[str, Any]) -> None:
        record.settled(False, res)

    def complete(res: Dict[str, Any]) -> None:
        record.completed(res)
        after_complete(env, slot, record, rng)
        if record.outcome == FAILURE:
            record.finish()  # a socket that never lived has no onClose

    def on_open(res: Dict[str, Any]) -> None:
        record.event("O")
        tally.figure("websocket onOpen")
        if not target.opens:
            record.problem("onOpen fired for a peer that never completes the handshake")
        for data in messages:
            record.sent.append(data)
            task.send(_tracked(env, record, rng, "send", {"data": data}))
        if open_action < P_CLOSE_ON_OPEN:
            tally.count("close from onOpen")
            _close(env, record, task, rng)
        elif open_action < P_CLOSE_ON_OPEN + P_ABORT_ON_OPEN:
            tally.count("abort from onOpen")
            task.abort()

    def on_message(res: Dict[str, Any]) -> None:
        record.event("M")
        record.received.append(res["data"])
        if message_abort:
            tally.count("abort from onMessage")
            task.abort()
        elif len(record.received) >= len(record.sent) and not record.closed_by_us:
            _close(env, record, task, rng)

    def on_close(res: Dict[str, Any]) -> None:
        record.event("X")
        code = res.get("code")
        if isinstance(code, int) and 3000 <= code <= 4999:
            code = "3000-4999"  # what we closed with: one of those
        tally.figure("websocket onClose code %s" % code)
        tally.figure("websocket messages echoed", len(record.received))
        if target.echo and record.received != record.sent[: len(record.received)]:
            record.problem("the echo differs from what was sent")
        record.finish()

    options.update(success=success, fail=fail, complete=complete)
    task = slot.rt.connectSocket(options)
    record.task = task
    task.onOpen(on_open)
    task.onMessage(on_message)
    task.onError(lambda res: record.event("E"))
    task.onClose(on_close)
    env.schedule(rng.uniform(*WS_LIFE_S), lambda: _reap_socket(env, record, rng))
    maybe_abort_later(env, record, rng)


def _message(rng: Any, index: int) -> Any:
    size = rng.choice((0, 7, 300, 5000, 70000))
    if rng.random() < 0.5:
        return ("m%d-" % index + "é" * size)[:size]
    return pattern_bytes(size, index)


def _close(env: Env, record: Record, task: Any, rng: Any) -> None:
    record.closed_by_us = True
    code = 1000 if rng.random() < 0.5 else rng.randint(3000, 4999)
    reason = "soak " * rng.randint(0, 24)  # up to 120 bytes: within the 123 allowed
    task.close(_tracked(env, record, rng, "close", {"code": code, "reason": reason}))


def _reap_socket(env: Env, record: Record, rng: Any) -> None:
    """The end of a socket's life, from the caller thread: close it, or abort it."""
    task = record.task  # dropped when the socket is done
    if task is None:
        return
    if rng.random() < 0.3:
        env.tally.count("abort a socket from the caller thread")
        task.abort()
    else:
        env.tally.count("close a socket from the caller thread")
        record.closed_by_us = True
        task.close({"code": 1000})


def _tracked(env: Env, record: Record, rng: Any, name: str, options: Dict[str, Any]
             ) -> Dict[str, Any]:
    """`options` with success/fail/complete that check the exactly-once rule, sometimes."""
    if rng.random() >= P_SEND_CALLBACKS:
        return options
    seen: List[str] = []

    def settle(letter: str) -> Callable[[Dict[str, Any]], None]:
        def callback(res: Dict[str, Any]) -> None:
            if seen:
                record.problem("%s: success/fail again (%s after %r)" % (name, letter, seen))
            seen.append(letter)

        return callback

    def complete(res: Dict[str, Any]) -> None:
        if len(seen) != 1 or seen[0] not in "SF":
            record.problem("%s: complete out of turn (after %r)" % (name, seen))
        seen.append("C")
        env.tally.figure("%s callbacks checked" % name)

    options.update(success=settle("S"), fail=settle("F"), complete=complete)
    return options


# -- UDP ---------------------------------------------------------------------------------------


def start_udp(env: Env, slot: Slot, record: Record, target: UdpTarget, rng: Any) -> None:
    tally = env.tally
    sock = slot.rt.createUDPSocket("udp4")
    record.task = sock
    close_in_listener = rng.random() < P_UDP_CLOSE_IN_LISTENER
    wanted = {bytes(rng.getrandbits(8) for _ in range(8)) + b"-%d" % i: rng.choice(
        (0, 100, 2000, 65000)) for i in range(rng.randint(1, 6))}

    def on_message(res: Dict[str, Any]) -> None:
        record.event("M")
        data = res["message"]
        if data not in record.sent:
            record.problem("a datagram we never sent arrived (%d bytes)" % len(data))
        record.received.append(len(data))
        if close_in_listener and len(record.received) == len(record.sent):
            tally.count("close a UDP socket from onMessage")
            sock.close()

    def on_close(res: Dict[str, Any]) -> None:
        record.event("X")
        record.outcome = "closed"
        tally.figure("udp datagrams sent", len(record.sent))
        tally.figure("udp datagrams echoed", len(record.received))
        tally.figure("udp onError events", record.events.count("E"))
        record.finish()

    sock.onListening(lambda res: record.event("L"))
    sock.onMessage(on_message)
    sock.onError(lambda res: record.event("E"))
    sock.onClose(on_close)
    if target.dead:
        sock.connect({"address": "127.0.0.1", "port": target.port})
        for _ in wanted:
            sock.write({"message": b"nobody listens"})
    else:
        if rng.random() < 0.5:
            sock.bind(0)
        for head, size in wanted.items():
            data = (head * (size // len(head) + 1))[: max(size, len(head))]
            record.sent.append(data)
            sock.send({"address": "127.0.0.1", "port": target.port, "message": data})

    def reap() -> None:
        if not record.done:
            tally.count("close a UDP socket from the caller thread")
            sock.close()

    env.schedule(rng.uniform(*UDP_LIFE_S), reap)

