"""Throughput of our HL7 v2 hot path against hl7apy and python-hl7, measured in one process.

Contenders, all run on the same messages (the good fixtures plus a generated typical PCD-01 message):

* ours-parse: decode + parse + read_header, from the raw bytes;
* ours-full: decode + parse + read_header + ORU transform, what the engine does per message;
* hl7apy: parse_message (tolerant, no groups) + reading MSH-10 and OBX-3.1, 3.3, 5, 6.1 of every OBX;
* python-hl7: hl7.parse + reading the same fields.

The peers get text already decoded and joined with CR, outside the timed loop, and read fewer fields than
our transform does, so the ratios favour the peers if anything. Contenders run interleaved, in a rotating
order, for several rounds; the median rate and the median of the per-round ratios are reported.

Usage: .venv/bin/python bench/transform_bench.py [--seconds S] [--json]. Writes no files.
"""
from __future__ import annotations

import argparse
import gc
import json
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import hl7
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.parser import parse_message

from transforms.hl7.charset import decode
from transforms.hl7.header import read_header
from transforms.hl7.parser import parse
from transforms.oru import transform

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "hl7"
TYPICAL = "typical_pcd01 (generated)"
DEFAULT_SECONDS = 24.0
ROUNDS = 5
WARMUP = 0.5  # length of the warm-up run, as a fraction of one measured run
_LINE_END = re.compile(r"\r\n|\r|\n")

# (OBX-4 path, MDC code, MDC name, value, unit code, unit name, reference range): the typical message's vitals.
_TYPICAL_VITALS = (
    ("1.1.1.1", "147842", "MDC_ECG_HEART_RATE", "72", "264864", "MDC_DIM_BEAT_PER_MIN", "50-120"),
    ("1.2.1.1", "150456", "MDC_PULS_OXIM_SAT_O2", "97", "262688", "MDC_DIM_PERCENT", "90-100"),
    ("1.2.1.2", "149530", "MDC_PULS_OXIM_PULS_RATE", "71", "264864", "MDC_DIM_BEAT_PER_MIN", "50-120"),
    ("1.3.1.1", "151562", "MDC_RESP_RATE", "16", "264928", "MDC_DIM_RESP_PER_MIN", "8-30"),
    ("1.4.1.1", "150344", "MDC_TEMP", "37.1", "268192", "MDC_DIM_DEGC", "36.0-38.0"),
    ("1.5.1.1", "150021", "MDC_PRESS_BLD_NONINV_SYS", "122", "266016", "MDC_DIM_MMHG", "90-160"),
    ("1.5.1.2", "150022", "MDC_PRESS_BLD_NONINV_DIA", "78", "266016", "MDC_DIM_MMHG", "50-100"),
    ("1.5.1.3", "150023", "MDC_PRESS_BLD_NONINV_MEAN", "93", "266016", "MDC_DIM_MMHG", "65-110"),
)


def typical_pcd01() -> bytes:
    """A typical IHE PCD-01 ORU^R01 from a bedside monitor: one MDS row and eight MDC vitals (~1.5 KB)."""
    eui = "0012AB34CD56EF78^EUI-64"
    order = f"MON-20250314-0001^MONITOR^{eui}"
    lines = [
        (f"MSH|^~\\&|MONITOR^{eui}|ICU-3|VITALS|HOSP|20250314101500+0100||ORU^R01^ORU_R01|MON-20250314-0001"
         "|P|2.6|||NE|AL||UNICODE UTF-8|||IHE PCD ORU-R01 2006^HL7^1.3.6.1.4.1.19376.1.6.1.1.1^ISO"),
        "PID|||MRN-004711^^^HOSP^MR||Nguyen^Thi^Lan^^^^L||19580722|F",
        "PV1||I|ICU-3^BED-07^1",
        f"OBR|1|{order}|{order}|182777000^monitoring of patient^SNOMED-CT|||20250314101500+0100",
        f"OBX|1||69965^MDC_DEV_MON_PHYSIO_MULTI_PARAM_MDS^MDC|1|||||||R|||20250314101500+0100||||{eui}",
    ]
    for number, (path, code, name, value, unit, unit_name, normal) in enumerate(_TYPICAL_VITALS, start=2):
        lines.append(f"OBX|{number}|NM|{code}^{name}^MDC|{path}|{value}|{unit}^{unit_name}^MDC|{normal}|N|||R|||"
                     "20250314101458+0100")
    return ("\r".join(lines) + "\r").encode("ascii")


def load_messages() -> dict[str, bytes]:
    """Raw bytes of every good fixture (fixtures/hl7/*.hl7, not bad/) and of the typical message."""
    messages = {path.name: path.read_bytes() for path in sorted(FIXTURES.glob("*.hl7"))}
    messages[TYPICAL] = typical_pcd01()
    return messages


def as_cr_text(data: bytes) -> str:
    """Decoded text with segments joined by CR and no empty lines, as the peer parsers want it."""
    return "\r".join(line for line in _LINE_END.split(decode(data)) if line.strip())


def ours_parse(data: bytes) -> int:
    """Decode, parse and read MSH: the part of our hot path that a generic parser also does."""
    message = parse(decode(data))
    read_header(message)
    return len(message.segments)


def ours_full(data: bytes) -> int:
    """Everything the engine does per message: decode, parse, read MSH, transform into readings."""
    message = parse(decode(data))
    return len(transform(message, read_header(message)))


def _apy_component(field, index: int) -> str:
    """Component ``index`` (0-based) of an hl7apy field, '' when absent."""
    children = field.children
    return children[index].value if len(children) > index else ""


def hl7apy_obx(text: str) -> int:
    """hl7apy tolerant parse, then MSH-10 and OBX-3.1, 3.3, 5 and 6.1 of every OBX."""
    message = parse_message(text, find_groups=False, validation_level=VALIDATION_LEVEL.TOLERANT)
    touched = [message.msh.msh_10.value]
    for obx in message.obx:
        touched += (_apy_component(obx.obx_3, 0), _apy_component(obx.obx_3, 2), obx.obx_5.value,
                    _apy_component(obx.obx_6, 0))
    return len(touched)


def python_hl7_obx(text: str) -> int:
    """python-hl7 parse, then MSH-10 and OBX-3.1, 3.3, 5 and 6.1 of every OBX."""
    message = hl7.parse(text)
    touched = [message.segment("MSH").extract_field(field_num=10)]
    for obx in message.segments("OBX"):
        touched += (obx.extract_field(field_num=3, component_num=1), obx.extract_field(field_num=3, component_num=3),
                    obx.extract_field(field_num=5), obx.extract_field(field_num=6, component_num=1))
    return len(touched)


@dataclass(frozen=True)
class Contender:
    name: str
    run: Callable[[object], int]
    takes_text: bool  # True: fed CR-joined text (as_cr_text); False: fed the raw bytes


CONTENDERS = (
    Contender("ours-parse", ours_parse, False),
    Contender("ours-full", ours_full, False),
    Contender("hl7apy", hl7apy_obx, True),
    Contender("python-hl7", python_hl7_obx, True),
)
REFERENCE = "ours-full"


def prepare(messages: dict[str, bytes]) -> tuple[list[str], dict[str, list], dict[str, dict[str, str]]]:
    """The messages every contender handles, their inputs per contender, and what failed, per contender.

    Each contender runs once on each message; a message that any contender fails on (hl7apy raising on a
    fixture, say) is reported and left out for all, so that every contender works on the same messages.
    """
    texts = {name: as_cr_text(data) for name, data in messages.items()}
    failures: dict[str, dict[str, str]] = {c.name: {} for c in CONTENDERS}
    for contender in CONTENDERS:
        for name, data in messages.items():
            try:
                contender.run(texts[name] if contender.takes_text else data)
            except Exception as error:
                failures[contender.name][name] = f"{type(error).__name__}: {error}"[:120]
    usable = [name for name in messages if not any(name in failed for failed in failures.values())]
    inputs = {c.name: [texts[n] if c.takes_text else messages[n] for n in usable] for c in CONTENDERS}
    return usable, inputs, failures


def measure(run: Callable[[object], int], inputs: Sequence, seconds: float) -> float:
    """Messages per second of ``run`` over whole passes of ``inputs``, for about ``seconds`` (one pass at least)."""
    gc.collect()
    done = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        for item in inputs:
            run(item)
        done += len(inputs)
        now = time.perf_counter()
        if now >= deadline:
            return done / (now - start)


def run_rounds(inputs: dict[str, list], seconds: float, rounds: int = ROUNDS) -> dict[str, list[float]]:
    """Rates per contender, one per round: a warm-up first, then the contenders interleaved, rotating order.

    ``seconds`` is the whole budget, shared equally by every contender's warm-up and measured runs.
    """
    slice_seconds = seconds / (len(CONTENDERS) * (rounds + WARMUP))
    for contender in CONTENDERS:
        measure(contender.run, inputs[contender.name], slice_seconds * WARMUP)
    rates: dict[str, list[float]] = {c.name: [] for c in CONTENDERS}
    for round_number in range(rounds):
        shift = round_number % len(CONTENDERS)
        for contender in CONTENDERS[shift:] + CONTENDERS[:shift]:
            rates[contender.name].append(measure(contender.run, inputs[contender.name], slice_seconds))
    return rates


def summarize(rates: dict[str, list[float]]) -> list[dict]:
    """Per contender: median rate, microseconds per message, spread of the rounds, and ours-full's ratio.

    The ratio is the median over rounds of (ours-full rate / contender rate) within the same round, which
    cancels most of the machine's drift between rounds.
    """
    rows = []
    for name, series in rates.items():
        median = statistics.median(series)
        ratios = [ours / theirs for ours, theirs in zip(rates[REFERENCE], series, strict=True)]
        rows.append({
            "contender": name,
            "messages_per_second": round(median, 1),
            "microseconds_per_message": round(1e6 / median, 2),
            "spread_percent": round(100 * (max(series) - min(series)) / median, 1),
            "ours_full_ratio": round(statistics.median(ratios), 2),
            "rates": [round(rate, 1) for rate in series],
        })
    return rows


def format_table(report: dict) -> str:
    """The report as a plain-text table followed by the headline ratios and any failures."""
    lines = [(f"{len(report['messages'])} messages x {report['rounds']} rounds, about {report['seconds']:g} s "
              "in all; ratio = ours-full rate / contender rate, median of the rounds"),
             f"{'contender':<12} {'messages/s':>12} {'us/message':>11} {'spread':>7} {'ours-full is':>13}"]
    for row in report["results"]:
        lines.append(f"{row['contender']:<12} {row['messages_per_second']:>12,.0f} "
                     f"{row['microseconds_per_message']:>11.1f} {row['spread_percent']:>6.1f}% "
                     f"{row['ours_full_ratio']:>11.2f} x")
    peers = [row for row in report["results"] if not row["contender"].startswith("ours")]
    lines.append("ours (full transform) is " + ", ".join(
        f"{row['ours_full_ratio']:.1f} x {row['contender']}" for row in peers))
    for contender, failed in report["failures"].items():
        for message, error in failed.items():
            lines.append(f"FAILING for {contender}: {message} ({error}); left out for every contender")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print the table (or JSON); 1 when no message is usable by every contender."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS,
                        help=f"total measuring time, shared by all contenders (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(argv)
    messages, inputs, failures = prepare(load_messages())
    if not messages:
        print(f"no message is handled by every contender: {failures}", file=sys.stderr)
        return 1
    report = {"seconds": args.seconds, "rounds": ROUNDS, "messages": messages,
              "failures": {name: failed for name, failed in failures.items() if failed},
              "results": summarize(run_rounds(inputs, args.seconds))}
    print(json.dumps(report, indent=2) if args.json else format_table(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
