"""request: redirects are followed by the core, through the policies, at most 10 hops."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from tests.http.helpers import Recorder, call, paused_loop
from tests.peers.hostile import redirect_to

pytestmark = pytest.mark.timeout(30)


@pytest.mark.parametrize("code", [301, 302, 303])
def test_301_302_303_become_get_without_body(rt, http_server_factory, code):
    server = http_server_factory()
    res = call(
        rt,
        url=server.url + "/redirect/%d?to=/echo" % code,
        method="POST",
        data={"a": 1},
        header={"X-Keep": "yes"},
    )
    assert res["statusCode"] == 200
    seen = res["data"]
    assert seen["method"] == "GET"
    assert seen["body_len"] == 0
    assert "content-type" not in seen["headers"] and "content-length" not in seen["headers"]
    assert seen["headers"]["x-keep"] == "yes"
    first = server.requests_to("/redirect/%d" % code)[0]
    assert first.method == "POST" and first.body_len == len('{"a":1}')


@pytest.mark.parametrize("code", [307, 308])
def test_307_308_keep_method_and_body(rt, http_server_factory, code):
    server = http_server_factory()
    res = call(
        rt,
        url=server.url + "/redirect/%d?to=/echo" % code,
        method="PUT",
        data={"keep": "me"},
    )
    seen = res["data"]
    assert seen["method"] == "PUT"
    assert json.loads(seen["body"]) == {"keep": "me"}
    assert seen["headers"]["content-type"] == "application/json"


def test_chain_of_ten_is_followed(rt, http_server_factory):
    server = http_server_factory()
    res = call(rt, url=server.url + "/redirect-chain/10?absolute=1")
    assert res["statusCode"] == 200 and res["data"]["path"] == "/echo"
    assert len(server.requests_to("/redirect-chain/10")) == 1
    assert len(server.requests) == 11
    assert len({r.connection for r in server.requests}) == 1  # one keep-alive connection
    assert res["profile"]["redirectStart"] <= res["profile"]["redirectEnd"]


def test_redirect_loop_fails_600008(rt, http_server_factory):
    server = http_server_factory()
    recorder = Recorder()
    with paused_loop(rt):
        task = rt.request(url=server.url + "/redirect-loop", **recorder.callbacks())
        task.onHeadersReceived(recorder.listener("headers"))
    res = recorder.wait().outcome
    assert res == {"errMsg": "request:fail too many redirects", "errno": 600008}
    assert len(server.requests) == 11  # the first request and 10 redirects
    assert "headers" not in recorder.names()


def test_relative_location_resolved(rt, http_server):
    res = call(
        rt, url=http_server.url + "/redirect/302?to=" + quote("../echo?from=relative", safe="")
    )
    assert res["data"]["path"] == "/echo" and res["data"]["query"] == "from=relative"


def test_redirect_outside_domain_list_fails_600002(
    make_runtime, http_server_factory, hostile_server
):
    target = http_server_factory()
    rt = make_runtime({"domains": {"request": ["127.0.0.1"]}})
    url = hostile_server(redirect_to("http://localhost:%d/echo" % target.port))
    res = call(rt, url=url + "/start")
    assert res == {"errMsg": "request:fail url not in domain list", "errno": 600002}
    assert target.requests == []


def test_redirect_inside_domain_list_is_followed(make_runtime, http_server):
    rt = make_runtime({"domains": {"request": ["127.0.0.1"]}})
    res = call(rt, url=http_server.url + "/redirect/302?to=/json")
    assert res["statusCode"] == 200


def test_first_url_outside_domain_list_never_connects(make_runtime, hostile_server):
    from tests.peers.hostile import never_answer

    rt = make_runtime({"domains": {"request": ["example.com"]}})
    url = hostile_server(never_answer)
    assert call(rt, url=url)["errno"] == 600002
    assert url.server.accepted == 0


def test_manual_mode_ends_on_the_3xx(rt, http_server):
    recorder = Recorder()
    with paused_loop(rt):
        task = rt.request(
            url=http_server.url + "/redirect/302?to=/echo",
            redirect="manual",
            **recorder.callbacks(),
        )
        task.onHeadersReceived(recorder.listener("headers"))
    res = recorder.wait().outcome
    assert res["errMsg"] == "request:ok"
    assert res["statusCode"] == 302
    assert res["header"]["Location"] == "/echo"
    assert res["data"] == "redirecting to /echo"
    assert recorder.of("headers")[0]["statusCode"] == 302


def test_credentials_dropped_across_origins(rt, http_server_factory):
    a, b = http_server_factory(), http_server_factory()
    to = quote(b.url + "/echo", safe="")
    res = call(
        rt,
        url=a.url + "/redirect/307?to=" + to,
        header={"Authorization": "Bearer secret", "X-Other": "kept"},
    )
    seen = res["data"]["headers"]
    assert "authorization" not in seen and seen["x-other"] == "kept"
    assert a.requests[0].header("Authorization") == "Bearer secret"


def test_non_http_location_fails_invalid_url(rt, hostile_server):
    url = hostile_server(redirect_to("ftp://127.0.0.1/file"))
    assert call(rt, url=url)["errno"] == 600009
