"""Unit tests of the streamed multipart body, parsed back by the stdlib `email` parser."""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import os
from typing import Any, Dict, List, Tuple

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ftcore import Errno, FtError
from ftcore._api.multipart import CHUNK_SIZE, MultipartBody, escape_name, field_value


def _utf8(value: str) -> str:
    try:
        return value.encode("utf-8", "surrogateescape").decode("utf-8")
    except UnicodeError:
        return value


def parse(body: MultipartBody) -> Tuple[List[Tuple[str, bytes, Any, str]], bytes]:
    """(name, payload, filename, content type) of each part, and the raw body."""
    raw = b"".join(body)
    assert len(raw) == body.length
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + body.content_type.encode("ascii") + b"\r\n\r\n" + raw
    )
    assert message.is_multipart()
    assert not message.defects
    parts = []
    for part in message.iter_parts():
        assert not part.defects
        name = _utf8(part.get_param("name", header="content-disposition"))
        filename = part.get_filename()
        parts.append(
            (
                name,
                part.get_payload(decode=True),
                None if filename is None else _utf8(filename),
                part.get_content_type(),
            )
        )
    return parts, raw


@pytest.fixture
def datafile(tmp_path: Any) -> Any:
    def make(content: bytes, name: str = "data.bin") -> str:
        path = tmp_path / name
        path.write_bytes(content)
        return str(path)

    return make


def test_fields_then_file_parse_back(datafile: Any) -> None:
    content = os.urandom(CHUNK_SIZE * 2 + 123)
    path = datafile(content, "photo.png")
    with MultipartBody({"a": "1", "b": "中文", "n": 3}, "file", path) as body:
        parts, raw = parse(body)
    assert parts == [
        ("a", b"1", None, "text/plain"),
        ("b", "中文".encode(), None, "text/plain"),
        ("n", b"3", None, "text/plain"),
        ("file", content, "photo.png", "image/png"),
    ]
    assert body.content_type.startswith("multipart/form-data; boundary=----ftcore")


def test_default_content_type_and_empty_file(datafile: Any) -> None:
    path = datafile(b"", "blob.zzunknown")
    with MultipartBody({}, "f", path) as body:
        parts, _ = parse(body)
    assert parts == [("f", b"", "blob.zzunknown", "application/octet-stream")]


def test_file_is_read_in_chunks(datafile: Any) -> None:
    path = datafile(b"x" * (CHUNK_SIZE * 3 + 1))
    with MultipartBody({}, "f", path) as body:
        sizes = [len(piece) for piece in body]
    assert max(sizes) <= CHUNK_SIZE
    assert sizes[1:-1] == [CHUNK_SIZE] * 3 + [1]


def test_iterating_twice_replays_the_body(datafile: Any) -> None:
    path = datafile(os.urandom(1000))
    with MultipartBody({"k": "v"}, "f", path) as body:
        assert b"".join(body) == b"".join(body)


@pytest.mark.parametrize(
    "value, sent",
    [
        (True, b"true"),
        (False, b"false"),
        (None, b"null"),
        (1, b"1"),
        (1.0, b"1"),
        (1.5, b"1.5"),
        ({"a": [1, "é"]}, '{"a":[1,"é"]}'.encode()),
        (b"\x00\xff", b"\x00\xff"),
        ("é", "é".encode()),
    ],
)
def test_field_values_follow_js_string(value: Any, sent: bytes) -> None:
    assert field_value(value) == sent


@pytest.mark.parametrize(
    "name",
    ['a"b', "a\r\nb", 'x"; filename="evil.txt', "x\r\n\r\ninjected", "trailing\\", "a\rb\nc"],
)
def test_hostile_names_are_escaped_never_injected(datafile: Any, name: str) -> None:
    path = datafile(b"payload")
    with MultipartBody({name: "v"}, name, path, filename=name + ".txt") as body:
        parts, raw = parse(body)
    escaped = escape_name(name)
    assert '"' not in escaped and "\r" not in escaped and "\n" not in escaped
    assert "\\" not in escaped
    assert parts == [
        (escaped, b"v", None, "text/plain"),
        (escaped, b"payload", escaped + ".txt", "text/plain"),
    ]
    assert raw.count(b"Content-Disposition") == 2


def test_escape_matches_browsers() -> None:
    assert escape_name('a"b\r\nc\\d') == "a%22b%0D%0Ac%5Cd"
    assert escape_name("中文 name") == "中文 name"


def test_boundary_is_redrawn_when_a_field_contains_it(datafile: Any, monkeypatch: Any) -> None:
    tokens = iter(["0" * 32, "1" * 32])
    monkeypatch.setattr("ftcore._api.multipart.secrets.token_hex", lambda n: next(tokens))
    path = datafile(b"z")
    with MultipartBody({"v": "----ftcore" + "0" * 32}, "f", path) as body:
        assert body.boundary == b"----ftcore" + b"1" * 32
        parts, _ = parse(body)
    assert parts[0][1] == b"----ftcore" + b"0" * 32


def test_boundaries_are_random(datafile: Any) -> None:
    path = datafile(b"z")
    seen = set()
    for _ in range(20):
        with MultipartBody({}, "f", path) as body:
            seen.add(body.boundary)
    assert len(seen) == 20


def test_missing_file_and_directory(tmp_path: Any) -> None:
    with pytest.raises(FtError) as missing:
        MultipartBody({}, "f", str(tmp_path / "nope"))
    assert missing.value.errno == Errno.FILE_NOT_FOUND
    with pytest.raises(FtError) as directory:
        MultipartBody({}, "f", str(tmp_path))
    assert directory.value.errno == Errno.PATH_NOT_PERMITTED


def test_size_changed_since_the_call_fails(datafile: Any) -> None:
    path = datafile(b"12345")
    body = MultipartBody({}, "f", path, size=4)
    assert body.length == len(body.head) + 4 + len(body.tail)
    with pytest.raises(FtError) as info:
        body.open()
    assert info.value.errno == Errno.INVALID_DATA
    with pytest.raises(FtError):
        list(body)
    body.close()


def test_lazy_open_fails_when_the_file_is_gone(datafile: Any) -> None:
    path = datafile(b"12345")
    body = MultipartBody({}, "f", path, size=5)
    os.unlink(path)
    with pytest.raises(FtError) as info:
        body.open()
    assert info.value.errno == Errno.FILE_NOT_FOUND


@pytest.mark.parametrize("change", ["shrink", "grow"])
def test_file_changing_while_sending_fails_before_the_tail(datafile: Any, change: str) -> None:
    path = datafile(b"a" * (CHUNK_SIZE + 10))
    with MultipartBody({}, "f", path) as body:
        pieces = iter(body)
        sent = next(pieces)  # the head
        with open(path, "r+b") as handle:
            if change == "shrink":
                handle.truncate(CHUNK_SIZE // 2)
            else:
                handle.seek(0, 2)
                handle.write(b"more")
        with pytest.raises(FtError) as info:
            for piece in pieces:
                sent += piece
        assert info.value.errno == Errno.INVALID_DATA
        assert len(sent) < body.length  # never the tail of a body of the wrong length
        assert not sent.endswith(body.tail)


def test_close_releases_the_descriptor(datafile: Any) -> None:
    path = datafile(b"abc")
    before = len(os.listdir("/proc/self/fd"))
    bodies = [MultipartBody({}, "f", path) for _ in range(10)]
    assert len(os.listdir("/proc/self/fd")) == before + 10
    for body in bodies:
        body.close()
        body.close()
    assert len(os.listdir("/proc/self/fd")) == before


_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
# the stdlib parser strips trailing whitespace from header values and folds lines, and
# control characters other than CR/LF are not escaped (browsers do not either): keep names
# to printable characters (quotes, backslashes, CR, LF and non-ASCII included).
_name = st.text(
    st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")) | st.sampled_from('"\\\r\n'),
    min_size=1,
    max_size=16,
).filter(lambda s: s == s.strip() and "\x85" not in s)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    fields=st.dictionaries(_name, _text | st.binary(max_size=64), max_size=5),
    name=_name,
    filename=_name,
    content=st.binary(max_size=3000),
)
def test_property_parses_back_exactly(
    tmp_path: Any, fields: Dict[str, Any], name: str, filename: str, content: bytes
) -> None:
    path = tmp_path / "upload.bin"
    path.write_bytes(content)
    with MultipartBody(fields, name, str(path), filename=filename, chunk_size=1024) as body:
        parts, raw = parse(body)
    expected = [
        (escape_name(key), field_value(value), None, "text/plain") for key, value in fields.items()
    ]
    expected.append((escape_name(name), content, escape_name(filename), "application/octet-stream"))
    assert [p[:3] for p in parts] == [e[:3] for e in expected]
    assert hashlib.sha256(parts[-1][1]).digest() == hashlib.sha256(content).digest()
