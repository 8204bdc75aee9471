"""Smoke tests of bench/transform_bench.py: it runs, reports every contender, handles failures.

No timing assertions: the numbers depend on the machine; only the shape of the output is checked.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "bench" / "transform_bench.py"
CONTENDER_NAMES = ("ours-parse", "ours-full", "hl7apy", "python-hl7")


@pytest.fixture(scope="module")
def bench():
    """The benchmark module, imported from its path (bench/ is not a package)."""
    spec = importlib.util.spec_from_file_location("transform_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    yield module
    sys.modules.pop(spec.name, None)


def test_cli_prints_every_contender_and_exits_0():
    result = subprocess.run([sys.executable, str(BENCH), "--seconds", "0.3"], capture_output=True, text=True,
                            cwd=BENCH.parent.parent, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    for name in CONTENDER_NAMES:
        assert name in result.stdout
    assert "ours (full transform) is" in result.stdout


def test_json_output_has_every_contender(bench, capsys):
    assert bench.main(["--seconds", "0.3", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [row["contender"] for row in report["results"]] == list(CONTENDER_NAMES)
    assert bench.TYPICAL in report["messages"]
    assert report["failures"] == {}
    for row in report["results"]:
        assert row["messages_per_second"] > 0
        assert len(row["rates"]) == report["rounds"]


def test_typical_message_carries_eight_vitals(bench):
    data = bench.typical_pcd01()
    assert 1300 <= len(data) <= 1700
    assert bench.ours_full(data) == 8


def test_a_message_a_peer_fails_on_is_reported_and_left_out(bench, monkeypatch):
    def picky_hl7apy(text: str) -> int:
        if "LAT-1" in text:
            raise ValueError("cannot parse this one")
        return bench.hl7apy_obx(text)

    contenders = tuple(dataclasses.replace(c, run=picky_hl7apy) if c.name == "hl7apy" else c
                       for c in bench.CONTENDERS)
    monkeypatch.setattr(bench, "CONTENDERS", contenders)
    messages, inputs, failures = bench.prepare(bench.load_messages())
    assert "charset_latin1.hl7" not in messages
    assert list(failures["hl7apy"]) == ["charset_latin1.hl7"]
    assert all(len(items) == len(messages) for items in inputs.values())
    report = {"seconds": 0.0, "rounds": 1, "messages": messages, "failures": {"hl7apy": failures["hl7apy"]},
              "results": bench.summarize({c.name: [1.0] for c in contenders})}
    assert "FAILING for hl7apy: charset_latin1.hl7" in bench.format_table(report)
