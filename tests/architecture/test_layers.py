"""Imports point down the layers only (the rule and its exemptions: `layers.py`)."""

from __future__ import annotations

from pathlib import Path

from tests.architecture.layers import violations


def test_no_upward_import() -> None:
    assert violations(Path(__file__).resolve().parents[2]) == []
