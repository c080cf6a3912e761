"""Every subject kind x hook x re-entrant call of `matrix.KINDS` (issue 11 §1, API.md §11).

Each cell runs on a bounded thread: a deadlock fails it with every thread's stack. A cell also
fails if ftcore logged an error meanwhile (an internal error swallowed to keep the loop alive).
"""

from __future__ import annotations

import logging

import pytest

from tests.reentrancy.matrix import CELLS, Cell, Peers, run_cell
from tests.reentrancy.support import WAIT, run_bounded

pytestmark = pytest.mark.timeout(120)


@pytest.mark.parametrize("cell", CELLS, ids=lambda cell: cell.id)
def test_a_reentrant_call_keeps_the_rules(
    cell: Cell, peers: Peers, caplog: pytest.LogCaptureFixture
) -> None:
    run_bounded(lambda: run_cell(cell, peers), 3 * WAIT, cell.id)
    errors = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("ftcore") and record.levelno >= logging.ERROR
    ]
    assert not errors, errors
