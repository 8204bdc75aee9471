"""The peer in bench/mllp_bench.py: a python-hl7 asyncio MLLP server, as a Python team would start one.

It is python-hl7's own recipe (``hl7.mllp.start_hl7_server``) with a minimal handler: read a message
(``readmessage``, which is ``hl7.parse`` of the decoded block), answer ``message.create_ack()`` (AA) and
store nothing. No validation, no transform, no database, no duplicate check: the floor of MLLP work in
Python, against which the engine's full channel path is compared.

Usage: .venv/bin/python bench/peers/python_hl7_server.py --port PORT [--host 127.0.0.1]
Prints one line ``listening on HOST:PORT`` when it accepts connections; stops cleanly on SIGINT or SIGTERM.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

import hl7
from hl7.mllp import InvalidBlockError, start_hl7_server


async def handle(reader: hl7.mllp.HL7StreamReader, writer: hl7.mllp.HL7StreamWriter) -> None:
    """One connection: every message gets an AA, in order, until the sender leaves."""
    try:
        while not writer.is_closing():
            message = await reader.readmessage()  # hl7.parse(block.decode(encoding))
            writer.writemessage(message.create_ack())
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError, InvalidBlockError, ValueError):
        pass  # the sender left (or sent something that is not MLLP): end this connection only
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await writer.wait_closed()


async def serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    server = await start_hl7_server(handle, host, port, encoding="utf-8")
    async with server:
        print(f"listening on {host}:{server.sockets[0].getsockname()[1]}", flush=True)
        await stop.wait()
    # leaving ``async with`` closed the listener; connections still open end with the process


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True, help="port to listen on (0: any free port)")
    args = parser.parse_args(argv)
    asyncio.run(serve(args.host, args.port))
    return 0


if __name__ == "__main__":
    sys.exit(main())
