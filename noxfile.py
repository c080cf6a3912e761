"""Sessions: tests per Python, a minimal-deps run, lint, types, docs, benchmarks, Autobahn.

    nox -s tests-3.9 tests-3.13     # what CI runs (plus lint, minimal, autobahn_quick)
    nox -s tests                    # every Python 3.9-3.13
    nox -s soak -- --seconds 20     # the soak campaign (default 3 minutes)
    nox -s fuzz                     # the parser fuzz campaign, long profile (CI runs a short one)
"""

from __future__ import annotations

import os
import shutil

import nox

PYTHONS = ["3.9", "3.10", "3.11", "3.12", "3.13"]
nox.options.sessions = ["tests", "minimal", "lint"]
nox.options.reuse_existing_virtualenvs = True


def _expose_pyenv_pythons() -> None:
    """Put every pyenv-installed 3.x on PATH as its real binary (pyenv's shims answer only
    for the active version, and nox caches what an interpreter path answered)."""
    root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    versions = os.path.join(root, "versions")
    if not os.path.isdir(versions):
        return
    bins = [
        os.path.join(versions, v, "bin")
        for v in sorted(os.listdir(versions))
        if v.startswith("3.") and v.count(".") == 2
    ]
    os.environ["PATH"] = os.pathsep.join(bins + [os.environ.get("PATH", "")])


_expose_pyenv_pythons()


def install_and_test(session: nox.Session, extras: str, *pytest_args: str) -> None:
    """The one way tests run: install the package with `extras`, then pytest."""
    session.install("-q", ".[%s]" % extras if extras else ".")
    session.run("python", "-m", "pytest", *pytest_args, *session.posargs)


@nox.session(python=PYTHONS)
def tests(session: nox.Session) -> None:
    install_and_test(session, "test", "-q", "-ra")


@nox.session(python="3.11")
def minimal(session: nox.Session) -> None:
    """Only pluggy: `import ftcore` works and HTTP fails with a message naming urllib3."""
    session.install("-q", ".")
    session.install("-q", "pytest", "pytest-timeout")
    session.run("python", "-m", "pytest", "-q", "--noconftest", "tests/test_minimal.py")


@nox.session(python="3.11")
def lint(session: nox.Session) -> None:
    session.install("-q", "ruff")
    session.run("ruff", "check", "ftcore", "plugins", "tests", "bench", "noxfile.py")
    session.run("python", "tests/architecture/layers.py")  # imports point down the layers only


@nox.session(python="3.11")
def typecheck(session: nox.Session) -> None:
    session.install("-q", ".[test]", "mypy")
    session.run("mypy", "ftcore", "plugins")


@nox.session(python="3.11")
def docs(session: nox.Session) -> None:
    session.install("-q", ".[test]", "sphinx")
    session.run("sphinx-build", "-W", "--keep-going", "-b", "html", "docs", "docs/_build/html")


BENCH_SCRIPTS = (  # each takes --quick and --json PATH (bench/results.py)
    "importtime", "core_overhead", "http", "dial", "files", "streaming", "websocket", "udp",
    "tcp",
)  # fmt: skip


@nox.session(python="3.11")
def bench(session: nox.Session) -> None:
    """Side-by-side benchmarks, then docs/results.rst and its chart from their JSON rows
    (bench/report.py). `-- --quick`: a smoke run of every script, a few minutes in all."""
    unknown = [arg for arg in session.posargs if arg != "--quick"]
    if unknown:
        session.error("bench takes only --quick, not %s" % " ".join(unknown))
    quick = ["--quick"] if session.posargs else []
    session.install(
        "-q", ".[test]", "requests", "websocket-client", "wsaccel", "aiohttp",
        "httpx", "httpx-sse", "aiohttp-sse-client", "numpy", "matplotlib",
    )  # fmt: skip
    out = os.path.join(session.create_tmp(), "bench-results")
    shutil.rmtree(out, ignore_errors=True)  # the report reads one run's files, no older ones
    os.makedirs(out)
    # bench/loop.py prints its table but writes no JSON yet: it is not in the report
    session.run("python", "bench/loop.py", *(["--rounds", "3", "--n", "20000"] if quick else []))
    for script in BENCH_SCRIPTS:
        json_path = os.path.join(out, script + ".json")
        session.run("python", "bench/%s.py" % script, "--json", json_path, *quick)
    session.run("python", "bench/report.py", out)


@nox.session(python="3.11")
def soak(session: nox.Session) -> None:
    """Mixed tasks against fast and hostile loopback peers, with aborts and runtime closes at
    random moments, then leak and exactly-once checks: 3 minutes by default, `-- --minutes N`
    or `-- --seconds 20` (CI); `-- --seed S` replays a run's plan (tests/soak/campaign.py)."""
    session.install("-q", ".[test]")
    session.run("python", "-m", "tests.soak.campaign", *session.posargs)


@nox.session(python="3.11")
def fuzz(session: nox.Session) -> None:
    """tests/fuzz with the long hypothesis profile (tests/fuzz/conftest.py): 50 times the
    examples of the CI run, random instead of replayed; what fails is kept in .hypothesis/."""
    session.env["FTCORE_FUZZ_PROFILE"] = "long"
    install_and_test(session, "test", "-q", "-o", "timeout=0", "tests/fuzz")


@nox.session(python="3.11")
def autobahn(session: nox.Session) -> None:
    """All 517 Autobahn|Testsuite cases against our client (about 15 minutes)."""
    _run_autobahn(session)


@nox.session(python="3.11")
def autobahn_quick(session: nox.Session) -> None:
    """Groups 1-7 and 10 (--quick) plus group 9: what CI runs."""
    _run_autobahn(session, "--cases", "1.*,2.*,3.*,4.*,5.*,6.*,7.*,9.*,10.*")


def _run_autobahn(session: nox.Session, *args: str) -> None:
    session.install("-q", ".")
    harness = os.environ.get("AUTOBAHN_HARNESS", os.path.join("..", "shared", "autobahn"))
    outdir = os.path.join(session.create_tmp(), "autobahn-run")
    session.run(
        "bash", os.path.join(harness, "run.sh"), "--outdir", outdir, *args,
        "--", os.path.join(session.bin, "python"), "tests/autobahn/adapter_ftcore.py",
        external=True,
    )
    session.run("python", "tests/autobahn/check_summary.py", outdir)
