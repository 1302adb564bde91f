"""`make lint` refuses an import against the layers: checked on a copy of the tree with one
wrong-way import written into it (the contracts live in pyproject.toml)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("schema", "definition", "store", "workflows", "activities", "api", "promptpilot",
            "devstack", "payloads", "reconcile")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _copy_tree(into: Path) -> None:
    for package in PACKAGES:
        shutil.copytree(ROOT / package, into / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.html", "*.js", "*.css"))
    shutil.copy(ROOT / "pyproject.toml", into / "pyproject.toml")


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=tree, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.parametrize(("module", "wrong_import", "contract"), [
    ("schema/base.py", "import api.app", "schema holds contracts and shared names only"),
    ("workflows/scope.py", "import store.runs", "workflows are deterministic"),
    ("definition/templates.py", "import activities.transform", "definition is pure"),
    ("store/sql.py", "import reconcile.reconciler", "the store persists"),
])
def test_an_import_against_the_direction_fails_the_lint(
        tmp_path: Path, module: str, wrong_import: str, contract: str) -> None:
    _copy_tree(tmp_path)
    target = tmp_path / module
    target.write_text(target.read_text() + f"\n{wrong_import}  # noqa: E402, F401\n")

    result = _lint(tmp_path)

    assert result.returncode != 0, result.stdout
    assert f"{contract}" in result.stdout
    assert "BROKEN" in result.stdout


def test_the_tree_as_it_is_keeps_every_contract(tmp_path: Path) -> None:
    _copy_tree(tmp_path)
    result = _lint(tmp_path)
    assert result.returncode == 0, result.stdout
    assert "0 broken" in result.stdout
