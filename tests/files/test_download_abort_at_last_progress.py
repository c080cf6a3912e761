"""`abort()` from a downloadFile's onProgressUpdate listener on the final 100 (found by the
soak): the task fails with abort and leaves no file (API.md §3: "A failed or aborted download
leaves no file behind"). The 100 is emitted before the file is put in place, so the abort
discards it; it used to come after the rename, and the file stayed.
"""

from __future__ import annotations

import os
import threading
from typing import Any, Dict, List

import pytest

import ftcore
from tests.support.waits import WAIT

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("destination", ["filePath", "tempFilePath"])
def test_abort_from_the_final_progress_event_removes_the_file(
    http_server: Any, tmp_path: Any, destination: str
) -> None:
    events: List[str] = []
    ended = threading.Event()
    with ftcore.Runtime(config={"sandbox": str(tmp_path)}, entrypoints=False) as rt:
        target = os.path.join(rt.env["USER_DATA_PATH"], "final.bin")
        options: Dict[str, Any] = {
            "url": http_server.url + "/bytes/1000",
            "success": lambda res: events.append("success"),
            "fail": lambda res: events.append(res["errMsg"]),
            "complete": lambda res: ended.set(),
        }
        if destination == "filePath":
            options["filePath"] = target
        task = rt.downloadFile(options)

        def on_progress(res: Dict[str, Any]) -> None:
            if res["progress"] == 100:
                task.abort()

        task.onProgressUpdate(on_progress)
        assert ended.wait(WAIT)
        temp_area = os.path.join(str(tmp_path), "tmp")
        left = [name for _, _, files in os.walk(temp_area) for name in files]
        if os.path.exists(target):
            left.append(target)
        assert events == ["downloadFile:fail abort"]
        assert left == []
