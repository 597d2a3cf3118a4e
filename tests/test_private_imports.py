"""tools/check_private_imports.py (run by ``make lint``) finds what ruff's PLC2701 lets through."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOL = ROOT / "tools" / "check_private_imports.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(TOOL), *args], cwd=ROOT, capture_output=True, text=True)


def test_the_project_imports_no_private_names_across_modules():
    out = run()
    assert out.returncode == 0, out.stdout


def test_a_private_name_imported_from_a_sibling_module_fails_lint(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("from core.data.sources.keras_sets import _keras_home\n\nprint(_keras_home)\n")
    out = run(str(bad))
    assert out.returncode == 1
    assert f"{bad}:1: imports private name '_keras_home' from core.data.sources.keras_sets" in out.stdout
