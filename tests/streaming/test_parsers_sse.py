"""The SSE parser against the WHATWG spec's examples (HTML §9.2) and the web-platform-tests
`eventsource/format-*` cases, each fed whole, byte by byte and cut at every point.

The WPT streams are what `resources/message.py` sends: the message, then "\\n\\n" (none with
`newline=none`), then "\\n".
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftcore._api.streaming import SseParser, StreamLimitError
from tests.streaming.splits import cuts


def ev(
    data: str, event: str = "message", id: str = "", retry: Optional[int] = None
) -> Dict[str, Any]:
    return {"event": event, "data": data, "id": id, "retry": retry}


def wpt(message: str, newline: bool = True) -> bytes:
    return (message + ("\n\n" if newline else "") + "\n").encode("utf-8")


LONG = "x" * 2048

# (name, stream, events, last event ID and reconnection time after the stream)
VECTORS = [
    # -- the spec's examples
    (
        "spec: stock ticker, multi-line data",
        b"data: YHOO\ndata: +2\ndata: 10\n\n",
        [ev("YHOO\n+2\n10")],
        "",
        None,
    ),
    (
        "spec: three messages",
        b"data: This is the first message.\n\n"
        b"data: This is the second message, it\ndata: has two lines.\n\n"
        b"data: This is the third message.\n\n",
        [
            ev("This is the first message."),
            ev("This is the second message, it\nhas two lines."),
            ev("This is the third message."),
        ],
        "",
        None,
    ),
    (
        "spec: event types",
        b"event: add\ndata: 73857293\n\nevent: remove\ndata: 2153\n\nevent: add\ndata: 113411\n\n",
        [ev("73857293", "add"), ev("2153", "remove"), ev("113411", "add")],
        "",
        None,
    ),
    (
        "spec: comment, id, id reset, a leading space kept",
        b": test stream\n\ndata: first event\nid: 1\n\ndata:second event\nid\n\n"
        b"data:  third event\n\n",
        [ev("first event", id="1"), ev("second event"), ev(" third event")],
        "",
        None,
    ),
    (
        "spec: the end of the stream does not dispatch",
        b"data: first event\nid: 1\n\ndata:  third event\n",
        [ev("first event", id="1")],
        "1",
        None,
    ),
    (
        "spec: empty data and a lone newline",
        b"data\n\ndata\ndata\n\ndata:",
        [ev(""), ev("\n")],
        "",
        None,
    ),
    (
        "spec: one space after the colon is dropped",
        b"data:test\n\ndata: test\n\n",
        [ev("test"), ev("test")],
        "",
        None,
    ),
    # -- web-platform-tests eventsource/format-*
    (
        "wpt format-bom",
        b"\xef\xbb\xbf" + wpt("data:1\n\n\ufeffdata:2\n\ndata:3"),
        [ev("1"), ev("3")],
        "",
        None,
    ),
    (
        "wpt format-bom-2",
        b"\xef\xbb\xbf\xef\xbb\xbf" + wpt("data:1\n\ndata:2\n\ndata:3"),
        [ev("2"), ev("3")],
        "",
        None,
    ),
    (
        "wpt format-comments",
        wpt(
            "data:1\r:\0\n:\r\ndata:2\n:" + LONG + "\rdata:3\n:data:fail\r:" + LONG + "\ndata:4\n",
            newline=False,
        ),
        [ev("1\n2\n3\n4")],
        "",
        None,
    ),
    (
        "wpt format-data-before-final-empty-line",
        wpt("retry:1000\ndata:test1\n\nid:test\ndata:test2", newline=False),
        [ev("test1", retry=1000)],
        "",
        1000,
    ),
    (
        "wpt format-field-data",
        wpt("data:\n\ndata\ndata\n\ndata:test"),
        [ev(""), ev("\n"), ev("test")],
        "",
        None,
    ),
    (
        "wpt format-field-event",
        wpt("event:test\ndata:x\n\ndata:x"),
        [ev("x", "test"), ev("x")],
        "",
        None,
    ),
    ("wpt format-field-event-empty", wpt("event: \ndata:data"), [ev("data")], "", None),
    (
        "wpt format-field-id",
        "id: …\nretry: 200\ndata: hello\n\n".encode("utf-8"),
        [ev("hello", id="…", retry=200)],
        "…",
        200,
    ),
    (
        "wpt format-field-id-3 persists",
        b"id: 1\ndata: 1\n\ndata:2\n\n",
        [ev("1", id="1"), ev("2", id="1")],
        "1",
        None,
    ),
    (
        "wpt format-field-id-3 changes and persists",
        b"id: 1\ndata: 1\n\nid: 2\ndata:2\n\ndata:3\n\n",
        [ev("1", id="1"), ev("2", id="2"), ev("3", id="2")],
        "2",
        None,
    ),
    (
        "wpt format-field-id-3 resets",
        b"id: 1\ndata: 1\n\nid:\ndata:2\n\ndata:3\n\n",
        [ev("1", id="1"), ev("2"), ev("3")],
        "",
        None,
    ),
    (
        # The current spec ignores an `id` holding NUL (older WPT revisions expected it kept).
        "wpt format-field-id-null",
        b"id: 7\ndata: first\n\nid: \0\0\nretry: 200\ndata: hello\n\n",
        [ev("first", id="7"), ev("hello", id="7", retry=200)],
        "7",
        200,
    ),
    (
        "wpt format-field-parsing",
        wpt(
            "data:\0\ndata:  2\rData:1\ndata\0:2\ndata:1\r\0data:4\nda-ta:3\rdata_5\ndata:3\r"
            "data:\r\n data:32\ndata:4\n",
            newline=False,
        ),
        [ev("\0\n 2\n1\n3\n\n4")],
        "",
        None,
    ),
    ("wpt format-field-retry", wpt("retry:03000\ndata:x"), [ev("x", retry=3000)], "", 3000),
    (
        "wpt format-field-retry-bogus",
        wpt("retry:2000\nretry:1000x\ndata:x"),
        [ev("x", retry=2000)],
        "",
        2000,
    ),
    ("wpt format-field-retry-empty", wpt("retry\ndata:test"), [ev("test")], "", None),
    (
        "wpt format-field-unknown",
        wpt("data:test\n data\ndata\nfoobar:xxx\njustsometext\n:thisisacommentyay\ndata:test"),
        [ev("test\n\ntest")],
        "",
        None,
    ),
    (
        "wpt format-leading-space",
        wpt("data:\ttest\rdata: \ndata:test"),
        [ev("\ttest\n\ntest")],
        "",
        None,
    ),
    (
        "wpt format-newlines",
        wpt("data:test\r\ndata\ndata:test\r\n\r", newline=False),
        [ev("test\n\ntest")],
        "",
        None,
    ),
    ("wpt format-null-character", wpt("data:\0\n\n"), [ev("\0")], "", None),
    # served as text/event-stream;charset=windows-1252: the stream is UTF-8 all the same
    ("wpt format-utf-8", wpt("data:ok…"), [ev("ok…")], "", None),
    # -- more of the rules
    (
        "retry with a non-ASCII digit is ignored",
        b"retry: 1\xc2\xb2\ndata:x\n\n",
        [ev("x")],
        "",
        None,
    ),
    ("a retry-only block dispatches nothing", b"retry: 5\n\ndata:x\n\n", [ev("x")], "", 5),
    ("an id-only block sets the ID", b"id: 9\n\ndata:x\n\n", [ev("x", id="9")], "9", None),
    ("an unfinished block's id does not count", b"id: 9\ndata:x", [], "", None),
    ("CRLF everywhere", b"event: e\r\ndata: a\r\ndata: b\r\n\r\n", [ev("a\nb", "e")], "", None),
    ("CR only", b"data: a\rdata: b\r\r", [ev("a\nb")], "", None),
    ("a tab is not the space dropped", b"data:\t x\n\n", [ev("\t x")], "", None),
    ("only the first colon splits", b"data: a:b: c\n\n", [ev("a:b: c")], "", None),
    ("invalid UTF-8 becomes U+FFFD", b"data: \xff\xe4\xb8\n\n", [ev("\ufffd\ufffd")], "", None),
    ("a lone BOM-looking start that is not one", b"\xef\xbbdata: x\n\n", [], "", None),
]


@pytest.mark.parametrize(
    "name, stream, events, last_id, retry", VECTORS, ids=[v[0] for v in VECTORS]
)
def test_vector_whole_bytewise_and_cut_at_every_point(
    name: str, stream: bytes, events: List[Dict[str, Any]], last_id: str, retry: Optional[int]
) -> None:
    for label, chunks in cuts(stream):
        parser = SseParser()
        got: List[Dict[str, Any]] = []
        for chunk in chunks:
            got.extend(parser.feed(chunk))
        parser.close()
        assert got == events, label
        assert parser.last_event_id == last_id, label
        assert parser.retry == retry, label


@given(st.sampled_from([v[1] for v in VECTORS]), st.data())
def test_any_cut_of_any_vector(stream: bytes, data: Any) -> None:
    whole = SseParser().feed(stream)
    points = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=6)))
    parser, got, start = SseParser(), [], 0
    for point in points + [len(stream)]:
        got.extend(parser.feed(stream[start:point]))
        start = point
    assert got == whole


def test_events_are_dicts_of_api_md_section_10() -> None:
    (event,) = SseParser().feed(b'event: delta\nid: 42\nretry: 1500\ndata: {"t": "hi"}\n\n')
    assert event == {"event": "delta", "data": '{"t": "hi"}', "id": "42", "retry": 1500}


def test_retry_of_an_event_is_only_its_own_block() -> None:
    parser = SseParser()
    first, second = parser.feed(b"retry: 10\ndata: a\n\ndata: b\n\n")
    assert (first["retry"], second["retry"], parser.retry) == (10, None, 10)


def test_a_huge_retry_is_ignored() -> None:
    parser = SseParser()
    parser.feed(b"retry: " + b"9" * 5000 + b"\n\n")
    assert parser.retry is None


def test_an_endless_line_raises() -> None:
    parser = SseParser(max_size=100)
    parser.feed(b"data: " + b"x" * 90)
    with pytest.raises(StreamLimitError) as info:
        parser.feed(b"x" * 20)
    assert info.value.what == "line"


def test_an_endless_event_raises() -> None:
    parser = SseParser(max_size=100)
    for _ in range(10):  # 10 lines of 9 characters and their LF: 100, the limit
        parser.feed(b"data: " + b"x" * 9 + b"\n")
    with pytest.raises(StreamLimitError) as info:
        parser.feed(b"data: " + b"x" * 9 + b"\n")
    assert info.value.what == "event"


def test_events_within_the_limit_go_on_forever() -> None:
    parser = SseParser(max_size=100)
    for i in range(1000):
        assert parser.feed(b"data: %d\n\n" % i) == [ev(str(i))]
