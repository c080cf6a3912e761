"""request: network failures, hostile servers, timeouts and TLS, each with its errno."""

from __future__ import annotations

import socket
import threading

import pytest

from ftcore.loop import ManualClock
from tests.http.helpers import call
from tests.peers import hostile
from tests.support.clock import run_past_deadline
from tests.support.results import fail_of
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(30)


def test_connection_refused_600014(rt):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    res = call(rt, url="http://127.0.0.1:%d/" % port)
    assert res == {"errMsg": "request:fail connection refused", "errno": 600014}


def test_name_not_resolved_600016(rt):
    res = call(rt, url="http://name-that-does-not-exist.invalid/", timeout=20000)
    assert res["errno"] == 600016, res
    assert res["errMsg"] == "request:fail name not resolved"


def test_never_answering_server_times_out_at_the_deadline(make_runtime, hostile_server):
    clock = ManualClock()
    rt = make_runtime(clock=clock)
    url = hostile_server(hostile.never_answer)
    task = rt.request(url=url, timeout=300)
    assert url.server.wait_accepted(1)
    run_past_deadline(rt, clock, task, 0.3)
    error = fail_of(task)
    assert error.res == {"errMsg": "request:fail timeout", "errno": 600011}


def test_config_network_timeout_applies(make_runtime, hostile_server):
    clock = ManualClock()
    rt = make_runtime({"networkTimeout": {"request": 200}}, clock=clock)
    url = hostile_server(hostile.never_answer)
    task = rt.request(url=url)
    run_past_deadline(rt, clock, task, 0.2)
    assert fail_of(task).errno == 600011


def test_stall_mid_body_times_out(make_runtime, hostile_server):
    clock = ManualClock()
    rt = make_runtime(clock=clock)
    url = hostile_server(hostile.stall_mid_body)
    headers = threading.Event()
    task = rt.request(url=url, timeout=300, responseType="arraybuffer")
    task.onHeadersReceived(lambda res: headers.set())
    assert headers.wait(WAIT)  # the body has begun: the deadline covers the stalled body too
    run_past_deadline(rt, clock, task, 0.3)
    assert fail_of(task).errMsg == "request:fail timeout"


def test_reset_mid_body_600015(rt, hostile_server):
    res = call(rt, url=hostile_server(hostile.reset_mid_body))
    assert res["errno"] == 600015, res
    assert res["errMsg"].startswith("request:fail connection")


def test_short_body_against_content_length_600015(rt, hostile_server):
    res = call(rt, url=hostile_server(hostile.short_body))
    assert res["errno"] == 600015, res
    assert "short body" in res["errMsg"]


def test_close_without_response_600015(rt, hostile_server):
    res = call(rt, url=hostile_server(hostile.close_without_response))
    assert res["errno"] == 600015, res


def test_huge_header_block_600019(rt, hostile_server):
    res = call(rt, url=hostile_server(hostile.huge_headers))
    assert res["errno"] == 600019, res
    assert res["errMsg"] == "request:fail response header too large"


def test_huge_single_header_line_600019(rt, hostile_server):
    raw = b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70000 + b"\r\nContent-Length: 0\r\n\r\n"
    res = call(rt, url=hostile_server(hostile.respond(raw)))
    assert res["errno"] == 600019, res


def test_garbage_status_line_600018(rt, hostile_server):
    res = call(rt, url=hostile_server(hostile.garbage_status_line))
    assert res["errno"] == 600018, res
    assert res["errMsg"].startswith("request:fail bad response")


def test_bad_chunk_size_fails(rt, hostile_server):
    res = call(rt, url=hostile_server(hostile.bad_chunk_size))
    assert res["errno"] in (600015, 600018), res


# -- TLS ---------------------------------------------------------------------------------------


def test_untrusted_certificate_fails_600017(rt, untrusted_https_server):
    res = call(rt, url=untrusted_https_server.url + "/json")
    assert res["errno"] == 600017
    assert res["errMsg"].startswith("request:fail ssl error: CERTIFICATE_VERIFY_FAILED"), res


def test_trusted_through_cafile(make_runtime, https_server):
    rt = make_runtime({"tls": {"cafile": https_server.cafile}})
    res = call(rt, url=https_server.url + "/json")
    assert res["statusCode"] == 200 and res["data"]["hello"] == "world"


def test_cafile_of_another_ca_does_not_trust_the_server(
    make_runtime, https_server, untrusted_https_server
):
    rt = make_runtime({"tls": {"cafile": https_server.cafile}})
    assert (
        call(rt, url=https_server.url.replace("127.0.0.1", "localhost") + "/json")["statusCode"]
        == 200
    )
    res = call(rt, url=untrusted_https_server.url + "/json")
    assert res["errno"] == 600017


def test_verify_false_accepts_untrusted(make_runtime, untrusted_https_server):
    rt = make_runtime({"tls": {"verify": False}})
    res = call(rt, url=untrusted_https_server.url + "/json")
    assert res["statusCode"] == 200


def test_plain_http_to_tls_port_fails(rt, https_server):
    res = call(rt, url=https_server.url.replace("https:", "http:") + "/json", timeout=5000)
    assert res["errno"] in (600015, 600018), res


def test_tls_to_plain_port_fails_600017(rt, http_server):
    res = call(rt, url=http_server.url.replace("http:", "https:") + "/json", timeout=5000)
    assert res["errno"] == 600017, res
