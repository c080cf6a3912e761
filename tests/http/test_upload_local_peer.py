"""uploadFile to a server on this machine over plain HTTP takes the byte route, not sendfile
(`ftcore._net.stream._local_peer`: there the reader's kernel copies the page cache's pages
itself, and sendfile measured slower), with the same body and progress."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

from tests.files.support import WAIT, Recorder, flush, open_files_under
from tests.http.test_upload_sendfile import Spy, sha, user_file

pytestmark = pytest.mark.timeout(60)


def test_a_loopback_upload_reads_the_file_instead_of_sendfile(
    make_runtime: Any, http_server: Any, tmp_path: Any, monkeypatch: Any
) -> None:
    spy = Spy(os.sendfile)
    monkeypatch.setattr(os, "sendfile", spy)
    rt = make_runtime({"sandbox": str(tmp_path / "sandbox")})
    content = os.urandom(2 * 2**20 + 13)
    path = user_file(rt, "local.bin", content)
    rec = Recorder()
    task = rt.uploadFile(
        url=http_server.url + "/upload", filePath=path, name="file", **rec.callbacks()
    )
    task.onProgressUpdate(rec.listener("progress"))
    seen = json.loads(task.result(WAIT)["data"])
    flush(rt)
    assert spy.calls == 0
    assert seen["files"]["file"]["sha256"] == sha(content)
    assert seen["content_length"] == seen["received"]
    percents = [p["progress"] for p in rec.of("progress")]
    assert percents == sorted(set(percents)) and percents[-1] == 100
    assert open_files_under(rt.sandbox.root) == []
