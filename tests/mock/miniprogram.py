"""A mini-program module as its authors write one: `ft` is bound when the module is imported and
no function takes a runtime. `test_ft_standin.py` serves it with the `ft_mock` fixture."""

from __future__ import annotations

import os
from typing import Any, Callable

from ftcore import DownloadTask, RequestTask, SocketTask, UploadTask, ft

API = "https://api.example.com"
CHAT = "wss://chat.example.com/room"


def load_profile(user_id: int) -> RequestTask:
    return ft.request(url="%s/users/%d" % (API, user_id), header={"Authorization": "Bearer t"})


def save_avatar(user_id: int) -> DownloadTask:
    path = os.path.join(ft.env["USER_DATA_PATH"], "avatar-%d.png" % user_id)
    return ft.downloadFile(url="%s/avatars/%d.png" % (API, user_id), filePath=path)


def upload_log(text: str) -> UploadTask:
    path = os.path.join(ft.env["USER_DATA_PATH"], "app.log")
    with open(path, "w", encoding="utf-8") as log:
        log.write(text)
    return ft.uploadFile(url=API + "/logs", filePath=path, name="log", formData={"app": "demo"})


def join_chat(on_message: Callable[[Any], Any]) -> SocketTask:
    task = ft.connectSocket(url=CHAT)
    task.onOpen(lambda res: task.send(data="hello"))
    task.onMessage(lambda res: on_message(res["data"]))
    return task
