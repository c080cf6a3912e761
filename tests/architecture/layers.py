"""The import rule of ftcore's layers, checked on the source (stdlib only, so `nox -s lint`
runs it without installing anything).

    ftcore/__init__.py        the facade (and __main__): may import anything of ftcore
    ftcore/_app/              the application     -> _api, _net, _core, contracts, and the
                              builtin plugins (the demo serves WebSocket with the codec's echo
                              server; the CLI lists the builtins)
    ftcore/_api/              the API semantics   -> _net, _core, contracts
    ftcore/_net/              the stream layer    -> _core, contracts
    ftcore/_core/             runtime plumbing    -> contracts
    ftcore/testing/           mock transports     -> _api, _net, _core, contracts
    contracts                 errors, hookspecs, loop, transports, _log: each other only
    plugins/                  -> contracts, _net and their own package (never _core, _api, _app)

Below `_app`, nothing in ftcore imports a plugin. Imports under `if TYPE_CHECKING:` are
exempt: they name types and never run.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

CONTRACTS = {"errors", "hookspecs", "loop", "transports", "_log"}
ALLOWED = {
    "_app": {"_api", "_net", "_core", "contracts", "_app", "plugin"},
    "_api": {"_net", "_core", "contracts", "_api"},
    "_net": {"_core", "contracts", "_net"},
    "_core": {"contracts", "_core"},
    "testing": {"_api", "_net", "_core", "contracts", "testing"},
    "contracts": {"contracts"},
    "plugin": {"contracts", "_net"},
}
PLUGIN_PREFIX = "ftcore_"


def layer_of_module(dotted: str) -> Optional[str]:
    """The layer a module `ftcore.x.y` belongs to, or "plugin"; None for anything else."""
    parts = dotted.split(".")
    if parts[0].startswith(PLUGIN_PREFIX):
        return "plugin"
    if parts[0] != "ftcore":
        return None
    if len(parts) == 1 or parts[1] == "__main__":
        return "facade"
    if parts[1] in CONTRACTS:
        return "contracts"
    return parts[1]


def _module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[0] == "plugins":
        parts = parts[1:]
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _type_checking_lines(tree: ast.AST) -> set:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                for sub in ast.walk(child):
                    if hasattr(sub, "lineno"):
                        lines.add(sub.lineno)
    return lines


def imports_of(path: Path, module: str) -> Iterator[Tuple[int, str]]:
    """(line, absolute module) for every import that runs."""
    tree = ast.parse(path.read_text(), str(path))
    skip = _type_checking_lines(tree)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if getattr(node, "lineno", None) in skip:
            continue
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [target + "." + a.name for a in node.names] if not node.module else [target]
            for name in names:
                yield node.lineno, name


def violations(root: Path) -> List[str]:
    found = []
    files = sorted(root.glob("ftcore/**/*.py")) + sorted(root.glob("plugins/*/**/*.py"))
    for path in files:
        module = _module_name(path, root)
        source_layer = layer_of_module(module)
        if source_layer in (None, "facade"):
            continue
        for line, target in imports_of(path, module):
            target_layer = layer_of_module(target)
            if target_layer is None:
                continue
            if target_layer == "facade":
                target_layer = "contracts" if source_layer == "plugin" else "facade"
            if source_layer == target_layer == "plugin":
                if target.split(".")[0] == module.split(".")[0]:
                    continue
            if target_layer not in ALLOWED.get(source_layer, set()):
                found.append("%s:%d: %s (%s) imports %s (%s)" % (
                    path.relative_to(root), line, module, source_layer, target, target_layer))
    return found


def main() -> int:
    root = Path(__file__).resolve().parents[2]
    found = violations(root)
    for line in found:
        print(line)
    print("%d upward import(s)" % len(found))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
