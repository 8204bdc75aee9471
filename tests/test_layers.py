"""The rules that keep the path straight: transforms do no I/O, nothing does I/O at import time."""
import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN_IN_TRANSFORMS = {"socket", "asyncio", "sqlalchemy", "psycopg", "pyodbc", "sqlite3", "spyne", "zeep",
                           "requests", "urllib", "http", "engine", "adapters", "subprocess", "ssl"}


@pytest.mark.parametrize("path", sorted((ROOT / "transforms").rglob("*.py")), ids=lambda p: p.name)
def test_transforms_import_nothing_that_does_io(path: Path) -> None:
    tree = ast.parse(path.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN_IN_TRANSFORMS
    assert "open(" not in path.read_text()


def test_importing_every_module_does_no_io(tmp_path: Path) -> None:
    modules = [".".join(p.relative_to(ROOT).with_suffix("").parts)
               for package in ("engine", "transforms", "adapters") for p in (ROOT / package).rglob("*.py")]
    code = "import importlib, sys\nfor m in sys.argv[1:]: importlib.import_module(m.removesuffix('.__init__'))"
    result = subprocess.run([sys.executable, "-c", code, *modules], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert result.returncode == 0, result.stderr
    assert list(tmp_path.iterdir()) == []  # no database file, no var/ folder
