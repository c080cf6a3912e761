"""The incremental text decoder and the line splitter, fed whole, byte by byte and cut at
every point: a character split across chunks is never split in the text, and CR, LF and
CRLF end lines wherever the chunks are cut."""

from __future__ import annotations

from typing import List, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ftcore._api.request import charset_of
from ftcore._api.streaming import LineSplitter, StreamLimitError, TextDecoder
from tests.streaming.splits import cuts

MIXED = "a é 中文 😀 z"


def decode_all(decoder: TextDecoder, chunks: List[bytes]) -> List[str]:
    pieces = [decoder.decode(chunk) for chunk in chunks]
    pieces.append(decoder.close())
    return pieces


@pytest.mark.parametrize("encoding", ["utf-8", "gb18030", "shift_jis", "utf-16-le"])
def test_multibyte_text_split_at_every_byte(encoding: str) -> None:
    text = MIXED if encoding != "shift_jis" else "a 中文 ｶﾅ z"
    data = text.encode(encoding)
    for label, chunks in cuts(data):
        pieces = decode_all(TextDecoder(encoding), chunks)
        assert "".join(pieces) == text, label
        assert "\ufffd" not in "".join(pieces), label  # no character was cut in two


def test_a_character_comes_whole_with_the_chunk_that_completes_it() -> None:
    decoder = TextDecoder()
    emoji = "😀".encode("utf-8")
    assert [decoder.decode(emoji[i : i + 1]) for i in range(4)] == ["", "", "", "😀"]


@pytest.mark.parametrize(
    "data, text",
    [
        (b"a\xffb", "a\ufffdb"),
        (b"\xc3(", "\ufffd("),
        (b"\xed\xa0\x80", "\ufffd\ufffd\ufffd"),  # a UTF-16 surrogate is not UTF-8
        (b"ok\xe4\xb8", "ok\ufffd"),  # a character the stream ends inside
    ],
)
def test_invalid_bytes_become_replacement_characters(data: bytes, text: str) -> None:
    for label, chunks in cuts(data):
        assert "".join(decode_all(TextDecoder(), chunks)) == text, label


@pytest.mark.parametrize(
    "content_type, codec",
    [
        (None, "utf-8"),
        ("text/plain", "utf-8"),
        ("text/plain; charset=GBK", "gbk"),
        ('text/plain; charset="iso-8859-1"', "iso8859-1"),
        ("text/plain; charset=no-such-codec", "utf-8"),
        ("text/plain; charset=zlib", "utf-8"),  # a bytes codec is no text encoding
    ],
)
def test_the_charset_comes_from_the_content_type(content_type: Optional[str], codec: str) -> None:
    assert TextDecoder(charset_of(content_type)).encoding == codec


def test_gbk_from_the_content_type_split_at_every_byte() -> None:
    data = "中文，字符".encode("gbk")
    for label, chunks in cuts(data):
        decoder = TextDecoder(charset_of("text/plain;charset=gbk"))
        assert "".join(decode_all(decoder, chunks)) == "中文，字符", label


@given(st.text(), st.lists(st.integers(min_value=0, max_value=64), max_size=8))
def test_any_text_any_cut(text: str, sizes: List[int]) -> None:
    data = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace").encode("utf-8")
    chunks, rest = [], data
    for size in sizes:
        chunks.append(rest[:size])
        rest = rest[size:]
    chunks.append(rest)
    assert "".join(decode_all(TextDecoder(), chunks)) == data.decode("utf-8")


# -- lines ------------------------------------------------------------------------------------


def split_all(splitter: LineSplitter, chunks: List[str]) -> List[str]:
    lines: List[str] = []
    for chunk in chunks:
        lines.extend(splitter.feed(chunk))
    last = splitter.close()
    if last is not None:
        lines.append(last)
    return lines


LINE_VECTORS = [
    ("a\nb\n", ["a", "b"]),
    ("a\r\nb\r\n", ["a", "b"]),
    ("a\rb\r", ["a", "b"]),
    ("a\r\rb", ["a", "", "b"]),  # CR CR: two line ends
    ("a\n\rb", ["a", "", "b"]),  # LF CR: two line ends, not a CRLF
    ("a\r\n\r\nb", ["a", "", "b"]),
    ("\r\n", [""]),
    ("\n\n", ["", ""]),
    ("last line has no end", ["last line has no end"]),
    ('{"a": 1}\n{"b": "中文"}\r\n{"c": 3}', ['{"a": 1}', '{"b": "中文"}', '{"c": 3}']),
    ("", []),
    ("tab\tand\x0bvertical\x0cfeed\u2028stay\n", ["tab\tand\x0bvertical\x0cfeed\u2028stay"]),
]


@pytest.mark.parametrize("text, lines", LINE_VECTORS)
def test_lines_end_at_cr_lf_and_crlf_wherever_the_chunks_are_cut(
    text: str, lines: List[str]
) -> None:
    for label, chunks in cuts(text.encode("utf-8")):
        decoder = TextDecoder()
        texts = [decoder.decode(chunk) for chunk in chunks] + [decoder.close()]
        assert split_all(LineSplitter(), texts) == lines, label


def test_a_cr_ending_one_chunk_and_an_lf_opening_the_next_are_one_line_end() -> None:
    splitter = LineSplitter()
    assert splitter.feed("one\r") == ["one"]  # the line is out at once, not held for the LF
    assert splitter.feed("\ntwo\r") == ["two"]
    assert splitter.feed("") == []  # an empty chunk does not forget the pending CR
    assert splitter.feed("\n") == []
    assert splitter.feed("\n") == [""]  # a second LF is a line of its own
    assert splitter.close() is None


def test_an_open_line_past_the_limit_raises() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed("0123456789") == []
    with pytest.raises(StreamLimitError) as info:
        splitter.feed("x")
    assert info.value.what == "line" and info.value.limit == 10


def test_a_whole_line_past_the_limit_in_one_chunk_raises() -> None:
    splitter = LineSplitter(max_line=10)
    assert splitter.feed("0123456789\nok\n") == ["0123456789", "ok"]
    with pytest.raises(StreamLimitError):
        splitter.feed("short\n" + "y" * 11 + "\n")


def test_a_line_held_open_and_finished_past_the_limit_raises() -> None:
    splitter = LineSplitter(max_line=10)
    splitter.feed("01234567")
    with pytest.raises(StreamLimitError):
        splitter.feed("890\n")
