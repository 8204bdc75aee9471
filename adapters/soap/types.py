"""The SOAP contract's types (namespace urn:vitalsstream:vitals:1).

Inputs are plain strings where a caller can get them wrong (value, time), so the transform, not Spyne, says
what is wrong in plain words (transforms/soap_vitals.py); outputs are typed.
"""
from __future__ import annotations

from spyne import Boolean, ComplexModel, DateTime, Double, Integer, Unicode

NS = "urn:vitalsstream:vitals:1"


class Reading(ComplexModel):
    """One reading as a caller submits it; the unit is UCUM (the vital's canonical unit or one that converts)."""

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
    """A stored reading, in its vital's canonical unit."""

    __namespace__ = NS
    _type_info = [  # noqa: RUF012 - Spyne reads the fields in order from this list
        ("Id", Integer),
        ("MessageId", Integer),
        ("PatientId", Unicode),
        ("DeviceId", Unicode),
        ("Vital", Unicode),
        ("Value", Double),
        ("Unit", Unicode),
        ("Comparator", Unicode),
        ("ObservedAt", DateTime),
        ("SourceValue", Unicode),
        ("SourceUnit", Unicode),
    ]


class Alert(ComplexModel):
    """An alert as the alerts table holds it."""

    __namespace__ = NS
    _type_info = [  # noqa: RUF012 - Spyne reads the fields in order from this list
        ("Id", Integer),
        ("PatientId", Unicode),
        ("DeviceId", Unicode),
        ("Vital", Unicode),
        ("Severity", Unicode),
        ("Kind", Unicode),
        ("State", Unicode),
        ("Message", Unicode),
        ("Value", Double),
        ("LastValue", Double),
        ("Occurrences", Integer),
        ("FirstSeenAt", DateTime),
        ("LastSeenAt", DateTime),
        ("AcknowledgedAt", DateTime),
        ("AcknowledgedBy", Unicode),
        ("ResolvedAt", DateTime),
        ("ResolvedBy", Unicode),
    ]


class SubmitResult(ComplexModel):
    """What SubmitVitals stored: the message, its readings, the alerts they raised or updated."""

    __namespace__ = NS
    _type_info = [  # noqa: RUF012 - Spyne reads the fields in order from this list
        ("MessageId", Integer),
        ("Duplicate", Boolean),
        ("Readings", StoredReading.customize(max_occurs="unbounded")),
        ("Alerts", Alert.customize(max_occurs="unbounded")),
    ]
