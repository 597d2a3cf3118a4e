"""Refuses ``from <project module> import _name`` across modules (``make lint`` runs it).

Ruff's PLC2701 and pylint's C2701 both let a module import another's private names when the two
share a top-level package, which is every import inside ``core``; SLF001 catches ``module._name``
but not ``from module import _name``. This closes that gap: a private name stays in its module.

Usage: python tools/check_private_imports.py [folders...]   (default: core ui pages app.py)
Exit 1 and one line per import found; 0 when there are none.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("core", "ui", "pages", "app")


def private_imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
            continue
        if node.module.split(".")[0] not in PROJECT:
            continue
        for alias in node.names:
            if alias.name.startswith("_") and not alias.name.startswith("__"):
                rel = path.relative_to(ROOT) if path.is_relative_to(ROOT) else path
                found.append(f"{rel}:{node.lineno}: imports private name {alias.name!r} from {node.module}")
    return found


def main(argv: list[str]) -> int:
    targets = [ROOT / a for a in (argv or ["core", "ui", "pages", "app.py"])]  # absolute stays absolute
    files = [t for t in targets if t.is_file()] + [f for t in targets if t.is_dir() for f in t.rglob("*.py")]
    found = [line for f in sorted(files) for line in private_imports(f)]
    print("\n".join(found) if found else f"No private names imported across modules ({len(files)} files).")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
