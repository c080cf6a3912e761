"""The pytest plugin: `ft_mock` and `ft_mock_config`, loaded with ``-p ftcore.testing``."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

# Already imported by this session, so pytest cannot rewrite its asserts: say it is fine.
PLUGIN_ARGS = (
    "-p",
    "ftcore.testing",
    "-p",
    "no:cacheprovider",
    "-W",
    "ignore::pytest.PytestAssertRewriteWarning",
)


@pytest.fixture(autouse=True)
def isolated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only our plugin in the inner runs (faster, and no other plugin's fixtures)."""
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    pytester.makepyfile(source)
    return pytester.runpytest(*PLUGIN_ARGS, *args)


def test_ft_mock_gives_a_runtime_wired_to_the_mock(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest
        from ftcore import FtError
        from ftcore.testing import FtMock, Reply

        RUNTIMES = []

        def test_request(ft_mock):
            assert isinstance(ft_mock, FtMock)
            ft_mock.http.add("GET", "https://api.example.com/user", json={"name": "ft"})
            res = ft_mock.runtime.request(url="https://api.example.com/user").result(5)
            assert res["data"] == {"name": "ft"}
            assert [r.url for r in ft_mock.requests] == ["https://api.example.com/user"]
            assert ft_mock.runtime is ft_mock.runtime
            RUNTIMES.append(ft_mock.runtime)

        def test_closed_at_teardown_and_fresh_per_test(ft_mock):
            assert RUNTIMES[0].closed
            assert ft_mock.requests == [] and ft_mock.http.routes == []
            with pytest.raises(FtError, match="no mock route"):
                ft_mock.runtime.request(url="https://api.example.com/user").result(5)

        def test_websocket(ft_mock):
            import queue
            ft_mock.ws.add("ws://chat.example.com/").send("hi")
            got = queue.Queue()
            task = ft_mock.runtime.connectSocket(url="ws://chat.example.com/")
            task.onMessage(lambda res: got.put(res["data"]))
            assert got.get(timeout=5) == "hi"
    """,
    )
    result.assert_outcomes(passed=3)


def test_ft_mock_config_configures_the_runtime(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        import pytest
        from ftcore import FtError

        @pytest.fixture
        def ft_mock_config():
            return {"domains": {"request": ["api.example.com"]}}

        def test_domain_list(ft_mock):
            ft_mock.http.add("GET", "https://evil.example.com/", body="x")
            with pytest.raises(FtError) as info:
                ft_mock.runtime.request(url="https://evil.example.com/").result(5)
            assert info.value.errno == 600002
            assert ft_mock.requests == []

        def test_more_runtimes(ft_mock):
            ft_mock.http.add("GET", "https://evil.example.com/", body="x")
            other = ft_mock.make_runtime()
            assert other.request(url="https://evil.example.com/").result(5)["data"] == "x"
    """,
    )
    result.assert_outcomes(passed=2)


def test_verify_fails_a_test_with_an_unused_route(pytester: pytest.Pytester) -> None:
    result = run(
        pytester,
        """
        def test_unused(ft_mock):
            ft_mock.http.add("GET", "https://api.example.com/never", body="x")
            ft_mock.verify()
    """,
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*HTTP route never called: GET https://api.example.com/never*"])


def test_the_fixtures_are_listed(pytester: pytest.Pytester) -> None:
    pytester.makepyfile("def test_x(): pass")
    result = pytester.runpytest(*PLUGIN_ARGS, "--fixtures")
    result.stdout.fnmatch_lines(["ft_mock_config -- *", "*The config of ``ft_mock.runtime``*"])
    result.stdout.fnmatch_lines(["ft_mock -- *", "*A `MockTransport`*"])
