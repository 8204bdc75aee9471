"""The Spyne service: SubmitVitals through the channel, readings and alerts, acknowledge and resolve.

Dependencies (the store, the synchronous submit callable) hang on the Spyne Application as ``vitals``
(a ``Deps``); each operation finds them through ``ctx.app``. Every failure becomes a fault in plain words:
our mistakes in the request are Client faults, our own failures (database down) Server faults.
"""
from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spyne import DateTime, Integer, Iterable, ServiceBase, Unicode, rpc
from spyne.model.fault import Fault
from sqlalchemy.exc import SQLAlchemyError

from adapters.soap import rows
from adapters.soap.types import Alert, Reading, StoredReading, SubmitResult
from adapters.sql_store import SqlStore, utc_naive
from engine.channel import Receipt, Route, Submission
from engine.operator_actions import ActionRefused, change_alert_state
from transforms.soap_vitals import SoapInputError, readings_from_soap

log = logging.getLogger("vitalsstream.soap")
SyncSubmit = Callable[[Submission], Receipt]
UNAVAILABLE = "the service cannot reach its database; send the request again later"
STATES = ("open", "acknowledged", "resolved")
SEVERITIES = ("warning", "critical")
MAX_TEXT = 200


@dataclass(frozen=True)
class Deps:
    store: SqlStore
    submit: SyncSubmit
    route: Route  # the route SubmitVitals submissions take


def client_fault(text: str) -> Fault:
    return Fault("Client", text)


def server_fault(text: str = UNAVAILABLE) -> Fault:
    return Fault("Server", text)


def guarded(operation: Callable[..., Any], ctx: Any, *args: Any) -> Any:
    """Run an operation: faults pass; a database failure is a Server fault; anything else a Server fault
    without details (never a traceback, never request content in the log)."""
    try:
        return operation(ctx, *args)
    except Fault:
        raise
    except (SQLAlchemyError, OSError) as error:
        log.error("SOAP operation failed: store unavailable",
                  extra={"operation": operation.__name__, "error": type(error).__name__})
        raise server_fault() from None
    except Exception as error:
        log.error("SOAP operation failed", extra={"operation": operation.__name__, "error": type(error).__name__})
        raise server_fault("the request could not be processed because of an internal error") from None


def _deps(ctx: Any) -> Deps:
    return ctx.app.vitals


def _limit(limit: int | None) -> int:
    if limit is None:
        return 100
    if not 1 <= limit <= rows.MAX_LIMIT:
        raise client_fault(f"Limit must be between 1 and {rows.MAX_LIMIT}")
    return int(limit)


def _short(name: str, value: str | None) -> str | None:
    value = value.strip() if value else None
    if value and len(value) > MAX_TEXT:
        raise client_fault(f"{name} is longer than {MAX_TEXT} characters")
    return value or None


class VitalsService(ServiceBase):
    """VitalsStream's SOAP operations."""

    @rpc(Reading.customize(max_occurs="unbounded"), Unicode, Unicode, _returns=SubmitResult,
         _in_variable_names={"readings": "Reading", "caller": "Caller", "key": "IdempotencyKey"})
    def SubmitVitals(ctx, readings, caller, key):
        """Store readings through the channel (one transaction with alert evaluation); answered after commit."""
        return guarded(_submit_vitals, ctx, readings, caller, key)

    @rpc(Unicode, Unicode, DateTime, DateTime, Integer, _returns=Iterable(StoredReading),
         _in_variable_names={"patient_id": "PatientId", "device_id": "DeviceId", "since": "From",
                             "until": "To", "limit": "Limit"})
    def GetReadings(ctx, patient_id, device_id, since, until, limit):
        """Readings of a patient or a device, newest observed first; From inclusive, To exclusive."""
        return guarded(_get_readings, ctx, patient_id, device_id, since, until, limit)

    @rpc(Unicode, Unicode, Unicode, Integer, _returns=Iterable(Alert),
         _in_variable_names={"patient_id": "PatientId", "state": "State", "severity": "Severity",
                             "limit": "Limit"})
    def GetAlerts(ctx, patient_id, state, severity, limit):
        """Alerts, most recently seen first, by patient, state (open, acknowledged, resolved), severity."""
        return guarded(_get_alerts, ctx, patient_id, state, severity, limit)

    @rpc(Integer(min_occurs=1), Unicode(min_occurs=1), _returns=Alert,
         _in_variable_names={"alert_id": "AlertId", "by": "By"})
    def AcknowledgeAlert(ctx, alert_id, by):
        """Open -> acknowledged, recording who and when."""
        return guarded(_acknowledge_alert, ctx, alert_id, by)

    @rpc(Integer(min_occurs=1), Unicode(min_occurs=1), _returns=Alert,
         _in_variable_names={"alert_id": "AlertId", "by": "By"})
    def ResolveAlert(ctx, alert_id, by):
        """Open or acknowledged -> resolved, recording who and when."""
        return guarded(_resolve_alert, ctx, alert_id, by)


def _submit_vitals(ctx: Any, readings: Any, caller: Any, key: Any) -> Any:
    caller, key = _short("Caller", caller) or "soap", _short("IdempotencyKey", key) or uuid.uuid4().hex
    items = [{"patient_id": r.PatientId, "device_id": r.DeviceId, "vital": r.Vital, "value": r.Value,
              "unit": r.Unit, "observed_at": r.ObservedAt} for r in readings or ()]
    try:
        mapped = readings_from_soap(items, key)
    except SoapInputError as error:
        raise client_fault(str(error)) from None
    env = ctx.transport.req_env
    raw = env.get("asgi.scope", {}).get("vitalsstream.body", b"")
    receipt = _deps(ctx).submit(Submission(raw, _deps(ctx).route, "SOAP", caller, key, mapped,
                                           f"{env.get('REMOTE_ADDR', '')}:{env.get('REMOTE_PORT', '')}"))
    if receipt.message_id is None:
        raise server_fault("the readings could not be stored; send them again later")
    if receipt.status != "STORED":
        raise client_fault(f"IdempotencyKey {key!r} was already used for another request")
    stored, alerts = rows.stored(_deps(ctx).store, receipt.message_id)
    return SubmitResult(MessageId=receipt.message_id, Duplicate=receipt.duplicate, Readings=stored,
                        Alerts=alerts)


def _get_readings(ctx: Any, patient_id: Any, device_id: Any, since: Any, until: Any, limit: Any) -> Any:
    patient_id, device_id = _short("PatientId", patient_id), _short("DeviceId", device_id)
    if not patient_id and not device_id:
        raise client_fault("give a PatientId or a DeviceId")
    since, until = (utc_naive(moment) if moment is not None else None for moment in (since, until))
    if since is not None and until is not None and since >= until:
        raise client_fault("From must be earlier than To")
    return rows.find_readings(_deps(ctx).store, patient_id, device_id, since, until, _limit(limit))


def _get_alerts(ctx: Any, patient_id: Any, state: Any, severity: Any, limit: Any) -> Any:
    state, severity = _short("State", state), _short("Severity", severity)
    if state and state not in STATES:
        raise client_fault(f"State must be one of {', '.join(STATES)}")
    if severity and severity not in SEVERITIES:
        raise client_fault(f"Severity must be one of {', '.join(SEVERITIES)}")
    return rows.find_alerts(_deps(ctx).store, _short("PatientId", patient_id), state, severity, _limit(limit))


def _acknowledge_alert(ctx: Any, alert_id: Any, by: Any) -> Any:
    return _change(ctx, alert_id, "acknowledge", by)


def _resolve_alert(ctx: Any, alert_id: Any, by: Any) -> Any:
    return _change(ctx, alert_id, "resolve", by)


def _change(ctx: Any, alert_id: int | None, action: str, by: str | None) -> Alert:
    """engine.operator_actions.change_alert_state: a guarded UPDATE, so of two racing callers one wins."""
    by = by.strip() if by else ""
    if not by or len(by) > 100:
        raise client_fault("By must name who acts (1 to 100 characters)")
    if alert_id is None or not 1 <= alert_id <= 2**63 - 1:
        raise client_fault("AlertId must be a positive alert id")
    store = _deps(ctx).store
    try:
        change_alert_state(store, alert_id, action, by)
    except ActionRefused as refused:
        raise client_fault(str(refused)) from None
    return rows.alert_by_id(store, alert_id)

