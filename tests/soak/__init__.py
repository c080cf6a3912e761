"""The soak campaign (issue 11 §4): `python -m tests.soak.campaign --help`, or `nox -s soak`.

Not a pytest suite (no `test_` files here): it runs for minutes and reports figures.
"""
