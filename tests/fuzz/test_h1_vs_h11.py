"""Differential fuzzing: `h1` against h11 on the same response bytes.

On valid responses both must find the same status, reason, header fields and body; on broken
ones both must reject. Where they may disagree, `DIFFERENCES` says so: one narrow entry each,
with its reason, that checks the disagreement really comes from that difference (the field
h11 names in its error, or the input without the difference). A disagreement no entry
explains fails the test with the bytes that caused it.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from dataclasses import field as default
from typing import Callable, List, Optional, Tuple

import h11
from hypothesis import given
from hypothesis import strategies as st

from ftcore_urllib3.h1 import MAX_HEAD_BYTES

from .h1_responses import Response, field, parse, responses
from .support import FUZZ, mutated

Fields = List[Tuple[str, str]]


@dataclass
class Parsed:
    """One parser's reading of a whole stream followed by EOF."""

    statuses: List[int]  # of every head, interim ones included where the parser reports them
    reason: str
    headers: Fields
    body: bytes
    error: str = ""
    versions: List[bytes] = default(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.error


def by_h11(raw: bytes, method: str) -> Parsed:
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
    conn.send(h11.Request(method=method, target="/", headers=[("Host", "h")]))
    conn.send(h11.EndOfMessage())
    parsed = Parsed([], "", [], b"")
    body = bytearray()
    try:
        conn.receive_data(raw)
        conn.receive_data(b"")
        while True:
            event = conn.next_event()
            if isinstance(event, (h11.InformationalResponse, h11.Response)):
                parsed.statuses.append(event.status_code)
                parsed.versions.append(event.http_version)
                parsed.reason = event.reason.decode("latin-1")
                parsed.headers = [
                    (name.decode("latin-1"), value.decode("latin-1"))
                    for name, value in event.headers.raw_items()
                ]
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            else:  # ConnectionClosed before the end of the body
                parsed.error = "closed: %r" % (event,)
                break
    except h11.ProtocolError as error:
        parsed.error = str(error)
    parsed.body = bytes(body)
    return parsed


def by_h1(raw: bytes, method: str) -> Parsed:
    outcome = parse([raw], method, eof=True)
    parsed = Parsed([], "", [], outcome.body)
    if outcome.head is not None:
        parsed.statuses = [outcome.head.status]
        parsed.reason = outcome.head.reason
        parsed.headers = outcome.head.headers
    if outcome.error is not None:
        parsed.error = outcome.error[1]
    return parsed


def comparable(parsed: Parsed) -> Tuple[int, str, Fields, bytes]:
    """What both must agree on. Framing fields are left out (h11 rewrites them: repeated
    Content-Lengths merged, the coding lower-cased); what they framed is compared as the body.
    Blanks are compared as one space and not at the ends of the reason: h1 strips them there,
    and joins a folded line with one space where h11 keeps the fold's blanks (RFC 9112 §4 and
    §5.2 allow both)."""
    fields = [
        (name, re.sub(r"[ \t]+", " ", value))
        for name, value in parsed.headers
        if name.lower() not in ("content-length", "transfer-encoding")
    ]
    return parsed.statuses[-1], parsed.reason.strip(" \t"), fields, parsed.body


field_lines = field.map(lambda pair: ("%s: %s\r\n" % pair).encode("latin-1"))


# -- what may differ, and why ----------------------------------------------------------------


@dataclass
class Case:
    raw: bytes
    method: str
    h1: Parsed
    h11: Parsed

    def refused(self, what: str) -> Optional[bytes]:
        """The line h11 names in its error "illegal <what>: bytearray(b'...')", if that was it."""
        found = re.fullmatch(r"illegal %s: (?:bytearray\((.*)\)|(b.*))" % what, self.h11.error,
                             re.S)
        return ast.literal_eval(found.group(1) or found.group(2)) if found else None

    def body_start(self) -> int:
        """Where the final head of a response h1 accepted ends (its heads are CRLF-only)."""
        pos = 0
        while True:
            end = self.raw.index(b"\r\n\r\n", pos) + 4
            status = int(self.raw[pos + 9 : pos + 12])
            if status >= 200 or status == 101:
                return end
            pos = end


_TOKEN = re.compile(rb"[-!#$%&'*+.^_`|~0-9a-zA-Z]+")
_H11_BLANKS = re.compile(rb"[\x0b\x0c]")  # `\s` to h11, visible text to h1


def _h1_reads_as_field(line: bytes) -> bool:
    name, colon, _ = line.partition(b":")
    return bool(colon and name and name[-1:] not in (b" ", b"\t"))


def _bare_lf_in_lines(case: Case) -> bool:
    """h11 takes a bare LF as a line end (RFC 9112 §2.2 allows it); h1 requires CRLF, and
    rejects a head with a bare CR or LF (RFC 9110 §5.5), the stuff of response splitting.
    Explained when the same bytes with CRLF for every bare LF are accepted by h1."""
    fixed = re.sub(rb"(?<!\r)\n", b"\r\n", case.raw)
    return case.h11.accepted and not case.h1.accepted and by_h1(fixed, case.method).accepted


def _codings(case: Case) -> bool:
    """h11 supports one Transfer-Encoding field holding "chunked" alone; h1 follows RFC 9112
    §6.3 (chunked if it is the last coding, else the body runs to EOF)."""
    return case.h1.accepted and case.h11.error in (
        "Only Transfer-Encoding: chunked is supported",
        "multiple Transfer-Encoding headers",
    )


def _field_syntax(case: Case) -> bool:
    """h1 is as lenient as http.client: a field name is any text without blanks before the
    colon, a value any text but CR, LF and NUL. h11 wants a token, and takes VT and FF for
    blanks, which may not stand inside a value."""
    line = case.refused("header line")
    return (
        case.h1.accepted
        and line is not None
        and case.raw.find(line) < case.body_start()
        and _h1_reads_as_field(line)
        and (not _TOKEN.fullmatch(line.partition(b":")[0]) or bool(_H11_BLANKS.search(line)))
    )


def _reason_syntax(case: Case) -> bool:
    """The same for the reason phrase: VT and FF are text to h1."""
    line = case.refused("status line")
    return case.h1.accepted and line is not None and bool(_H11_BLANKS.search(line[12:]))


def _trailers(case: Case) -> bool:
    """Trailer fields are discarded by h1 unread (only their size is bounded); h11 parses them."""
    line = case.refused("header line")
    return case.h1.accepted and line is not None and line in case.raw[case.body_start() :]


def _bare_cr_in_chunk_extension(case: Case) -> bool:
    """h1 rejects a bare CR in a chunk-size line as it does in a head; h11 takes any byte but
    LF in a chunk extension."""
    return (
        case.h11.accepted
        and case.h1.error == "bad response: invalid chunked encoding"
        and re.search(rb"\r\n[0-9A-Fa-f]+;[^\r\n]*\r(?!\n)", case.raw) is not None
    )


def _framing_not_read(case: Case) -> bool:
    """h1 reads Content-Length only where it frames a body: not for HEAD, 204, 304 or 1xx, nor
    beside a Transfer-Encoding, which wins (RFC 9112 §6.3). h11 validates it in every head."""
    final = [name.lower() for name, _ in case.h1.headers]
    return (
        case.h1.accepted
        and "Content-Length" in case.h11.error
        and (
            case.method == "HEAD"
            or case.h1.statuses[-1] in (204, 304)
            or "transfer-encoding" in final
            or "content-length" not in final  # the bad one was in an interim head
        )
    )


def _chunk_size_blanks(case: Case) -> bool:
    """h1 allows blanks around the chunk size (RFC 9112 §7.1.1 has BWS before ';'); h11 none."""
    line = case.refused("chunk header")
    return (
        case.h1.accepted
        and line is not None
        and re.fullmatch(rb"[ \t]*[0-9A-Fa-f]+[ \t]*(;.*)?", line, re.S) is not None
    )


def _major_version(case: Case) -> bool:
    """h11 reads any HTTP/d.d; h1 only HTTP/1.x (RFC 9112 §2.3)."""
    return not case.h1.accepted and any(v[:2] != b"1." for v in case.h11.versions)


def _switching_protocols(case: Case) -> bool:
    """A 101 ends the exchange in h1 (WebSocket takes the socket over); h11 wants a request
    that asked for an Upgrade."""
    return case.h1.statuses == [101] or 101 in case.h11.statuses


DIFFERENCES: List[Callable[[Case], bool]] = [
    _bare_lf_in_lines,
    _codings,
    _field_syntax,
    _reason_syntax,
    _trailers,
    _bare_cr_in_chunk_extension,
    _framing_not_read,
    _chunk_size_blanks,
    _major_version,
    _switching_protocols,
]


def explained(case: Case) -> List[str]:
    return [difference.__name__ for difference in DIFFERENCES if difference(case)]


def compare(raw: bytes, method: str) -> None:
    case = Case(raw, method, by_h1(raw, method), by_h11(raw, method))
    if case.h1.accepted and case.h11.accepted:
        if comparable(case.h1) == comparable(case.h11) or _switching_protocols(case):
            return
    elif case.h1.accepted == case.h11.accepted or explained(case):
        return
    raise AssertionError("unexplained difference:\n%r\nh1:  %r\nh11: %r" % (raw, case.h1, case.h11))


@FUZZ
@given(response=responses())
def test_valid_responses_read_the_same_in_h1_and_h11(response: Response) -> None:
    mine, theirs = by_h1(response.raw, response.method), by_h11(response.raw, response.method)
    assert mine.accepted and theirs.accepted, (mine, theirs)
    assert comparable(mine) == comparable(theirs)
    assert (mine.reason, mine.headers, mine.body) == (
        response.reason,
        response.headers,
        response.body,
    )


@FUZZ
@given(raw=mutated(responses().map(lambda r: r.raw)), method=st.sampled_from(["GET", "HEAD"]))
def test_broken_responses_are_rejected_by_both_or_differ_as_listed(raw: bytes, method: str) -> None:
    compare(raw, method)


@FUZZ
@given(
    status=st.integers(0, 999),
    tail=st.one_of(st.binary(max_size=200), st.lists(field_lines).map(b"".join)),
    final=st.booleans(),
    method=st.sampled_from(["GET", "HEAD"]),
)
def test_any_status_and_random_bytes_after_it_are_read_alike(
    status: int, tail: bytes, final: bool, method: str
) -> None:
    raw = b"HTTP/1.1 %03d X\r\n" % status + tail
    if final:  # an answer after it, should the status be an interim one
        raw += b"\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    compare(raw, method)
