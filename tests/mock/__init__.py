"""Tests of `ftcore.testing`: the mock transport, its scripts, and the pytest plugin."""
