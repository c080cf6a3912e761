"""Lifecycle diagrams drawn from the transition tables at build time (as h11's
``make-state-diagrams.py`` draws its own), so the docs cannot drift from the code.

``.. ftcore-lifecycle:: ftcore._core.state.SOCKET`` renders the `ftcore._core.state.Table` at
that dotted path twice, in plain text that needs no graphviz binary:

* a grid: one row per state that has moves, one column per event, the new state in each cell
  (blank where the table has no move: the event raises `IllegalTransition`);
* a tree of every path from the initial state, each state expanded once.
"""

from __future__ import annotations

import importlib
from typing import Any, Dict, List, Set

from sphinx.application import Sphinx

from ftcore_tables import _list_table, _TableDirective


def _table_at(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


def grid(table: Any) -> List[str]:
    """The table as an rst list-table: states down, events across."""
    used = {event for _, event, _ in table.transitions()}
    events = [event for event in type(next(iter(used))) if event in used]  # in enum order
    rows = [
        ["``%s``" % state.name]
        + [_cell(moves.get(event)) for event in events]
        for state, moves in table.moves.items()
        if moves
    ]
    header = ["state"] + ["*%s*" % event.value for event in events]
    return _list_table(header, rows, "auto")


def _cell(new: Any) -> str:
    return "" if new is None else "``%s``" % new.name


def tree(table: Any) -> List[str]:
    """Every path from the initial state as an ASCII tree; a state is expanded where it first
    appears, and marked "(above)" where it appears again."""
    lines = [table.initial.name]
    expanded: Set[Any] = {table.initial}

    def walk(state: Any, indent: str) -> None:
        moves: Dict[Any, Any] = table.moves[state]
        for i, (event, new) in enumerate(moves.items()):
            last = i == len(moves) - 1
            again = new in expanded and table.moves[new]
            label = new.name + (" (above)" if again else "")
            lines.append("%s%s-- %s --> %s" % (indent, "`" if last else "+", event.value, label))
            if not again and table.moves[new]:
                expanded.add(new)
                walk(new, indent + ("    " if last else "|   "))

    walk(table.initial, "")
    return lines


class Lifecycle(_TableDirective):
    required_arguments = 1

    def lines(self) -> List[str]:
        table = _table_at(self.arguments[0])
        final = ", ".join("``%s``" % state.name for state in table.moves if state in table.final)
        return (
            grid(table)
            + ["", "A blank cell: the event raises. Final: %s (every event raises)." % final]
            + ["", ".. code-block:: text", ""]
            + ["   " + line for line in tree(table)]
        )


def setup(app: Sphinx) -> Dict[str, Any]:
    app.add_directive("ftcore-lifecycle", Lifecycle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

