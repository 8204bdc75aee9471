"""`make demo`: the mock EHR, the engine on a fresh SQLite database, and scripted simulated traffic, in one command.

Starts the mock EHR and the engine as child processes (data and logs in var/demo/, emptied first; the
engine reads the demo's routes in demo/routes/ and forwards to the mock EHR), waits until both answer,
prints the dashboard's address, then runs the simulated devices of demo/scenarios.py on a compressed clock
and prints a one-line summary every ~10 s. Ctrl-C (or SIGTERM) stops the senders, then the engine (SIGINT,
its clean shutdown), then the mock EHR, and exits 0. If a child dies, it says which and why (the end of its
log), stops the rest and exits 1. A second Ctrl-C while stopping kills what is left.

    .venv/bin/python scripts/demo.py [--http-port 8000] [--mllp-port 2575] [--ehr-port 8090] [--speed 1]

Ports also come from VITALS_HTTP_PORT, VITALS_MLLP_PORT and VITALS_MOCK_EHR_PORT. See docs/demo.md.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a file, Python puts scripts/ first; the demo package is at the root

from demo.processes import Child, ChildFailed, accepts_tcp, answers_http, child_env, port_in_use  # noqa: E402
from demo.scenarios import EHR_OUTAGE, SILENT_AFTER_SECONDS  # noqa: E402
from demo.senders import DemoClock  # noqa: E402
from demo.summary import Observer, summary_line  # noqa: E402
from demo.traffic import Endpoints, Traffic  # noqa: E402

HOST = "127.0.0.1"
STATE_FILES = ("demo.db", "demo.db-wal", "demo.db-shm", "demo.db-journal", "mock-ehr.jsonl", "engine.log",
               "mock-ehr.log")
START_TIMEOUT_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 60.0


class Console:
    """Lines on stdout, each with the demo second it happened at once the traffic runs; one at a time."""

    def __init__(self) -> None:
        self.clock: DemoClock | None = None
        self._lock = threading.Lock()

    def say(self, text: str) -> None:
        prefix = f"[{self.clock.now():5.0f} s] " if self.clock is not None else ""
        with self._lock:
            print(prefix + text, flush=True)


def _arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="VitalsStream demo: engine, mock EHR and simulated traffic")
    parser.add_argument("--http-port", type=int, default=_env_port("VITALS_HTTP_PORT", 8000),
                        help="engine HTTP: dashboard, REST, SOAP (default 8000, or VITALS_HTTP_PORT)")
    parser.add_argument("--mllp-port", type=int, default=_env_port("VITALS_MLLP_PORT", 2575),
                        help="engine HL7 over MLLP (default 2575, or VITALS_MLLP_PORT)")
    parser.add_argument("--ehr-port", type=int, default=_env_port("VITALS_MOCK_EHR_PORT", 8090),
                        help="mock EHR (default 8090, or VITALS_MOCK_EHR_PORT)")
    parser.add_argument("--state-dir", type=Path, default=ROOT / "var" / "demo",
                        help="database, mock EHR state and logs; its demo files are emptied first (default var/demo)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="demo seconds per real second: 2 runs the script twice as fast (default 1)")
    parser.add_argument("--seed", type=int, help="noise seed, for the same readings every run")
    parser.add_argument("--summary-every", type=float, default=10.0, help="seconds between summaries (default 10)")
    return parser


def _env_port(name: str, default: int) -> int:
    text = os.environ.get(name, "")
    return int(text) if text.isdigit() else default


def main(argv: list[str] | None = None) -> int:
    args = _arguments().parse_args(argv)
    if args.speed <= 0:
        print("--speed must be greater than 0", file=sys.stderr)
        return 2
    ports = {"engine HTTP": args.http_port, "engine MLLP": args.mllp_port, "mock EHR": args.ehr_port}
    busy = [f"{name} port {port}" for name, port in ports.items() if port_in_use(HOST, port)]
    if busy:
        print(f"cannot start the demo: {', '.join(busy)} in use (is `make run` or another demo still running?); "
              "choose others with --http-port, --mllp-port, --ehr-port", file=sys.stderr)
        return 2
    state = _fresh_state(args.state_dir.resolve())
    engine_url, ehr_url = f"http://{HOST}:{args.http_port}", f"http://{HOST}:{args.ehr_port}"
    mock, engine = _children(args, state, ehr_url)
    console = Console()
    observer = Observer(engine_url, ehr_url)
    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored (`&`)
    signal.signal(signal.SIGTERM, _interrupt)
    traffic: Traffic | None = None
    status = 0
    try:
        console.say(f"starting the mock EHR and the engine (logs in {state}) ...")
        mock.start().wait_ready(answers_http(f"{ehr_url}/control"), START_TIMEOUT_SECONDS)
        engine_ready, mllp_ready = answers_http(f"{engine_url}/readyz"), accepts_tcp(HOST, args.mllp_port)
        engine.start().wait_ready(lambda: engine_ready() and mllp_ready(), START_TIMEOUT_SECONDS)
        _banner(console, engine_url, ehr_url, args.mllp_port, state, args.speed)
        traffic = Traffic(Endpoints(engine_url, HOST, args.mllp_port, ehr_url), console.say, args.speed, args.seed)
        console.clock = traffic.start().clock
        _watch((engine, mock), traffic, observer, args.summary_every, console)
    except KeyboardInterrupt:
        console.say("stopping (Ctrl-C again to kill what is left) ...")
    except ChildFailed as failure:
        console.say(f"stopping: {failure}")
        status = 1
    finally:
        status = max(status, _shut_down(traffic, (engine, mock), observer, console))
    return status


def _children(args: argparse.Namespace, state: Path, ehr_url: str) -> tuple[Child, Child]:
    """The mock EHR, and the engine on the demo's database and routes, forwarding to that EHR."""
    mock = Child("mock EHR", [sys.executable, "-m", "engine.cli", "mock-ehr", "--host", HOST, "--port",
                              str(args.ehr_port), "--state", str(state / "mock-ehr.jsonl")],
                 state / "mock-ehr.log", child_env(), ROOT)
    engine = Child("engine", [sys.executable, "-m", "engine.cli", "run"], state / "engine.log", child_env(
        VITALS_DB_URL=f"sqlite:///{state / 'demo.db'}", VITALS_HTTP_HOST=HOST, VITALS_HTTP_PORT=str(args.http_port),
        VITALS_MLLP_HOST=HOST, VITALS_MLLP_PORT=str(args.mllp_port), VITALS_ROUTES=str(ROOT / "demo" / "routes"),
        VITALS_EHR_URL=f"{ehr_url}/ehr", VITALS_NODE_NAME="demo"), ROOT)
    return mock, engine


def _fresh_state(folder: Path) -> Path:
    """The demo's folder with none of its files from an earlier run (other files in it are left alone)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in STATE_FILES:
        (folder / name).unlink(missing_ok=True)
    return folder


def _banner(console: Console, engine_url: str, ehr_url: str, mllp_port: int, state: Path, speed: float) -> None:
    def at(seconds: float) -> str:
        return f"{seconds / speed:.0f} s"

    console.say("\n".join([
        "",
        "VitalsStream demo is running. Open the dashboard:",
        "",
        f"    {engine_url}/",
        "",
        f"  REST API {engine_url}/docs   HL7 over MLLP {HOST}:{mllp_port}   mock EHR {ehr_url}/received",
        f"  data and logs: {state}",
        "  traffic: 5 bedside monitors of 3 vendors and a v2.3 glucometer over MLLP, an EHR charting over SOAP,",
        "           a wearable posting JSON (docs/demo.md)",
        f"  script: tachycardia, desaturation, a slow deterioration (trend alert), a monitor silent after "
        f"{at(SILENT_AFTER_SECONDS)}, the EHR down from {at(EHR_OUTAGE.start)} to {at(EHR_OUTAGE.end)}",
        "  Ctrl-C stops everything.",
        "",
    ]))


def _watch(children: tuple[Child, ...], traffic: Traffic, observer: Observer, every: float,
           console: Console) -> None:
    """Until interrupted: a summary every ``every`` seconds; ChildFailed as soon as a child dies."""
    next_summary = time.monotonic() + every
    while True:
        for child in children:
            if not child.alive:
                raise child.failure("stopped unexpectedly")
        if time.monotonic() >= next_summary:
            console.say(summary_line(traffic.tally.snapshot(), observer.look()))
            next_summary += every
        time.sleep(0.2)


def _shut_down(traffic: Traffic | None, children: tuple[Child, ...], observer: Observer, console: Console) -> int:
    """Senders, then a last summary, then each child in order; 1 when a child did not stop cleanly."""
    forced = threading.Event()

    def force(signum: int, frame: FrameType | None) -> None:
        forced.set()

    signal.signal(signal.SIGINT, force)
    signal.signal(signal.SIGTERM, force)
    if traffic is not None:
        traffic.stop()
        if all(child.alive for child in children):
            console.say(summary_line(traffic.tally.snapshot(), observer.look()))
    observer.close()
    status = 0
    for child in children:
        if not child.alive:  # never started, or its death was reported already
            status = 1 if child.process is not None else status
            continue
        code = child.stop(STOP_TIMEOUT_SECONDS, forced)
        if code != 0:
            console.say(f"the {child.name} did not stop cleanly (exit code {code}); see {child.log_path}")
            status = 1
    console.say("stopped" if status == 0 else "stopped, with errors")
    return status


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    raise SystemExit(main())
