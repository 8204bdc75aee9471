"""The SOAP peer in bench/http_bench.py: a bare Spyne SubmitVitals service that stores nothing.

The service has the engine's SubmitVitals signature (wsdl/vitals.wsdl: namespace urn:vitalsstream:vitals:1,
document/literal, SOAP 1.1, ``Reading`` 1..n, ``Caller``, ``IdempotencyKey``, answering a ``SubmitResult``).
Spyne parses each request into its Reading objects (the same ``Soap11(validator=None)`` as the engine), the
operation looks at every reading and answers a fixed SubmitResult built once at start-up: MessageId 1,
Duplicate false, six StoredReadings (as many as the benchmark sends, so both sides serialise a response of
the same shape), no alerts. No transform, no validation of values, no database, no duplicate check.

It runs on the engine's HTTP stack: Spyne's WsgiApplication behind a2wsgi's WSGIMiddleware (10 worker
threads, as ``adapters.soap.soap_app``), served by uvicorn with the same defaults as ``vitalsstream run``
(whatever event loop and HTTP parser uvicorn picks in this venv). Spyne and the server share one process, so
the benchmark compares the engine (storage) with the floor of Spyne-over-HTTP work (no storage). It does not
import the engine: the types below are copied from the WSDL.

Usage: .venv/bin/python bench/peers/bare_spyne.py --port PORT [--host 127.0.0.1]
Answers at any path (the benchmark uses /soap/vitals); ``GET ...?wsdl`` gives its WSDL. Stops on SIGINT/SIGTERM.
"""
from __future__ import annotations

import argparse
import logging
import sys
import warnings
from datetime import UTC, datetime

import uvicorn
from a2wsgi import WSGIMiddleware

with warnings.catch_warnings():  # Spyne 2.14 bundles six 1.14 (ImportWarning/DeprecationWarning on import)
    warnings.simplefilter("ignore")
    from spyne import Application, Boolean, ComplexModel, DateTime, Double, Integer, ServiceBase, Unicode, rpc
    from spyne.protocol.soap import Soap11
    from spyne.server.wsgi import WsgiApplication

NS = "urn:vitalsstream:vitals:1"
WORKERS = 10  # a2wsgi worker threads, as adapters.soap.soap_app(workers=10)
FIXED_READINGS = 6  # the benchmark sends six readings per request


class Reading(ComplexModel):
    __namespace__ = NS
    _type_info = [  # noqa: RUF012 - Spyne reads the fields in order from this list
        ("PatientId", Unicode(min_occurs=1)),
        ("DeviceId", Unicode(min_occurs=1)),
        ("Vital", Unicode(min_occurs=1)),
        ("Value", Unicode(min_occurs=1)),
        ("Unit", Unicode),
        ("ObservedAt", Unicode(min_occurs=1)),
    ]


class StoredReading(ComplexModel):
    __namespace__ = NS
    _type_info = [  # noqa: RUF012
        ("Id", Integer), ("MessageId", Integer), ("PatientId", Unicode), ("DeviceId", Unicode),
        ("Vital", Unicode), ("Value", Double), ("Unit", Unicode), ("Comparator", Unicode),
        ("ObservedAt", DateTime), ("SourceValue", Unicode), ("SourceUnit", Unicode),
    ]


class Alert(ComplexModel):
    __namespace__ = NS
    _type_info = [  # noqa: RUF012
        ("Id", Integer), ("PatientId", Unicode), ("DeviceId", Unicode), ("Vital", Unicode),
        ("Severity", Unicode), ("Kind", Unicode), ("State", Unicode), ("Message", Unicode), ("Value", Double),
        ("LastValue", Double), ("Occurrences", Integer), ("FirstSeenAt", DateTime), ("LastSeenAt", DateTime),
        ("AcknowledgedAt", DateTime), ("AcknowledgedBy", Unicode), ("ResolvedAt", DateTime),
        ("ResolvedBy", Unicode),
    ]


class SubmitResult(ComplexModel):
    __namespace__ = NS
    _type_info = [  # noqa: RUF012
        ("MessageId", Integer),
        ("Duplicate", Boolean),
        ("Readings", StoredReading.customize(max_occurs="unbounded")),
        ("Alerts", Alert.customize(max_occurs="unbounded")),
    ]


_OBSERVED = datetime(2025, 3, 14, 6, 0, tzinfo=UTC)
_VITALS = (("heart_rate", 72.0, "/min"), ("spo2", 97.0, "%"), ("temperature", 37.0, "Cel"),
           ("resp_rate", 16.0, "/min"), ("bp_systolic", 120.0, "mm[Hg]"), ("bp_diastolic", 80.0, "mm[Hg]"))
FIXED = SubmitResult(
    MessageId=1, Duplicate=False, Alerts=[],
    Readings=[StoredReading(Id=number, MessageId=1, PatientId="MRN-FIXED", DeviceId="MON-FIXED", Vital=vital,
                            Value=value, Unit=unit, Comparator=None, ObservedAt=_OBSERVED, SourceValue=f"{value:g}",
                            SourceUnit=unit)
              for number, (vital, value, unit) in enumerate(_VITALS[:FIXED_READINGS], 1)])


class VitalsService(ServiceBase):
    """SubmitVitals only, with the engine's signature; everything is parsed, nothing is stored."""

    @rpc(Reading.customize(max_occurs="unbounded"), Unicode, Unicode, _returns=SubmitResult,
         _in_variable_names={"readings": "Reading", "caller": "Caller", "key": "IdempotencyKey"})
    def SubmitVitals(ctx, readings, caller, key):
        for reading in readings or ():  # touch what Spyne parsed, as a handler would
            _ = (reading.PatientId, reading.DeviceId, reading.Vital, reading.Value, reading.Unit, reading.ObservedAt)
        return FIXED


def application() -> WSGIMiddleware:
    """Spyne (SOAP 1.1 in and out, no schema validation, as the engine) behind a2wsgi."""
    logging.getLogger("spyne").setLevel(logging.WARNING)
    spyne_app = Application([VitalsService], tns=NS, name="VitalsService", in_protocol=Soap11(validator=None),
                            out_protocol=Soap11())
    return WSGIMiddleware(WsgiApplication(spyne_app), workers=WORKERS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args(argv)
    # As engine/run.py: uvicorn.Config(app, host, port, log_config=None, lifespan="off"); uvicorn handles
    # SIGINT/SIGTERM itself here (a graceful shutdown).
    server = uvicorn.Server(uvicorn.Config(application(), host=args.host, port=args.port, log_config=None,
                                           lifespan="off"))
    server.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
