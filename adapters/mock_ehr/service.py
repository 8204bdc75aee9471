"""The mock EHR's SOAP service (Spyne): RecordObservations and RecordAlert, namespace urn:vitalsstream:ehr:1.

Its generated WSDL is the committed contract wsdl/ehr.wsdl (tests/test_mock_ehr.py keeps them equal). The
received log (``state.ReceivedLog``) hangs on the Spyne Application as ``ehr``; each operation records its
request there under the idempotency key and answers the EHR id, ``Duplicate`` when the key was seen before.
Spyne's soft validation enforces the required elements and the key's length; the fixed vocabularies
(severity, alert kind, state) are checked here. Both become Client faults.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

from spyne import Boolean, ComplexModel, DateTime, Double, Integer, ServiceBase, Unicode, rpc
from spyne.model.fault import Fault

from adapters.mock_ehr.state import Answer, ReceivedLog, iso_utc

NS = "urn:vitalsstream:ehr:1"
MAX_KEY = 200
SEVERITIES = ("warning", "critical")
ALERT_KINDS = ("threshold", "trend")
STATES = ("open", "acknowledged", "resolved")

Required = Unicode(min_occurs=1, nillable=False)
RequiredTime = DateTime(min_occurs=1, nillable=False)
Key = Unicode(min_occurs=1, nillable=False, min_len=1, max_len=MAX_KEY, type_name="IdempotencyKeyType",
              __namespace__=NS)
MessageId = Integer(min_occurs=1, nillable=False)
Answered = (Unicode(min_occurs=1, nillable=False), Boolean(min_occurs=1, nillable=False))


class Observation(ComplexModel):
    """One reading in its vital's canonical UCUM unit; ObservedAt in UTC."""

    __namespace__ = NS
    _type_info = [  # noqa: RUF012 - Spyne reads the fields in order from this list
        ("Vital", Required),
        ("Value", Double(min_occurs=1, nillable=False)),
        ("Unit", Unicode),
        ("ObservedAt", RequiredTime),
        ("Status", Unicode),
        ("DeviceId", Unicode),
        ("SourceSystem", Unicode),
        ("SourceCode", Unicode),
        ("Comparator", Unicode),
    ]


class EhrService(ServiceBase):
    """The EHR's results interface."""

    @rpc(Key, Required, MessageId, Unicode, Observation.customize(min_occurs=1, max_occurs="unbounded",
                                                                   nillable=False),
         _returns=Answered, _out_variable_names=("EhrId", "Duplicate"),
         _in_variable_names={"key": "IdempotencyKey", "patient_id": "PatientId", "message_id": "SourceMessageId",
                             "route": "Route", "observations": "Observation"})
    def RecordObservations(ctx, key, patient_id, message_id, route, observations):
        """One source message's readings for one patient."""
        content = {"source_message_id": message_id, "route": route,
                   "readings": [_reading(observation) for observation in observations or ()]}
        return _answer(_log(ctx).record("observations", key, patient_id, content))

    @rpc(Key, Integer(min_occurs=1, nillable=False), Required, Unicode, Required, Required, Required, Required,
         Unicode, Double, RequiredTime, DateTime, Unicode, Integer,
         _returns=Answered, _out_variable_names=("EhrId", "Duplicate"),
         _in_variable_names={"key": "IdempotencyKey", "alert_id": "AlertId", "patient_id": "PatientId",
                             "device_id": "DeviceId", "vital": "Vital", "severity": "Severity",
                             "alert_kind": "Kind", "state": "State", "text": "Text", "value": "Value",
                             "raised_at": "RaisedAt", "resolved_at": "ResolvedAt", "resolved_by": "ResolvedBy",
                             "message_id": "SourceMessageId"})
    def RecordAlert(ctx, key, alert_id, patient_id, device_id, vital, severity, alert_kind, state, text, value,
                    raised_at, resolved_at, resolved_by, message_id):
        """An alert raised, or its new state (resolved)."""
        _one_of("Severity", severity, SEVERITIES)
        _one_of("Kind", alert_kind, ALERT_KINDS)
        _one_of("State", state, STATES)
        content = {"alert_id": alert_id, "device_id": device_id, "vital": vital, "severity": severity,
                   "alert_kind": alert_kind, "state": state, "text": text, "value": value,
                   "raised_at": _time(raised_at), "resolved_at": _time(resolved_at), "resolved_by": resolved_by,
                   "source_message_id": message_id}
        return _answer(_log(ctx).record("alert", key, patient_id, content))


def _log(ctx: Any) -> ReceivedLog:
    return ctx.app.ehr


def _answer(answer: Answer) -> tuple[str, bool]:
    return answer.ehr_id, answer.duplicate


def _reading(observation: Any) -> dict[str, Any]:
    return {"vital": observation.Vital, "value": observation.Value, "unit": observation.Unit,
            "observed_at": _time(observation.ObservedAt), "status": observation.Status,
            "device_id": observation.DeviceId, "source_system": observation.SourceSystem,
            "source_code": observation.SourceCode, "comparator": observation.Comparator}


def _time(moment: datetime | None) -> str | None:
    return iso_utc(moment) if moment is not None else None


def _one_of(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise Fault("Client", f"{name} must be one of {', '.join(allowed)}")
