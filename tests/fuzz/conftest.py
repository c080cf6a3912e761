"""Hypothesis profiles of the fuzz campaign, chosen by FTCORE_FUZZ_PROFILE (`ci` or `long`).

* `ci` (the default, part of every test run): 60 examples per test, derandomized so every run
  tries the same inputs and CI cannot fail at random; all of tests/fuzz in about 10 s on an
  idle machine, 30-40 s on a heavily loaded one.
* `long` (`nox -s fuzz`): 50 times the examples, random ones, and what fails is kept in
  .hypothesis/ so the next run tries it first.

No profile is loaded globally, which would change every other hypothesis test of the session:
the fuzz tests take theirs from `support.FUZZ`. Nor is there a deadline, since timings follow
the machine's load. A parser that stops progressing is caught by the step budget of
`support.pull`; one that loops inside a single call, by pytest-timeout.
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings

_COMMON = dict(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

settings.register_profile(
    "ftcore-fuzz-ci", max_examples=60, derandomize=True, database=None, **_COMMON
)
settings.register_profile(
    "ftcore-fuzz-long", max_examples=3_000, print_blob=True, **_COMMON
)
