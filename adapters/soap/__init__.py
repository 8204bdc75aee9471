"""SOAP server (Spyne) for EHRs and partners, mounted in the FastAPI app through a2wsgi.

``soap_app(store, submit)`` is an ASGI app for ``app.mount("/soap", ...)``:
``/soap/vitals`` speaks SOAP 1.1, ``/soap/vitals12`` SOAP 1.2 (same operations, namespace
urn:vitalsstream:vitals:1); ``/soap/pcd01`` is IHE PCD-01 (CommunicatePCDData, SOAP 1.2, HL7 v2 through the
channel's HL7 path); ``?wsdl`` on each gives its WSDL. See docs/soap.md.

Spyne is imported when the app is built, not when this package is. Spyne 2.14 bundles six 1.14, whose
meta-path importer has no ``find_spec``: Python 3.11 then warns (ImportWarning) on every later import that
misses, in any module of the process. We give that importer six 1.16's ``find_spec`` (the fix six itself
shipped) and silence the warnings of the Spyne import itself, so warnings stay errors in the test suite.
"""
from __future__ import annotations

import sys
import warnings
from collections.abc import Iterable
from importlib.util import spec_from_loader
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adapters.soap.pcd01 import SyncDeliver
    from adapters.sql_store import SqlStore
    from engine.channel import Route

MAX_BODY = 2 * 1024 * 1024


def soap_app(store: SqlStore, submit: SyncDeliver | None = None, max_body: int = MAX_BODY,
             workers: int = 10, pcd01_route: Route | None = None, users: Iterable[tuple[str, str]] = (),
             soap_route: Route | None = None) -> Any:
    """The SOAP endpoints as one ASGI app.

    ``submit`` stores a Submission through the channel and returns its Receipt; it is called from a WSGI
    worker thread, so it must be synchronous and thread-safe (the engine passes a wrapper around its group
    committer). Without one, each submission is stored in a transaction of its own. It receives SOAP
    Submissions and, from PCD-01, HL7 ``Inbound`` messages (both as GroupCommitter.submit takes them).
    ``pcd01_route`` is the route PCD-01 messages take (default ``Route()``, the default MLLP route's behaviour);
    ``soap_route`` the route SubmitVitals submissions take (default: a route named soap).
    ``users`` ((name, password) pairs, ApiSettings.soap_users): none, the endpoints are open; else every
    request but a WSDL GET needs HTTP Basic or a WS-Security UsernameToken (adapters/soap/security.py).
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ImportWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from adapters.soap.app import build
    _modernise_six_importers()
    return build(store, submit, max_body, workers, pcd01_route, users, soap_route)


def _modernise_six_importers() -> None:
    """Add six 1.16's find_spec/create_module/exec_module to a bundled six 1.14 importer (idempotent)."""
    for finder in sys.meta_path:
        kind = type(finder)
        if kind.__name__ == "_SixMetaPathImporter" and "find_spec" not in vars(kind):
            kind.find_spec = _find_spec  # type: ignore[attr-defined]
            kind.create_module = lambda self, spec: self.load_module(spec.name)  # type: ignore[attr-defined]
            kind.exec_module = lambda self, module: None  # type: ignore[attr-defined]


def _find_spec(self: Any, fullname: str, path: object = None, target: object = None) -> Any:
    return spec_from_loader(fullname, self) if fullname in self.known_modules else None
