"""request, downloadFile and uploadFile tasks: launched, listened to, disturbed and checked.

Listeners abort from onHeadersReceived, onChunkReceived and onProgressUpdate, or remove
themselves there; a success is checked against its target (the body, the file, what the peer
parsed of an upload), a failure against what the target allows.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional

from tests.soak.ledger import Record
from tests.soak.scenarios import (
    TIMEOUT_MS,
    P_TIMEOUT_OPTION,
    Env,
    Slot,
    after_complete,
    maybe_abort_later,
)
from tests.soak.targets import FAIL, FAST_FAILS, OK, UPLOAD_FORM, Target, uploaded

P_ABORT_ON_HEADERS = 0.06
P_OFF_HEADERS = 0.04  # offHeadersReceived() from inside the listener
P_ABORT_ON_CHUNK = 0.15  # of enableChunked requests
P_ABORT_ON_PROGRESS = 0.12  # at a random percent
P_FILE_PATH = 0.5  # downloadFile with a filePath (kept in USER_DATA_PATH), else tempFilePath


def start_http(env: Env, slot: Slot, record: Record, target: Target, rng: Any) -> None:
    kind = record.kind
    options = dict(target.options)
    options["url"] = target.url
    if rng.random() < P_TIMEOUT_OPTION:
        options["timeout"] = rng.randint(*TIMEOUT_MS)
    record.check = target.check
    if kind == "download" and rng.random() < P_FILE_PATH:
        name = "dl-%d.bin" % record.seq
        record.file_path = os.path.join(slot.user, name)
        options["filePath"] = name if rng.random() < 0.5 else record.file_path
    elif kind == "upload":
        source = rng.choice(slot.sources)
        options.update(filePath=source.path, name="file")
        if target.checks_upload:
            record.check = uploaded(source.size, source.sha256, UPLOAD_FORM)

    def success(res: Dict[str, Any]) -> None:
        record.settled(True, res)
        _judge_success(slot, record, target, res)

    def fail(res: Dict[str, Any]) -> None:
        record.settled(False, res)
        if target.expect == OK and record.reason not in FAST_FAILS:
            record.problem("a fast peer's task failed (%s)" % res.get("errMsg"))
        if record.file_path and os.path.exists(record.file_path):
            record.problem("a failed download left its filePath behind")

    def complete(res: Dict[str, Any]) -> None:
        record.completed(res)
        after_complete(env, slot, record, rng)
        record.finish()

    options.update(success=success, fail=fail, complete=complete)
    api = {"request": slot.rt.request, "download": slot.rt.downloadFile,
           "upload": slot.rt.uploadFile}[kind]
    task = api(options)
    record.task = task
    _listen_http(env, record, task, bool(options.get("enableChunked")), rng)
    maybe_abort_later(env, record, rng)


def _listen_http(env: Env, record: Record, task: Any, chunked: bool, rng: Any) -> None:
    tally = env.tally
    headers_action = rng.random()

    def on_headers(res: Dict[str, Any]) -> None:
        if headers_action < P_ABORT_ON_HEADERS:
            tally.count("abort from onHeadersReceived")
            task.abort()
        elif headers_action < P_ABORT_ON_HEADERS + P_OFF_HEADERS:
            tally.count("offHeadersReceived from its listener")
            task.offHeadersReceived(on_headers)

    task.onHeadersReceived(on_headers)
    if chunked:
        record.chunked = True
        abort_at = rng.randint(0, 8) if rng.random() < P_ABORT_ON_CHUNK else -1

        def on_chunk(res: Dict[str, Any]) -> None:
            record.chunks.append(res["data"])
            if len(record.chunks) - 1 == abort_at:
                tally.count("abort from onChunkReceived")
                task.abort()

        task.onChunkReceived(on_chunk)
    if record.kind == "request":
        return
    abort_at = rng.randint(0, 100) if rng.random() < P_ABORT_ON_PROGRESS else None
    leave_instead = rng.random() < 0.25
    def on_progress(res: Dict[str, Any]) -> None:
        progress = res["progress"]
        if progress < record.progress:
            record.problem("progress went back (%d to %d)" % (record.progress, progress))
        record.progress = progress
        if abort_at is not None and progress >= abort_at and not record.listening_off:
            record.listening_off = True
            if leave_instead:  # the other re-entrant call: leave the listener from inside
                tally.count("offProgressUpdate from its listener (%s)" % record.kind)
                task.offProgressUpdate(on_progress)
            else:
                tally.count("abort from onProgressUpdate (%s)" % record.kind)
                task.abort()

    task.onProgressUpdate(on_progress)


def _judge_success(slot: Slot, record: Record, target: Target, res: Dict[str, Any]) -> None:
    if record.kind == "download":
        if record.file_path is not None:
            slot.kept.add(record.file_path)
        else:
            slot.temps.add(str(res.get("tempFilePath")))
    if target.expect == FAIL:
        record.problem("succeeded against a peer that must fail it (%.160r)" % _brief(res))
    elif record.check is not None and not record.chunked:  # chunks: judged at the end
        trouble = record.check(dict(res, body=_body_of(record, res)))
        if trouble:
            record.problem("success with a wrong answer (%s)" % trouble)


def _body_of(record: Record, res: Dict[str, Any]) -> Optional[bytes]:
    if record.kind == "download":
        path = res.get("filePath") or res.get("tempFilePath")
        try:
            with open(str(path), "rb") as saved:
                return saved.read()
        except OSError as error:
            record.problem("the downloaded file cannot be read (%s)" % error)
            return None
    data = res.get("data")
    if isinstance(data, str):
        return data.encode("utf-8")
    return data if isinstance(data, bytes) else None


def _brief(res: Dict[str, Any]) -> Dict[str, Any]:
    return {k: res[k] for k in ("statusCode", "data", "tempFilePath", "filePath") if k in res}

