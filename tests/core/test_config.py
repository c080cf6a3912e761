"""Runtime configuration: defaults, validation naming the culprit, no sharing (_core.config)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any, Dict

import pytest

from ftcore._core.config import DEFAULTS, load_config

from .support import make_runtime, no_loop_thread_leak  # noqa: F401


def test_defaults() -> None:
    config = load_config(None)
    assert config == DEFAULTS
    assert config["networkTimeout"] == {
        "request": 60000,
        "connectSocket": 60000,
        "uploadFile": 60000,
        "downloadFile": 60000,
    }
    assert config["domains"] == {}
    assert config["maxConcurrent"] == {"http": 10, "socket": 5}
    assert config["limits"] == {
        "downloadMaxBytes": 200 * 2**20,
        "wsMaxMessageBytes": 16 * 2**20,
        "streamBufferBytes": 2**20,
        "tcpCreatesPer5Min": 20,
        "tcpMaxBufferedBytes": 16 * 2**20,
    }
    assert config["sandbox"] is None
    assert config["tls"] == {"verify": True, "cafile": None}
    assert config["tcp"]["bannedPorts"][:3] == [[1, 1023], 1099, 1433]


def test_partial_tables_keep_the_other_defaults() -> None:
    config = load_config(
        {
            "networkTimeout": {"request": 5000},
            "maxConcurrent": {"socket": 2},
            "tls": {"verify": False},
        }
    )
    assert config["networkTimeout"]["request"] == 5000
    assert config["networkTimeout"]["downloadFile"] == 60000
    assert config["maxConcurrent"] == {"http": 10, "socket": 2}
    assert config["tls"] == {"verify": False, "cafile": None}
    assert config["limits"] == DEFAULTS["limits"]


@pytest.mark.parametrize(
    "user,culprit",
    [
        ({"netwrokTimeout": {}}, "netwrokTimeout"),
        ({"domain": {}}, "domain"),
        ({"networkTimeout": {"reqeust": 1}}, "reqeust"),
        ({"domains": {"requests": []}}, "requests"),
        ({"domains": {"connectSocket": []}}, "connectSocket"),  # the list is "socket"
        ({"maxConcurrent": {"https": 1}}, "https"),
        ({"limits": {"downloadMax": 1}}, "downloadMax"),
        ({"tls": {"verfy": True}}, "verfy"),
    ],
)
def test_unknown_key(user: Dict[str, Any], culprit: str) -> None:
    with pytest.raises(ValueError, match=culprit):
        load_config(user)


@pytest.mark.parametrize(
    "user,culprit",
    [
        ([], "config"),
        ({"networkTimeout": 5}, "networkTimeout"),
        ({"networkTimeout": {"request": "5000"}}, "networkTimeout.request"),
        ({"networkTimeout": {"request": True}}, "networkTimeout.request"),
        ({"networkTimeout": {"request": -1}}, "networkTimeout.request"),
        ({"networkTimeout": {"request": float("nan")}}, "networkTimeout.request"),
        ({"domains": ["a.com"]}, "domains"),
        ({"domains": {"request": "a.com"}}, "domains.request"),
        ({"domains": {"request": ["a.com", 1]}}, "domains.request"),
        ({"maxConcurrent": {"http": 1.5}}, "maxConcurrent.http"),
        ({"maxConcurrent": {"http": 0}}, "maxConcurrent.http"),
        ({"maxConcurrent": {"socket": False}}, "maxConcurrent.socket"),
        ({"limits": {"downloadMaxBytes": "big"}}, "limits.downloadMaxBytes"),
        ({"limits": {"wsMaxMessageBytes": 0}}, "limits.wsMaxMessageBytes"),
        ({"limits": {"streamBufferBytes": 0}}, "limits.streamBufferBytes"),
        ({"limits": {"streamBufferBytes": 1.5}}, "limits.streamBufferBytes"),
        ({"sandbox": 1}, "sandbox"),
        ({"sandbox": b"/tmp"}, "sandbox"),
        ({"tls": None}, "tls"),
        ({"tls": {"verify": "yes"}}, "tls.verify"),
        ({"tls": {"verify": 1}}, "tls.verify"),
        ({"tls": {"cafile": 1}}, "tls.cafile"),
    ],
)
def test_wrong_type(user: Any, culprit: str) -> None:
    with pytest.raises(ValueError) as info:
        load_config(user)
    assert culprit in str(info.value)


def test_runtime_rejects_a_bad_config_before_starting_anything() -> None:
    with pytest.raises(ValueError, match="netwrokTimeout"):
        make_runtime(config={"netwrokTimeout": {}})


def test_the_user_dict_is_not_shared() -> None:
    user = {
        "networkTimeout": {"request": 1000},
        "domains": {"request": ["a.example.com"]},
        "tls": {"verify": False},
    }
    snapshot = copy.deepcopy(user)
    config = load_config(user)
    assert config["domains"] is not user["domains"]
    assert config["domains"]["request"] is not user["domains"]["request"]
    assert config["networkTimeout"] is not user["networkTimeout"]
    user["domains"]["request"].append("evil.example.com")
    user["networkTimeout"]["request"] = 1
    assert config["domains"]["request"] == ["a.example.com"]
    assert config["networkTimeout"]["request"] == 1000
    config["domains"]["request"].append("x")
    config["maxConcurrent"]["http"] = 99
    assert user == {
        **snapshot,
        "domains": {"request": ["a.example.com", "evil.example.com"]},
        "networkTimeout": {"request": 1},
    }
    assert load_config(None)["maxConcurrent"]["http"] == 10  # the defaults are untouched


def test_runtime_config_is_its_own() -> None:
    user = {"domains": {"request": ["a.example.com"]}}
    rt = make_runtime(config=user, autostart=False)
    try:
        user["domains"]["request"].append("evil.example.com")
        assert rt.config["domains"]["request"] == ["a.example.com"]
    finally:
        rt.close()


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
def test_an_unusable_sandbox_leaks_no_fd(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    before = len(os.listdir("/proc/self/fd"))
    with pytest.raises(OSError):
        make_runtime(config={"sandbox": str(blocker / "root")})
    assert len(os.listdir("/proc/self/fd")) == before
