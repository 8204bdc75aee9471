"""Transform kinds: how a route turns messages into readings. Today one kind, ``hl7_oru``.

``hl7_oru`` maps HL7 v2 ORU^R01 observations (OBX) to readings with the built-in code tables
(LOINC, IEEE 11073 MDC, UCUM) extended by the route's own codes and unit spellings.
"""
from __future__ import annotations

from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, Field

from engine.routes.base import ConfigModel, broken_rule, did_you_mean
from transforms.codes import DEFAULT_CODES
from transforms.oru import OruMapping
from transforms.vitals import VITALS

UCUM_UNITS = frozenset(DEFAULT_CODES.units.values())


def _vital(name: str) -> str:
    if name not in VITALS:
        raise broken_rule(f"unknown vital '{name}'" + did_you_mean(name, VITALS))
    return name


def _ucum(unit: str) -> str:
    if unit not in UCUM_UNITS:
        raise broken_rule(f"'{unit}' is not a UCUM unit the code tables know" + did_you_mean(unit, UCUM_UNITS))
    return unit


def _time_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise broken_rule(f"unknown time zone '{name}' (IANA names like Europe/Berlin, or UTC)") from None
    return name


Vital = Annotated[str, AfterValidator(_vital)]


class ObservationCode(ConfigModel):
    """One OBX-3 code that names a vital, for instance a vendor's private code."""

    system: str = Field("", description="OBX-3.3 coding system (LN, MDC or the vendor's); empty matches any.",
                        examples=["99PHILIPS"])
    code: str = Field(min_length=1, description="OBX-3.1 identifier as sent.", examples=["0002-4182"])
    vital: Vital = Field(description=f"The vital it is: {', '.join(VITALS)}.", examples=["heart_rate"])


class UnitAlias(ConfigModel):
    """One more spelling of a unit (OBX-6) and the UCUM unit it means."""

    unit: str = Field(min_length=1, description="OBX-6 unit as sent (matched exactly, then ignoring case).",
                      examples=["Schläge/min"])
    ucum: Annotated[str, AfterValidator(_ucum)] = Field(
        description=f"The UCUM unit it means: {', '.join(sorted(UCUM_UNITS))}.", examples=["/min"])


class Hl7OruTransform(ConfigModel):
    """HL7 v2 ORU^R01 observations -> readings, through the code tables."""

    kind: Literal["hl7_oru"] = Field(description="Transform kind.", examples=["hl7_oru"])
    time_zone: Annotated[str, AfterValidator(_time_zone)] = Field(
        "UTC", description="Zone of HL7 time stamps sent without an offset (IANA name).",
        examples=["Europe/Berlin"])
    observation_codes: list[ObservationCode] = Field(
        default_factory=list, description="Codes added to the built-in tables; an entry with a system replaces "
        "the built-in one for that system and code, an entry without one applies where no entry for the sent "
        "system exists.",
        examples=[[{"system": "99PHILIPS", "code": "0002-4182", "vital": "heart_rate"}]])
    units: list[UnitAlias] = Field(default_factory=list, description="Unit spellings added to the built-in "
                                   "table.", examples=[[{"unit": "Schläge/min", "ucum": "/min"}]])

    def mapping(self) -> OruMapping:
        """The runtime mapping: extended code map and time zone."""
        codes = DEFAULT_CODES.extended(
            observations=[(entry.system, entry.code, entry.vital) for entry in self.observation_codes],
            units=[(alias.unit, alias.ucum) for alias in self.units])
        return OruMapping(codes=codes, zone=ZoneInfo(self.time_zone))


TRANSFORM_KINDS = (Hl7OruTransform,)
