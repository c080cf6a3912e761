"""Tables generated from the code at build time, so the docs cannot drift from it.

* ``.. ftcore-errno-table::``: every `ftcore.errors.Errno` with its errMsg reason;
* ``.. ftcore-config-defaults::``: every key of `ftcore._core.config.DEFAULTS` with its default.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective


def _list_table(header: List[str], rows: List[List[str]], widths: str) -> List[str]:
    lines = [".. list-table::", "   :header-rows: 1", "   :widths: " + widths, ""]
    for row in [header] + rows:
        lines.append("   * - " + row[0])
        lines.extend("     - " + cell for cell in row[1:])
    return lines


class _TableDirective(SphinxDirective):
    has_content = False

    def lines(self) -> List[str]:
        raise NotImplementedError

    def run(self) -> List[nodes.Node]:
        container = nodes.container()
        self.state.nested_parse(
            StringList(self.lines(), source="<ftcore_tables>"), self.content_offset, container
        )
        return container.children


class ErrnoTable(_TableDirective):
    def lines(self) -> List[str]:
        from ftcore.errors import ERRNO_TABLE, Errno

        rows = [
            ["``%d``" % member, "``Errno.%s``" % member.name, "``%s``" % ERRNO_TABLE[member]]
            for member in sorted(Errno)
        ]
        return _list_table(["errno", "name", "reason in errMsg"], rows, "15 35 50")


class ConfigDefaults(_TableDirective):
    def lines(self) -> List[str]:
        from ftcore._core.config import DEFAULTS

        rows: List[List[str]] = []
        for key, value in DEFAULTS.items():
            if isinstance(value, dict) and value:
                rows.extend(["``%s.%s``" % (key, sub), _value(item)] for sub, item in value.items())
            else:
                rows.append(["``%s``" % key, _value(value)])
        return _list_table(["key", "default"], rows, "40 60")


def _value(value: Any) -> str:
    if value is None:
        return "``None``"
    if value == {}:
        return "``{}`` (absent: allow everything)"
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and value >= 2**20
        and value % 2**20 == 0
    ):
        return "``%d`` (%d MiB)" % (value, value // 2**20)
    return "``%s``" % json.dumps(value)


def setup(app: Sphinx) -> Dict[str, Any]:
    app.add_directive("ftcore-errno-table", ErrnoTable)
    app.add_directive("ftcore-config-defaults", ConfigDefaults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
