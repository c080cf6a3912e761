"""Shared fixtures: real peers (tests/peers) and leak checks."""

pytest_plugins = ["tests.peers.fixtures"]
