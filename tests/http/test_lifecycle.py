"""request: abort at every stage, threads, the maxConcurrent.http queue, and a leak soak."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
from typing import Any, Dict, List

import pytest

import ftcore
from ftcore.loop import ManualClock
from tests.http.helpers import LOOP_THREAD, Recorder, call, ftcore_threads, paused_loop
from tests.peers import hostile
from tests.peers.http_server import HTTPPeer
from tests.support.clock import run_past_deadline
from tests.support.results import fail_of
from tests.support.waits import PROMPT

pytestmark = pytest.mark.timeout(30)

ABORT = {"errMsg": "request:fail abort", "errno": 600003}


def on_loop(rt: ftcore.Runtime, fn: Any) -> Any:
    """Run fn() on the loop thread and return its result (state snapshots)."""
    box: List[Any] = []
    done = threading.Event()
    rt.loop.call_soon_threadsafe(lambda: (box.append(fn()), done.set()))
    assert done.wait(10)
    return box[0]


def assert_aborted_once(recorder: Recorder) -> None:
    assert recorder.outcome == ABORT
    assert recorder.names().count("fail") == 1
    assert "success" not in recorder.names()
    assert set(recorder.threads()) == {LOOP_THREAD}


def test_abort_before_start(rt, hostile_server):
    url = hostile_server(hostile.never_answer)
    recorder = Recorder()
    with paused_loop(rt):
        task = rt.request(url=url, **recorder.callbacks())
        task.abort()
    assert_aborted_once(recorder.wait())
    assert rt.transport("http").wait_idle(1.0)


def test_abort_while_queued_never_reaches_the_server(make_runtime, http_server_factory):
    rt = make_runtime({"maxConcurrent": {"http": 1}})
    server = http_server_factory()
    first = rt.request(url=server.url + "/gate/queued-abort")
    assert server.gates.wait_arrived("queued-abort", 1)
    recorder = Recorder()
    queued = rt.request(url=server.url + "/echo?queued", **recorder.callbacks())
    assert on_loop(rt, lambda: len(rt.http_slots._waiting)) == 1
    queued.abort()
    assert_aborted_once(recorder.wait())
    assert on_loop(rt, lambda: (rt.http_slots.used, len(rt.http_slots._waiting))) == (1, 0)
    server.gates.open("queued-abort")
    assert first.result(10)["statusCode"] == 200
    assert server.requests_to("/echo") == []
    assert on_loop(rt, lambda: rt.http_slots.used) == 0


def test_abort_after_headers_frees_the_worker_at_once(rt, hostile_server):
    url = hostile_server(hostile.stall_mid_body)
    recorder = Recorder()
    aborted_at: List[float] = []

    def on_headers(res: Dict[str, Any]) -> None:
        recorder.listener("headers")(res)
        aborted_at.append(time.monotonic())
        task.abort()

    with paused_loop(rt):
        task = rt.request(url=url, **recorder.callbacks())
        task.onHeadersReceived(on_headers)
    assert_aborted_once(recorder.wait())
    assert recorder.names()[0] == "headers"
    transport = rt.transport("http")
    assert transport.wait_idle(PROMPT)  # the stalled body never ends: the abort ended it
    assert transport.checked_out == 0


def test_abort_while_waiting_for_headers(rt, hostile_server):
    url = hostile_server(hostile.never_answer)
    recorder = Recorder()
    task = rt.request(url=url, **recorder.callbacks())
    assert url.server.wait_accepted(1)
    task.abort()
    assert_aborted_once(recorder.wait())
    assert rt.transport("http").wait_idle(PROMPT)  # the peer never answers: the abort ended it


def test_abort_mid_body(rt, http_server):
    recorder = Recorder()
    chunks: List[bytes] = []

    def on_chunk(res: Dict[str, Any]) -> None:
        chunks.append(res["data"])
        task.abort()

    with paused_loop(rt):
        task = rt.request(
            url=http_server.url + "/slow-body/100000?pieces=100&delay_ms=20",
            enableChunked=True,
            **recorder.callbacks(),
        )
        task.onChunkReceived(on_chunk)
    assert_aborted_once(recorder.wait())
    assert len(chunks) == 1  # nothing reaches listeners after the abort
    transport = rt.transport("http")
    assert transport.wait_idle(1.0)
    assert transport.checked_out == 0


def test_abort_after_completion_is_a_noop(rt, http_server):
    recorder = Recorder()
    task = rt.request(url=http_server.url + "/json", **recorder.callbacks())
    res = task.result(10)
    recorder.wait()
    task.abort()
    task.abort()
    on_loop(rt, lambda: None)  # the aborts went through the loop
    assert recorder.names() == ["success", "complete"]
    assert task.result(0) is res


def test_result_and_done(rt, http_server):
    task = rt.request(url=http_server.url + "/json")
    assert task.result(10)["errMsg"] == "request:ok"
    assert task.done()
    failing = rt.request(url="http://127.0.0.1:1/")
    with pytest.raises(ftcore.FtError) as info:
        failing.result(10)
    assert info.value.errno == 600014 and info.value.errMsg == "request:fail connection refused"


def test_await(rt, http_server):
    import asyncio

    async def main() -> Dict[str, Any]:
        return await rt.request(url=http_server.url + "/json")

    assert asyncio.run(main())["data"]["hello"] == "world"


def test_callbacks_that_raise_do_not_break_the_task(rt, http_server, caplog):
    recorder = Recorder()

    def bad(res: Dict[str, Any]) -> None:
        raise RuntimeError("boom")

    task = rt.request(
        url=http_server.url + "/json", success=bad, complete=recorder.callbacks()["complete"]
    )
    recorder.wait()
    assert task.result(1)["statusCode"] == 200
    assert call(rt, url=http_server.url + "/json")["statusCode"] == 200


def test_max_concurrent_two_queues_the_rest(make_runtime, http_server_factory):
    rt = make_runtime({"maxConcurrent": {"http": 2}})
    server = http_server_factory()
    tasks = [rt.request(url=server.url + "/gate/two?i=%d" % i) for i in range(6)]
    assert server.gates.wait_arrived("two", 2)
    assert on_loop(rt, lambda: (rt.http_slots.used, len(rt.http_slots._waiting))) == (2, 4)
    assert server.gates.arrived("two") == 2
    server.gates.open("two")
    assert all(task.result(10)["statusCode"] == 200 for task in tasks)
    assert len({r.connection for r in server.requests}) <= 2  # never more than 2 at once
    assert on_loop(rt, lambda: rt.http_slots.used) == 0


def test_timeout_counts_time_spent_queued(make_runtime, http_server_factory):
    clock = ManualClock()
    rt = make_runtime({"maxConcurrent": {"http": 1}}, clock=clock)
    server = http_server_factory()
    first = rt.request(url=server.url + "/gate/queue-timeout")
    assert server.gates.wait_arrived("queue-timeout", 1)
    queued = rt.request(url=server.url + "/echo", timeout=200)
    run_past_deadline(rt, clock, queued, 0.2)
    assert fail_of(queued).errMsg == "request:fail timeout"
    server.gates.open("queue-timeout")
    assert first.result(10)["statusCode"] == 200
    assert server.requests_to("/echo") == []


def test_close_aborts_running_tasks(make_runtime, hostile_server):
    rt = make_runtime()
    url = hostile_server(hostile.never_answer)
    recorder = Recorder()
    rt.request(url=url, **recorder.callbacks())
    assert url.server.wait_accepted(1)
    rt.close()
    assert recorder.count("complete") == 1
    assert recorder.outcome == ABORT
    assert not ftcore_threads()


def open_fds() -> Dict[str, str]:
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    return out


def _tcp_lines(targets: Any) -> List[str]:
    inodes = {t[len("socket:[") : -1] for t in targets if t.startswith("socket:[")}
    lines = []
    for name in ("/proc/net/tcp", "/proc/net/tcp6", "/proc/net/unix"):
        try:
            with open(name) as f:
                lines += [
                    line.strip() for line in f if any(" %s " % i in line + " " for i in inodes)
                ]
        except OSError:
            pass
    return lines


@pytest.mark.timeout(120)
def test_soak_random_aborts_leak_nothing():
    fds_before = open_fds()
    threads_before = set(threading.enumerate())
    rng = random.Random(20240601)
    server = HTTPPeer(name="http-soak")
    rt = ftcore.Runtime(entrypoints=False)
    total = 500
    finished = threading.Semaphore(0)
    outcomes: Dict[int, List[str]] = {}
    lock = threading.Lock()
    routes = [
        "/bytes/2000",
        "/chunked/20000?pieces=4",
        "/slow-body/5000?pieces=5&delay_ms=2",
        "/json",
        "/redirect/302?to=/bytes/100",
        "/delay/5",
    ]
    try:
        tasks = []
        for i in range(total):

            def record(name: str, i: int = i) -> Any:
                def cb(res: Dict[str, Any]) -> None:
                    with lock:
                        outcomes.setdefault(i, []).append(name)
                    if name == "complete":
                        finished.release()

                return cb

            mode = rng.randrange(5)
            options: Dict[str, Any] = {
                "url": server.url + rng.choice(routes),
                "success": record("success"),
                "fail": record("fail"),
                "complete": record("complete"),
                "enableChunked": mode == 3,
            }
            task = rt.request(options)
            if mode == 1:
                task.abort()
            elif mode == 2:
                task.onHeadersReceived(lambda res, task=task: task.abort())
            elif mode == 3:
                task.onChunkReceived(lambda res, task=task: task.abort())
            tasks.append(task)
            if mode == 4 and tasks:
                rng.choice(tasks).abort()
        for _ in range(total):
            assert finished.acquire(timeout=30)
        assert all(
            sorted(names) in (["complete", "success"], ["complete", "fail"])
            for names in outcomes.values()
        ), outcomes
        assert len(outcomes) == total
        transport = rt.transport("http")
        assert transport.wait_idle(5)
        assert transport.checked_out == 0
    finally:
        rt.close()
        server.close()
    assert not ftcore_threads()
    assert set(threading.enumerate()) <= threads_before
    leaked = {fd: target for fd, target in open_fds().items() if fd not in fds_before}
    if leaked:
        pytest.fail(
            "leaked fds %r\n%s\nserver port %d (hex %04X)"
            % (leaked, "\n".join(_tcp_lines(leaked.values())), server.port, server.port)
        )


def test_minimal_without_urllib3_names_the_package(tmp_path):
    code = (
        "import sys; sys.modules['urllib3'] = None\n"
        "import ftcore, ftcore_urllib3\n"
        "rt = ftcore.Runtime(entrypoints=False)\n"
        "try:\n"
        "    rt.request(url='http://127.0.0.1:1/').result(10)\n"
        "except ftcore.FtError as e:\n"
        "    print(e.errno, e.errMsg)\n"
        "print('urllib3' in sys.modules and sys.modules['urllib3'] is not None)\n"
        "rt.close()\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.path.join(root, "plugins")]))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout.splitlines()
    assert out == [
        "600021 request:fail urllib3 is not installed: pip install 'ftcore[http]'",
        "False",
    ]


def test_importing_the_plugin_does_not_import_urllib3(tmp_path):
    code = (
        "import sys, ftcore_urllib3\n"
        "print(sorted(m for m in ('urllib3', 'ssl', 'http.client') if m in sys.modules))\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([root, os.path.join(root, "plugins")]))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    ).stdout.strip()
    assert "urllib3" not in out
