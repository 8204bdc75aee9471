"""The EHR sender: outbox records to the hospital EHR over SOAP 1.1 (zeep), per wsdl/ehr.wsdl.

``EhrSoapSender(...).send(kind, key, payload)`` maps the payload (transforms/ehr_request.py), calls
RecordObservations or RecordAlert with the idempotency key, and returns the EHR's id (``EhrId``). Failures
become ``DeliveryFailed`` (adapters/delivery.py), classified once here (docs/ehr.md):

- transient: SOAP Server faults, timeouts, connection errors, HTTP 5xx without a fault, HTTP 408 and 429,
  answers that are no valid SOAP response;
- permanent: SOAP Client faults (``Client``, ``soap:Client``, ``Client.Something``, SOAP 1.2 ``Sender``,
  also VersionMismatch and MustUnderstand), other HTTP 4xx and 3xx (redirects are not followed), payloads
  that cannot make a valid request.
Reasons carry the fault code and fault string (trimmed) or the HTTP status, never the payload.

zeep as production code should use it: the WSDL is read from disk (never the network), strict parsing,
no DTDs, entities or external references, no huge trees, a timeout on every call (zeep's default is none),
no envelope logging unless ``log_envelopes`` (zeep's transport logs whole envelopes at DEBUG: ours does
not). zeep does not promise that one client may serve concurrent calls, nor does requests for one Session,
so each thread gets its own client, transport and Session, built lazily around the one parsed WSDL
document (read-only once loaded: zeep resolves the schema at load, and its per-type caches are locked
``functools.cached_property``). ``close`` closes every Session.
"""
from __future__ import annotations

import logging
import re
import threading
from pathlib import Path
from typing import Any

import requests
import zeep
from zeep.exceptions import Error as ZeepError
from zeep.exceptions import Fault, TransportError, ValidationError
from zeep.transports import Transport
from zeep.wsdl import Document
from zeep.wsse.username import UsernameToken

from adapters.delivery import DeliveryFailed
from transforms.ehr_request import RequestError, request_for

log = logging.getLogger("vitalsstream.ehr")
envelope_log = logging.getLogger("vitalsstream.ehr.envelopes")

BINDING = "{urn:vitalsstream:ehr:1}EhrService"
MAX_REASON = 200
PERMANENT_FAULTS = frozenset({"Client", "Sender", "VersionMismatch", "MustUnderstand", "DataEncodingUnknown"})
TRANSIENT_STATUSES = frozenset({408, 429})
BAD_ADDRESS = (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema, requests.exceptions.InvalidSchema)


def zeep_settings() -> zeep.Settings:
    return zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True,
                         xml_huge_tree=False)


def load_contract(wsdl_path: str | Path, settings: zeep.Settings) -> Document:
    """The parsed WSDL from a local file; the bytes are read here, so no URL is ever fetched for it."""
    path = Path(wsdl_path).resolve()
    loader = Transport()
    try:
        with path.open("rb") as wsdl:
            return Document(wsdl, loader, base=str(path), settings=settings)
    finally:
        loader.session.close()


class EhrSoapSender:
    """A Sender for one EHR destination, shared by the outbox's worker threads."""

    def __init__(self, wsdl_path: str | Path, endpoint: str | None = None, timeout_seconds: float = 10.0,
                 username: str | None = None, password: str | None = None, log_envelopes: bool = False,
                 use_digest: bool = False, ca_bundle: str | None = None):
        """``endpoint`` overrides the WSDL's address; ``username``/``password`` add a WS-Security
        UsernameToken (``use_digest``: PasswordDigest, else PasswordText, which needs TLS); ``ca_bundle``: a
        CA file for TLS to the EHR (default: the system's)."""
        if (username is None) != (password is None):
            raise ValueError("give both a user name and a password for WS-Security, or neither")
        if timeout_seconds <= 0:
            raise ValueError("timeout_seconds must be positive")
        self.endpoint = endpoint
        self.timeout_seconds = timeout_seconds
        self.log_envelopes = log_envelopes
        self.ca_bundle = ca_bundle
        self._settings = zeep_settings()
        self._document = load_contract(wsdl_path, self._settings)
        if BINDING not in self._document.bindings:
            raise ValueError(f"{wsdl_path} has no binding {BINDING}: is it the EHR contract?")
        self._wsse = UsernameToken(username, password, use_digest=use_digest) if username is not None else None
        self._local = threading.local()
        self._sessions: dict[threading.Thread, requests.Session] = {}
        self._lock = threading.Lock()
        self._closed = False

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        try:
            operation, request = request_for(kind, key, payload)
        except RequestError as error:
            raise DeliveryFailed(str(error), permanent=True) from None
        service = self._service()
        try:
            answer = service[operation](**request)
        except (ZeepError, requests.exceptions.RequestException) as error:
            raise classify(error, self.timeout_seconds) from None
        ehr_id = getattr(answer, "EhrId", None)
        if not isinstance(ehr_id, str) or not ehr_id:
            raise DeliveryFailed(f"the EHR's {operation} answer has no EhrId")
        if getattr(answer, "Duplicate", False):
            log.info("the EHR already had record %s (answered %s again)", key, ehr_id)
        return ehr_id

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    def _service(self) -> Any:
        if self._closed:
            raise DeliveryFailed("the EHR sender is closed")
        service = getattr(self._local, "service", None)
        if service is None:
            service = self._local.service = self._new_service()
        return service

    def _new_service(self) -> Any:
        """This thread's client, on its own Session; Sessions of threads that ended are closed."""
        session = requests.Session()
        if self.ca_bundle:
            session.verify = self.ca_bundle
        transport = EhrTransport(session, self.timeout_seconds, self.log_envelopes)
        client = zeep.Client(self._document, wsse=self._wsse, transport=transport, settings=self._settings)
        service = client.create_service(BINDING, self.endpoint) if self.endpoint else client.service
        with self._lock:
            if self._closed:
                session.close()
                raise DeliveryFailed("the EHR sender is closed")
            for thread in [thread for thread in self._sessions if not thread.is_alive()]:
                self._sessions.pop(thread).close()
            self._sessions[threading.current_thread()] = session
        return service


class EhrTransport(Transport):
    """zeep's Transport without its envelope logging, without file:// URLs and without redirects."""

    def __init__(self, session: requests.Session, timeout_seconds: float, log_envelopes: bool):
        super().__init__(timeout=timeout_seconds, operation_timeout=timeout_seconds, session=session)
        session.adapters.pop("file://", None)  # zeep mounts a file adapter on every session it is given
        self.logger = envelope_log
        self.log_envelopes = log_envelopes

    def post(self, address: str, message: bytes | str, headers: dict[str, str]) -> requests.Response:
        if self.log_envelopes:
            envelope_log.debug("EHR request to %s:\n%s", address, _text(message))
        response = self.session.post(address, data=message, headers=headers, timeout=self.operation_timeout,
                                     allow_redirects=False)
        if self.log_envelopes:
            envelope_log.debug("EHR answer (HTTP %d):\n%s", response.status_code, _text(response.content))
        return response


def classify(error: ZeepError | requests.exceptions.RequestException, timeout_seconds: float) -> DeliveryFailed:
    """One failed call as a DeliveryFailed (the table in the module docstring). Other exceptions are bugs
    and propagate (the outbox counts them as transient)."""
    if isinstance(error, Fault):
        code = error.code or ""
        permanent = fault_kind(code) in PERMANENT_FAULTS
        return DeliveryFailed(_trim(f"SOAP fault {code or '(no code)'}: {error.message or ''}"), permanent)
    if isinstance(error, TransportError):
        return _http_failure(error.status_code)
    if isinstance(error, requests.exceptions.Timeout):
        return DeliveryFailed(f"the EHR did not answer within {timeout_seconds:g} s")
    if isinstance(error, BAD_ADDRESS):
        return DeliveryFailed(_trim(f"the EHR endpoint is not a usable address ({type(error).__name__})"), True)
    if isinstance(error, requests.exceptions.RequestException):
        return DeliveryFailed(_trim(f"could not reach the EHR ({type(error).__name__}: {error})"))
    if isinstance(error, ValidationError):
        path = ".".join(str(part) for part in error.path)
        return DeliveryFailed(f"the request does not fit the EHR contract (at {path or 'the top'})", True)
    return DeliveryFailed(f"the EHR's answer is no valid SOAP response ({type(error).__name__})")


def fault_kind(code: str) -> str:
    """``soap11env:Client.Auth`` -> ``Client``; ``{http://...}Sender`` -> ``Sender``."""
    local = re.split(r"[:}]", code.strip())[-1]
    return local.split(".")[0]


def _http_failure(status: int) -> DeliveryFailed:
    if status in TRANSIENT_STATUSES or status >= 500:
        return DeliveryFailed(f"the EHR answered HTTP {status} without a SOAP fault")
    if 300 <= status < 500:
        return DeliveryFailed(f"the EHR answered HTTP {status} without a SOAP fault", permanent=True)
    return DeliveryFailed(f"the EHR's answer (HTTP {status}) is no valid SOAP response")


def _trim(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 3] + "..."


def _text(data: bytes | str) -> str:
    return data.decode("utf-8", "replace") if isinstance(data, bytes) else data
