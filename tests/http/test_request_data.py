"""request: options, data encoding and response decoding, against the real HTTP peer."""

from __future__ import annotations

import json
from typing import Any, Dict
from urllib.parse import parse_qsl, urlencode

import pytest

from tests.http.helpers import LOOP_THREAD, Recorder, call, paused_loop
from tests.peers.http_app import DEFAULT_TEXT, JSON_OBJECT, SET_COOKIES, pattern_bytes

pytestmark = pytest.mark.timeout(30)


def echo(rt: Any, server: Any, **options: Any) -> Dict[str, Any]:
    options.setdefault("url", server.url + "/echo")
    res = call(rt, **options)
    assert res["errMsg"] == "request:ok", res
    return res["data"]


# -- dataType × responseType -------------------------------------------------------------------


def test_json_text_is_parsed(rt, http_server):
    res = call(rt, url=http_server.url + "/json")
    assert res["data"] == JSON_OBJECT
    assert res["statusCode"] == 200
    assert set(res) == {"data", "statusCode", "header", "cookies", "profile", "errMsg"}


def test_json_arraybuffer_is_bytes(rt, http_server):
    res = call(rt, url=http_server.url + "/json", responseType="arraybuffer")
    assert isinstance(res["data"], bytes)
    assert json.loads(res["data"].decode("utf-8")) == JSON_OBJECT


def test_other_datatype_text_is_not_parsed(rt, http_server):
    res = call(rt, url=http_server.url + "/json", dataType="其他")
    assert isinstance(res["data"], str)
    assert json.loads(res["data"]) == JSON_OBJECT


def test_other_datatype_arraybuffer_is_bytes(rt, http_server):
    res = call(rt, url=http_server.url + "/bytes/300", dataType="text", responseType="arraybuffer")
    assert res["data"] == pattern_bytes(300)


def test_json_that_does_not_parse_falls_back_to_text(rt, http_server):
    res = call(rt, url=http_server.url + "/not-json?content_type=application/json")
    assert res["data"] == "hello{"


def test_json_with_bom_is_parsed(rt, http_server):
    assert call(rt, url=http_server.url + "/json-bom")["data"] == JSON_OBJECT


def test_text_default_charset_is_utf8(rt, http_server):
    res = call(rt, url=http_server.url + "/text", dataType="text")
    assert res["data"] == DEFAULT_TEXT


@pytest.mark.parametrize("charset", ["gbk", "shift_jis", "latin-1", "utf-16"])
def test_text_decoded_with_response_charset(rt, http_server, charset):
    body = "héllo" if charset == "latin-1" else "中文テキスト" if charset == "shift_jis" else "中文"
    query = urlencode({"charset": charset, "body": body})
    res = call(rt, url=http_server.url + "/text?" + query, dataType="text")
    assert res["data"] == body


def test_undecodable_bytes_are_replaced(rt, http_server):
    res = call(rt, url=http_server.url + "/bytes/256?content_type=text/plain", dataType="text")
    assert isinstance(res["data"], str)
    assert "\ufffd" in res["data"]


def test_head_204_304_have_empty_data(rt, http_server):
    assert call(rt, url=http_server.url + "/json", method="HEAD")["data"] == ""
    assert call(rt, url=http_server.url + "/status/204")["data"] == ""
    res = call(rt, url=http_server.url + "/status/304", responseType="arraybuffer")
    assert (res["statusCode"], res["data"]) == (304, b"")


def test_gzip_is_decoded(rt, http_server):
    res = call(rt, url=http_server.url + "/gzip")
    assert res["data"]["gzipped"] is True


# -- request data ------------------------------------------------------------------------------


def test_get_dict_merged_into_query_with_nested_json(rt, http_server):
    data = {"a": "1 2", "n": 3, "nested": {"x": [1, "y"]}, "flag": True, "中": "文"}
    seen = echo(rt, http_server, data=data, url=http_server.url + "/echo?keep=yes")
    params = dict(parse_qsl(seen["query"], keep_blank_values=True))
    assert params == {
        "keep": "yes",
        "a": "1 2",
        "n": "3",
        "nested": '{"x":[1,"y"]}',
        "flag": "true",
        "中": "文",
    }
    assert seen["body_len"] == 0


def test_post_dict_is_json_by_default(rt, http_server):
    seen = echo(rt, http_server, method="POST", data={"a": [1, {"b": None}], "t": "中"})
    assert json.loads(seen["body"].encode("latin-1").decode("utf-8")) == {
        "a": [1, {"b": None}],
        "t": "中",
    }
    assert seen["headers"]["content-type"] == "application/json"


def test_post_list_is_json(rt, http_server):
    seen = echo(rt, http_server, method="PUT", data=[1, 2, "three"])
    assert json.loads(seen["body"]) == [1, 2, "three"]


def test_post_dict_urlencoded(rt, http_server):
    header = {"Content-Type": "application/x-www-form-urlencoded"}
    seen = echo(rt, http_server, method="POST", header=header, data={"a": "x y&z", "b": {"c": 1}})
    assert dict(parse_qsl(seen["body"])) == {"a": "x y&z", "b": '{"c":1}'}
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_post_str_is_utf8(rt, http_server):
    seen = echo(
        rt, http_server, method="POST", data="héllo 中文", header={"content-type": "text/plain"}
    )
    assert seen["body"].encode("latin-1") == "héllo 中文".encode("utf-8")
    assert seen["headers"]["content-length"] == str(len("héllo 中文".encode("utf-8")))


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_post_bytes_as_is(rt, http_server, kind):
    raw = pattern_bytes(1000)
    seen = echo(rt, http_server, method="POST", data=kind(raw))
    assert seen["body"].encode("latin-1") == raw


@pytest.mark.parametrize(
    "data",
    [{1, 2}, {"x": float("nan")}, {(1, 2): "tuple key"}, "\ud800 lone surrogate", object()],
    ids=["set", "nan", "tuple-key", "surrogate", "object"],
)
def test_unencodable_data_fails_600010(rt, http_server, data):
    res = call(rt, url=http_server.url + "/echo", method="POST", data=data)
    assert res["errno"] == 600010
    assert res["errMsg"].startswith("request:fail invalid request data")
    assert not http_server.requests_to("/never")


@pytest.mark.parametrize("method", ["get", "Post", "pUt", "DELETE", "options", "trace"])
def test_method_is_case_insensitive(rt, http_server, method):
    seen = echo(rt, http_server, method=method)
    assert seen["method"] == method.upper()


@pytest.mark.parametrize("method", ["PATCH", "FETCH", "", 7, "GET "])
def test_invalid_method_fails_600012(rt, http_server, method):
    res = call(rt, url=http_server.url + "/echo?invalid-method", method=method)
    assert res == {"errMsg": "request:fail invalid method", "errno": 600012}


@pytest.mark.parametrize(
    "url",
    [
        None,
        "",
        "ftp://127.0.0.1/x",
        "127.0.0.1/echo",
        "http://",
        "http:///path",
        42,
        "http://host:notaport/",
        "http://a b\r\n.com/",
    ],
)
def test_invalid_url_fails_600009(rt, url):
    options = {} if url is None else {"url": url}
    res = call(rt, **options)
    assert res == {"errMsg": "request:fail invalid url", "errno": 600009}


@pytest.mark.parametrize("option", [{"responseType": "blob"}, {"redirect": "error"}])
def test_invalid_option_values_fail_600012(rt, http_server, option):
    res = call(rt, url=http_server.url + "/echo", **option)
    assert res["errno"] == 600012


# -- headers -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    [{"X-Bad": "a\r\nInjected: 1"}, {"X-Bad": "a\nb"}, {"X-Bad\r\n": "v"}, {"X-Nul": "a\0b"}],
)
def test_header_injection_refused_before_connecting(rt, hostile_server, header):
    from tests.peers.hostile import never_answer

    url = hostile_server(never_answer)
    res = call(rt, url=url + "/x", header=header)
    assert res["errno"] == 600013
    assert url.server.accepted == 0


def test_referer_is_dropped(rt, http_server):
    seen = echo(
        rt,
        http_server,
        url=http_server.url + "/echo?referer",
        header={"Referer": "http://evil/", "X-Keep": "1"},
    )
    assert "referer" not in seen["headers"]
    assert seen["headers"]["x-keep"] == "1"


def test_default_content_type_and_custom_one_kept(rt, http_server):
    assert echo(rt, http_server)["headers"]["content-type"] == "application/json"
    seen = echo(rt, http_server, header={"Content-Type": "text/csv"})
    assert seen["headers"]["content-type"] == "text/csv"


def test_response_headers_joined_and_cookies_listed(rt, http_server):
    res = call(rt, url=http_server.url + "/cookies")
    assert res["cookies"] == list(SET_COOKIES)
    res = call(rt, url=http_server.url + "/headers")
    assert res["header"]["X-Custom-Header"] == "ftcore-peer"
    assert res["header"]["X-Multi"] == "a, b"
    assert res["cookies"] == []


@pytest.mark.parametrize("code", [404, 500, 418])
def test_error_statuses_are_successes(rt, http_server, code):
    res = call(rt, url=http_server.url + "/status/%d" % code)
    assert res["errMsg"] == "request:ok"
    assert res["statusCode"] == code
    assert res["data"] == "status %d" % code


# -- listeners, chunks, profile -----------------------------------------------------------------


def test_headers_received_before_success(rt, http_server):
    recorder = Recorder()
    with paused_loop(rt):
        task = rt.request(url=http_server.url + "/cookies", **recorder.callbacks())
        task.onHeadersReceived(recorder.listener("headers"))
    recorder.wait()
    assert recorder.names() == ["headers", "success", "complete"]
    event = recorder.of("headers")[0]
    assert set(event) == {"header", "statusCode", "cookies"}
    assert event["statusCode"] == 200
    assert event["cookies"] == list(SET_COOKIES)
    assert set(recorder.threads()) == {LOOP_THREAD}


@pytest.mark.parametrize("response_type,empty", [("text", ""), ("arraybuffer", b"")])
def test_chunked_pieces_in_order_and_empty_data(rt, http_server, response_type, empty):
    recorder = Recorder()
    with paused_loop(rt):
        task = rt.request(
            url=http_server.url + "/chunked/100000?pieces=8&delay_ms=5",
            enableChunked=True,
            responseType=response_type,
            **recorder.callbacks(),
        )
        task.onChunkReceived(recorder.listener("chunk"))
        task.onHeadersReceived(recorder.listener("headers"))
    recorder.wait()
    names = recorder.names()
    assert names[0] == "headers" and names[-2:] == ["success", "complete"]
    chunks = [res["data"] for res in recorder.of("chunk")]
    assert all(isinstance(c, bytes) and c for c in chunks)
    assert len(chunks) >= 2
    assert b"".join(chunks) == pattern_bytes(100000)
    assert recorder.outcome["data"] == empty
    assert set(recorder.threads()) == {LOOP_THREAD}


def test_off_listener_stops_events(rt, http_server):
    recorder = Recorder()
    with paused_loop(rt):
        task = rt.request(url=http_server.url + "/json", **recorder.callbacks())
        listener = recorder.listener("headers")
        task.onHeadersReceived(listener)
        task.offHeadersReceived(listener)
    recorder.wait()
    assert recorder.names() == ["success", "complete"]


PROFILE_KEYS = {
    "fetchStart",
    "connectStart",
    "connectEnd",
    "SSLconnectionStart",
    "SSLconnectionEnd",
    "requestStart",
    "requestEnd",
    "responseStart",
    "responseEnd",
    "socketReused",
    "peerIP",
    "port",
    "protocol",
    "sendBytesCount",
    "receivedBytedCount",
}


def test_profile_has_every_key_and_reflects_reuse(make_runtime, http_server_factory):
    rt = make_runtime()
    server = http_server_factory()
    first = call(rt, url=server.url + "/bytes/1000", method="POST", data=b"x" * 77)["profile"]
    second = call(rt, url=server.url + "/bytes/10")["profile"]
    assert PROFILE_KEYS <= set(first)
    assert first["socketReused"] is False and second["socketReused"] is True
    assert (first["peerIP"], first["port"]) == ("127.0.0.1", server.port)
    assert first["protocol"] == "http/1.1"
    # heads included (exact counts: test_byte_counts.py)
    assert 77 < first["sendBytesCount"] < 77 + 1024
    assert 1000 < first["receivedBytedCount"] < 1000 + 1024
    assert first["SSLconnectionStart"] == first["SSLconnectionEnd"] == 0
    order = [
        "fetchStart",
        "connectStart",
        "connectEnd",
        "requestStart",
        "requestEnd",
        "responseStart",
        "responseEnd",
    ]
    assert [first[k] for k in order] == sorted(first[k] for k in order)
    assert (
        first["connectEnd"] > first["connectStart"] or first["connectEnd"] == first["connectStart"]
    )
    assert len(server.requests) == 2
    assert server.requests[0].connection == server.requests[1].connection


def test_profile_tls_timings(make_runtime, https_server):
    rt = make_runtime({"tls": {"cafile": https_server.cafile}})
    profile = call(rt, url=https_server.url + "/json")["profile"]
    assert profile["connectEnd"] <= profile["SSLconnectionStart"] < profile["SSLconnectionEnd"]
    assert profile["SSLconnectionEnd"] <= profile["requestStart"]


def test_enable_profile_false_omits_profile(rt, http_server):
    res = call(rt, url=http_server.url + "/json", enableProfile=False)
    assert "profile" not in res
