#!/usr/bin/env python3
"""Autobahn echo-client adapter for ftcore's product API (`connectSocket` + `SocketTask`).

    adapter_ftcore.py [BASE_URL [AGENT]]

BASE_URL / AGENT default to $AUTOBAHN_URL / $AUTOBAHN_AGENT (run.py passes both). Each case is
one `Runtime.connectSocket(url=..., perMessageDeflate=True)` whose `onMessage` listener echoes
through `task.send`, run sequentially; `wsMaxMessageBytes` is raised to 64 MiB for 9.*.
Protocol: /work/shared/autobahn/README.md ("Adapter protocol"). Runs from the source tree: the
repository root and `plugins/` are put on sys.path relative to this file.
"""

import json
import os
import sys
import threading

_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
sys.path[:0] = [_ROOT, os.path.join(_ROOT, "plugins")]

import ftcore  # noqa: E402

CASE_TIMEOUT = float(os.environ.get("AUTOBAHN_CASE_TIMEOUT", "120"))
MAX_MESSAGE_BYTES = 64 * 2**20


def session(rt, url, echo=True, timeout=CASE_TIMEOUT):
    """Connect, echo every message (same type) when `echo`, return once closed."""
    closed = threading.Event()
    received = []
    outcome = {}
    task = rt.connectSocket(url=url, perMessageDeflate=True, timeout=int(timeout * 1000))

    def on_message(res):
        data = res["data"]
        if echo:
            task.send({"data": data})
        else:
            received.append(data)  # only the control sessions keep what they get

    def on_close(res):
        outcome["close"] = res
        closed.set()

    task.onMessage(on_message)
    task.onError(lambda res: outcome.setdefault("error", res))
    task.onClose(on_close)
    if not closed.wait(timeout):
        print("  timed out after %.0fs" % timeout, flush=True)
        task.close({"code": 1000})
        closed.wait(10)
    if "error" in outcome:
        print(
            "  error: %s; close: %s" % (outcome["error"]["errMsg"], outcome.get("close")),
            flush=True,
        )
    return received


def main():
    base = sys.argv[1] if len(sys.argv) > 1 else os.environ["AUTOBAHN_URL"]
    agent = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("AUTOBAHN_AGENT", "ftcore")
    config = {"limits": {"wsMaxMessageBytes": MAX_MESSAGE_BYTES}, "maxConcurrent": {"socket": 2}}
    with ftcore.Runtime(config=config) as rt:
        count = int(json.loads(session(rt, base + "/getCaseCount", echo=False)[0]))
        print("ftcore %s: %d cases" % (ftcore.__version__, count), flush=True)
        for i in range(1, count + 1):
            print("case %d" % i, flush=True)
            try:
                session(rt, "%s/runCase?case=%d&agent=%s" % (base, i, agent))
            except Exception as exc:  # keep going with the next case
                print("  error: %r" % (exc,), flush=True)
        session(rt, "%s/updateReports?agent=%s" % (base, agent), echo=False, timeout=300)


if __name__ == "__main__":
    main()
