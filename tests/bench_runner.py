"""Running a benchmark of bench/ from its smoke test: as a subprocess that always stops what it started, or
imported from its path (bench/ is not a package; its scripts import each other)."""
from __future__ import annotations

import importlib.util
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH_DIR = Path(__file__).resolve().parent.parent / "bench"


def run_bench(script: Path, arguments: list[str], timeout: float) -> subprocess.CompletedProcess[str]:
    """The benchmark as a subprocess; on a hang it gets SIGINT first, so it stops the servers it started."""
    process = subprocess.Popen([sys.executable, str(script), *arguments], cwd=BENCH_DIR.parent, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        pytest.fail(f"{script.name} {' '.join(arguments)} did not finish within {timeout:g} s")
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def imported(script: Path) -> Iterator[ModuleType]:
    """The benchmark module (for a module-scoped fixture: ``yield from imported(BENCH)``)."""
    sys.path.insert(0, str(BENCH_DIR))
    spec = importlib.util.spec_from_file_location(script.stem, script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(spec.name, None)
        sys.path.remove(str(BENCH_DIR))
