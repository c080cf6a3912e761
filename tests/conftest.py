"""Shared fixtures: real peers (tests/peers), the runtimes (tests/support) and leak checks."""

pytest_plugins = ["tests.peers.fixtures", "tests.support.runtimes"]
