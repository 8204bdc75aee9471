"""The format of route tests: ``NAME.test.yaml`` beside ``NAME.yaml``, cases of messages and expectations.

A case sends one message (``message:`` a file, or ``hl7:`` inline text) or several (``messages:``, in
order) through the route into an empty database, then compares the ACK of the last message, and the
readings and alerts of all of them, with what the case expects. Expected readings and alerts name only
the keys that matter; their order does not matter, their number does.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from engine.routes.base import ConfigModel, broken_rule
from engine.routes.source import ExistingFile
from engine.routes.transform import Vital

ACK_CODES = ("AA", "AE", "AR", "CA", "CE", "CR")


@dataclass(frozen=True)
class AckExpectation:
    """``final_only``: only the last ACK's MSA-1 is compared; otherwise the whole list (empty: no ACK)."""

    codes: tuple[str, ...]
    final_only: bool

    def __str__(self) -> str:
        if self.final_only:
            return self.codes[0]
        return f"[{', '.join(self.codes)}]" if self.codes else "none"


def _ack_code(value: Any) -> str:
    if not isinstance(value, str) or value.upper() not in ACK_CODES:
        raise broken_rule(f"'{value}' is not an ACK code (one of: {', '.join(ACK_CODES)})")
    return value.upper()


def _ack(value: Any) -> AckExpectation:
    if isinstance(value, str) and value.strip().lower() == "none":
        return AckExpectation((), False)
    if isinstance(value, str):
        return AckExpectation((_ack_code(value),), True)
    if isinstance(value, list):
        return AckExpectation(tuple(map(_ack_code, value)), False)
    raise broken_rule(f"expected an ACK code (AA), a list of codes ([CA, AA]) or none (got {value})")


Ack = Annotated[AckExpectation, PlainValidator(_ack), WithJsonSchema({"anyOf": [
    {"enum": [*ACK_CODES, "none"]}, {"type": "array", "items": {"enum": list(ACK_CODES)}}]})]


class ExpectedReading(ConfigModel):
    """Keys a stored reading must have; keys left out are not compared."""

    vital: Vital | None = Field(None, description="Vital name.", examples=["bp_systolic"])
    value: float | None = Field(None, description="Value in the canonical unit.", examples=[120])
    unit: str | None = Field(None, description="Canonical UCUM unit.", examples=["mm[Hg]"])
    patient_id: str | None = Field(None, description="PID-3.1.", examples=["789567"])
    device_id: str | None = Field(None, description="OBX-18.1 (or MSH-3.1).", examples=["0123456789ABCDEF"])
    observed_at: datetime | None = Field(None, description="Observation time (UTC when no offset is given).",
                                         examples=["2009-08-13T04:57:15Z"])
    status: str | None = Field(None, description="OBX-11 result status.", examples=["F"])
    source_system: str | None = Field(None, description="Code system stored (LN, MDC, ...).", examples=["MDC"])
    source_code: str | None = Field(None, description="OBX-3.1 as sent.", examples=["150021"])
    source_value: str | None = Field(None, description="OBX-5 as sent.", examples=["120"])
    source_unit: str | None = Field(None, description="OBX-6 as sent.", examples=["266016"])
    control_id: str | None = Field(None, description="MSH-10 of the message it came in.", examples=["MSGID1234"])


class ExpectedAlert(ConfigModel):
    """Keys an alert in the database must have; keys left out are not compared."""

    vital: Vital | None = Field(None, description="Vital name.", examples=["heart_rate"])
    severity: Literal["warning", "critical"] | None = Field(None, description="warning or critical.",
                                                            examples=["critical"])
    kind: Literal["threshold", "trend"] | None = Field(None, description="threshold or trend.",
                                                       examples=["threshold"])
    patient_id: str | None = Field(None, description="PID-3.1.", examples=["W3-2"])
    device_id: str | None = Field(None, description="Device of the reading that raised it.",
                                  examples=["CENTRAL"])
    state: Literal["open", "acknowledged", "resolved"] | None = Field(None, description="Alert state.",
                                                                      examples=["open"])
    value: float | None = Field(None, description="Value of the reading that raised it.", examples=[145])


class RouteTestCase(ConfigModel):
    """One case: messages in, expectations out."""

    name: str = Field(min_length=1, description="What the case shows; unique in its file.",
                      examples=["PCD-01 blood pressure from a monitor"])
    message: ExistingFile | None = Field(None, description="HL7 file to send, relative to the test file.",
                                         examples=["../fixtures/hl7/pcd01_nibp.hl7"])
    messages: list[ExistingFile] | None = Field(None, min_length=1, description="Several HL7 files, sent in "
                                                "order.", examples=[["first.hl7", "second.hl7"]])
    hl7: str | None = Field(None, description="Inline HL7, one segment per line (sent with CR endings).",
                            examples=["MSH|^~\\&|APP|FAC|||20240101120000||ORU^R01|1|P|2.5\nPID|||P-1"])
    ack: Ack | None = Field(None, description="Expected ACK of the last message: its final MSA-1 code (AA), "
                            "every code in order ([CA, AA]), or none.", examples=["AA", ["CA", "AA"], "none"])
    readings: list[ExpectedReading] | None = Field(None, description="Every reading stored, in any order.",
                                                   examples=[[{"vital": "heart_rate", "value": 80}]])
    alerts: list[ExpectedAlert] | None = Field(None, description="Every alert raised, in any order.",
                                               examples=[[{"vital": "heart_rate", "severity": "critical"}]])

    @model_validator(mode="after")
    def _one_input(self) -> RouteTestCase:
        given = [key for key in ("message", "messages", "hl7") if getattr(self, key) is not None]
        if len(given) != 1:
            raise broken_rule("give exactly one of 'message', 'messages' or 'hl7'"
                              + (f" (found {', '.join(given)})" if given else ""))
        return self

    def payloads(self) -> list[bytes]:
        """The messages to send, in order, as bytes."""
        if self.hl7 is not None:
            segments = [line.strip() for line in self.hl7.splitlines() if line.strip()]
            return [("\r".join(segments) + "\r").encode("utf-8")]
        return [path.read_bytes() for path in (self.messages or [self.message])]


class RouteTestFile(ConfigModel):
    """A route test file: the route under test and its cases."""

    route: ExistingFile | None = Field(None, description="Route file under test, relative to this file; "
                                       "default: NAME.yaml for NAME.test.yaml.", examples=["default.yaml"])
    cases: list[RouteTestCase] = Field(min_length=1, description="The cases, run in order, each on an empty "
                                       "database.", examples=[[{"name": "heart rate", "message": "hr.hl7",
                                                                "ack": "AA"}]])

    @field_validator("cases")
    @classmethod
    def _unique_names(cls, cases: list[RouteTestCase]) -> list[RouteTestCase]:
        seen: set[str] = set()
        for index, case in enumerate(cases):
            if case.name in seen:
                raise broken_rule(f"another case is already named '{case.name}'", at=(index, "name"))
            seen.add(case.name)
        return cases
