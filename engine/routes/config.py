"""The route: one file ``routes/NAME.yaml``, from source through transform to destinations.

A minimal route is ``source: {kind: mllp, port: 2575}``; every other key has a default. ``to_route``
turns a validated config into the ``engine.channel.Route`` the channel runs with.
"""
from __future__ import annotations

import re
from typing import Annotated, Literal, Union

from pydantic import AfterValidator, Field, field_validator

from engine.channel import Route
from engine.outbox_rows import OutboxTarget
from engine.routes.base import ConfigModel, broken_rule
from engine.routes.destination import (
    DESTINATION_KINDS,
    EhrSoapDestination,
    NotifyDestination,
    SqlDestination,
)
from engine.routes.housekeeping import DevicesConfig, RetentionConfig
from engine.routes.source import SOURCE_KINDS, MllpSource
from engine.routes.transform import TRANSFORM_KINDS, Hl7OruTransform

_MESSAGE_TYPE = re.compile(r"^[A-Z][A-Z0-9]{2}\^[A-Z0-9]{3}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")

Source = Annotated[Union[SOURCE_KINDS], Field(discriminator="kind")]  # noqa: UP007 (a tuple of kinds)
Transform = Annotated[Union[TRANSFORM_KINDS], Field(discriminator="kind")]  # noqa: UP007
Destination = Annotated[Union[DESTINATION_KINDS], Field(discriminator="kind")]  # noqa: UP007


def _message_type(value: str) -> str:
    if not _MESSAGE_TYPE.match(value):
        raise broken_rule(f"'{value}' is not MSH-9 as MESSAGE^EVENT, like ORU^R01")
    return value


def _name(value: str) -> str:
    if not _NAME.match(value):
        raise broken_rule(f"'{value}' is not a route name (letters, digits, '_', '-', '.'; at most 100)")
    return value


class Accept(ConfigModel):
    """Which messages the route takes; others are answered AR and kept as FILTERED or ERROR."""

    message_types: list[Annotated[str, AfterValidator(_message_type)]] = Field(
        default_factory=lambda: ["ORU^R01"], min_length=1, description="Accepted MSH-9 MESSAGE^EVENT pairs.",
        examples=[["ORU^R01"]])
    sending_applications: list[str] = Field(default_factory=list, description="Accepted MSH-3.1 values; "
                                            "empty accepts any sender.", examples=[["MONITOR_GW"]])
    sending_facilities: list[str] = Field(default_factory=list, description="Accepted MSH-4.1 values; "
                                          "empty accepts any facility.", examples=[["ICU"]])


class RouteConfig(ConfigModel):
    """One route: where messages come from, which are accepted, how they are read, where they go."""

    name: Annotated[str, AfterValidator(_name)] = Field(
        "default", description="Unique route name, stored with every message; defaults to the file name "
        "without .yaml.", examples=["icu"])
    source: Source = Field(description="Where messages come from (kind: mllp, rest or soap).",
                           examples=[{"kind": "mllp", "port": 2575}])
    accept: Accept = Field(default_factory=Accept, description="Message type and sender filters.",
                           examples=[{"message_types": ["ORU^R01"], "sending_facilities": ["ICU"]}])
    transform: Transform = Field(default_factory=lambda: Hl7OruTransform(kind="hl7_oru"),
                                 description="How messages become readings (kind: hl7_oru).",
                                 examples=[{"kind": "hl7_oru", "time_zone": "Europe/Berlin"}])
    validation: Literal["tolerant", "strict"] = Field(
        "tolerant", description="tolerant: our own lenient parse; strict: full HL7 conformance check "
        "(hl7apy) first, non-conforming messages get AE.", examples=["strict"])
    log_phi: bool = Field(False, description="May message content (patient data) appear in logs.",
                          examples=[False])
    destinations: list[Destination] = Field(
        default_factory=lambda: [SqlDestination(kind="sql")], min_length=1,
        description="Where readings and alerts go: sql (the engine's database, always), ehr_soap (the EHR over "
        "SOAP), notify (webhook, Slack, email).",
        examples=[[{"kind": "sql"}, {"kind": "ehr_soap", "name": "ehr", "endpoint": "http://127.0.0.1:8090/ehr"}]])

    @field_validator("destinations")
    @classmethod
    def _stored_once_names_unique(cls, destinations: list[Destination]) -> list[Destination]:
        if sum(1 for item in destinations if isinstance(item, SqlDestination)) != 1:
            raise broken_rule("needs exactly one destination of kind sql: every message is stored in the "
                              "engine's database before it is acknowledged")
        names: set[str] = set()
        for index, item in enumerate(destinations):
            name = getattr(item, "name", None)
            if name is None:
                continue
            if name in names:
                raise broken_rule(f"destination name '{name}' is used twice", at=(index, "name"))
            names.add(name)
        return destinations

    devices: DevicesConfig = Field(
        default_factory=DevicesConfig, description="How often each device of the route must be heard from; a "
        "device silent for longer raises a device_offline incident.",
        examples=[{"expected_interval_seconds": 300, "devices": {"MON-7": 60}}])
    retention: RetentionConfig = Field(default_factory=RetentionConfig, description="How long message "
                                       "content is kept: raw and delivered outbox payloads (readings, alerts and "
                                       "the audit trail stay).",
                                       examples=[{"raw_content_days": 30}])

    def outbox_destinations(self) -> list[EhrSoapDestination | NotifyDestination]:
        """The enabled destinations the outbox delivers to."""
        return [d for d in self.destinations
                if isinstance(d, EhrSoapDestination | NotifyDestination) and d.enabled]

    def to_route(self) -> Route:
        """The runtime route the channel dispatches with."""
        return Route(
            name=self.name,
            oru=self.transform.mapping(),
            message_types=frozenset(tuple(pair.split("^")) for pair in self.accept.message_types),
            sending_applications=frozenset(self.accept.sending_applications),
            sending_facilities=frozenset(self.accept.sending_facilities),
            strict=self.validation == "strict",
            log_phi=self.log_phi,
            original_mode=isinstance(self.source, MllpSource) and self.source.ack_mode == "original",
            outbox=tuple(_target(d) for d in self.outbox_destinations()),
        )


def _target(destination: EhrSoapDestination | NotifyDestination) -> OutboxTarget:
    """What the store transaction needs to know about an outbox destination."""
    if isinstance(destination, EhrSoapDestination):
        return OutboxTarget(destination.name, readings="readings" in destination.send,
                            alerts="alerts" in destination.send)
    return OutboxTarget(destination.name, readings=False, alerts=True, severities=frozenset(destination.severities),
                        suppress_seconds=destination.suppress_minutes * 60)
