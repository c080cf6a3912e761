#!/usr/bin/env python3
"""Autobahn echo-client adapter for ftcore's sans-IO WebSocket codec over a blocking socket.

    adapter_ftcore_codec.py [BASE_URL [AGENT]]

BASE_URL / AGENT default to $AUTOBAHN_URL / $AUTOBAHN_AGENT (run.py passes both).
permessage-deflate is offered with client_max_window_bits. Protocol: see
/work/shared/autobahn/README.md ("Adapter protocol").
"""

import json
import os
import socket
import sys
import time
from urllib.parse import urlsplit

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
sys.path[:0] = [os.path.join(REPO, "plugins"), REPO]  # the package's __init__ imports ftcore

from ftcore_websocket.connection import Connection, State  # noqa: E402
from ftcore_websocket.events import (  # noqa: E402
    BinaryMessage,
    HandshakeRejected,
    TextMessage,
)

CASE_TIMEOUT = float(os.environ.get("AUTOBAHN_CASE_TIMEOUT", "120"))
MAX_MESSAGE_BYTES = 64 * 2**20  # 9.* sends up to 16 MiB; leave room


def session(url, timeout=CASE_TIMEOUT, echo=True):
    """Connect to url and run until the connection is closed; echo every message (same type)
    when echo is true; return the list of received messages."""
    deadline = time.monotonic() + timeout
    parts = urlsplit(url)
    target = parts.path + ("?" + parts.query if parts.query else "")
    sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    ws = Connection("client", max_message_bytes=MAX_MESSAGE_BYTES)
    received = []
    try:
        sock.sendall(ws.initiate(parts.netloc, target, deflate=True))
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise socket.timeout()
            sock.settimeout(remaining)
            data = sock.recv(262144)
            ws.receive_data(data)
            for event in ws.events():
                kind = type(event)
                if kind is TextMessage or kind is BinaryMessage:
                    received.append(event.data)
                    if echo and ws.state is State.OPEN:
                        if kind is TextMessage:
                            sock.sendall(ws.send_text(event.data))
                        else:
                            sock.sendall(ws.send_binary(event.data))
                elif kind is HandshakeRejected:
                    print("  handshake rejected: %s %s" % (event.status_code, event.reason))
            out = ws.data_to_send()
            if out:
                sock.sendall(out)
            if not data:  # the server closed the TCP stream (it does after the closing handshake)
                return received
    except socket.timeout:
        print("  timed out after %.0fs" % timeout)
        if ws.state is State.OPEN:
            try:
                sock.sendall(ws.close(1000))
            except OSError:
                pass
        return received
    except OSError as e:  # reset by peer etc.
        print("  socket error: %r" % e)
        return received
    finally:
        sock.close()


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ["AUTOBAHN_URL"]
    agent = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("AUTOBAHN_AGENT", "ftcore_codec")
    count = int(json.loads(session(base + "/getCaseCount", echo=False)[0]))
    print("ftcore codec: %d cases" % count, flush=True)
    for i in range(1, count + 1):
        print("case %d" % i, flush=True)
        try:
            session("%s/runCase?case=%d&agent=%s" % (base, i, agent))
        except Exception as e:  # keep going with the next case
            print("  error: %r" % e)
    session("%s/updateReports?agent=%s" % (base, agent), echo=False, timeout=300)


if __name__ == "__main__":
    main()
