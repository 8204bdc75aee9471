"""Code maps: which observation codes are which vital, which unit texts are which UCUM unit.

These are data, not logic. A route extends them with a vendor's own codes (for instance Philips MDIL
``0002-4182^HR``) without touching code: ``DEFAULT_CODES.extended(observations=..., units=...)``.
Tables follow ../shared/HL7-VITALS.md (LOINC, IEEE 11073-10101 MDC, UCUM).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

# OBX-3.3 coding system names seen in the wild -> the one we store.
CODE_SYSTEMS = {"LN": "LN", "LNC": "LN", "LOINC": "LN", "MDC": "MDC", "IEEE11073": "MDC", "ISO11073": "MDC"}

_LOINC = {
    "8867-4": "heart_rate",
    "59408-5": "spo2",
    "2708-6": "spo2",
    "8310-5": "temperature",
    "9279-1": "resp_rate",
    "8480-6": "bp_systolic",
    "8462-4": "bp_diastolic",
    "8478-0": "bp_mean",
    "2339-0": "glucose",
    "41653-7": "glucose",
    "2345-7": "glucose",
    "15074-8": "glucose",
    "14743-9": "glucose",
    "14749-6": "glucose",
}

# IEEE 11073-10101 context-free codes (partition x 65536 + term code).
_MDC = {
    "147842": "heart_rate",  # MDC_ECG_HEART_RATE
    "149514": "pulse_rate",  # MDC_PULS_RATE
    "149530": "pulse_rate",  # MDC_PULS_OXIM_PULS_RATE (from SpO2)
    "149546": "pulse_rate",  # MDC_PULS_RATE_NON_INV (from NIBP)
    "149522": "pulse_rate",  # MDC_BLD_PULS_RATE_INV (invasive)
    "150456": "spo2",  # MDC_PULS_OXIM_SAT_O2
    "150324": "spo2",  # MDC_SAT_O2 (SaO2)
    "150344": "temperature",  # MDC_TEMP
    "150364": "temperature",  # body
    "150368": "temperature",  # core
    "150388": "temperature",  # skin
    "150392": "temperature",  # tympanic
    "188420": "temperature",  # rectal
    "188424": "temperature",  # oral
    "188428": "temperature",  # ear
    "188452": "temperature",  # axilla
    "188456": "temperature",  # GI tract
    "151562": "resp_rate",  # MDC_RESP_RATE
    "151570": "resp_rate",  # airway
    "151578": "resp_rate",  # impedance (thoracic)
    "151594": "resp_rate",  # CO2
    "151658": "resp_rate",  # pleth
    "150021": "bp_systolic",  # MDC_PRESS_BLD_NONINV_SYS
    "150301": "bp_systolic",  # MDC_PRESS_CUFF_SYS
    "150033": "bp_systolic",  # MDC_PRESS_BLD_ART_SYS
    "150037": "bp_systolic",  # MDC_PRESS_BLD_ART_ABP_SYS
    "150017": "bp_systolic",  # MDC_PRESS_BLD_SYS (generic)
    "150022": "bp_diastolic",
    "150302": "bp_diastolic",
    "150034": "bp_diastolic",
    "150038": "bp_diastolic",
    "150018": "bp_diastolic",
    "150023": "bp_mean",
    "150303": "bp_mean",
    "150035": "bp_mean",
    "150039": "bp_mean",
    "150019": "bp_mean",
    "160020": "glucose",
    "160184": "glucose",
    "160188": "glucose",
    "160192": "glucose",
    "160196": "glucose",
    "160200": "glucose",
    "160204": "glucose",
    "160212": "glucose",
    # Reference ids, for senders that put the refid where the code belongs.
    "MDC_ECG_HEART_RATE": "heart_rate",
    "MDC_PULS_RATE": "pulse_rate",
    "MDC_PULS_OXIM_PULS_RATE": "pulse_rate",
    "MDC_PULS_OXIM_SAT_O2": "spo2",
    "MDC_RESP_RATE": "resp_rate",
    "MDC_PRESS_BLD_NONINV_SYS": "bp_systolic",
    "MDC_PRESS_BLD_NONINV_DIA": "bp_diastolic",
    "MDC_PRESS_BLD_NONINV_MEAN": "bp_mean",
}

# Unit as written (UCUM, free text, MDC code or reference id) -> UCUM.
_UNITS = {
    "/min": "/min", "1/min": "/min", "{beats}/min": "/min", "{beat}/min": "/min", "bpm": "/min",
    "beats/min": "/min", "b/min": "/min", "{breaths}/min": "/min", "breaths/min": "/min", "br/min": "/min",
    "rpm": "/min", "/m": "/min",
    "%": "%", "percent": "%", "%{saturation}": "%",
    "Cel": "Cel", "C": "Cel", "°C": "Cel", "degC": "Cel", "deg C": "Cel",
    "[degF]": "[degF]", "F": "[degF]", "°F": "[degF]", "degF": "[degF]", "deg F": "[degF]",
    "mm[Hg]": "mm[Hg]", "mmHg": "mm[Hg]", "mm Hg": "mm[Hg]",
    "kPa": "kPa",
    "mg/dL": "mg/dL", "mmol/L": "mmol/L",
    # IEEE 11073-10101 dimension codes and their reference ids.
    "262688": "%", "MDC_DIM_PERCENT": "%",
    "264864": "/min", "MDC_DIM_BEAT_PER_MIN": "/min",
    "264928": "/min", "MDC_DIM_RESP_PER_MIN": "/min",
    "266016": "mm[Hg]", "MDC_DIM_MMHG": "mm[Hg]",
    "265987": "kPa", "MDC_DIM_KILO_PASCAL": "kPa",
    "268192": "Cel", "MDC_DIM_DEGC": "Cel",
    "266560": "[degF]", "MDC_DIM_FAHR": "[degF]",
    "264274": "mg/dL", "MDC_DIM_MILLI_G_PER_DL": "mg/dL",
    "266866": "mmol/L", "MDC_DIM_MILLI_MOLE_PER_L": "mmol/L",
}

# (from, to) -> (factor, offset): canonical = value * factor + offset.
CONVERSIONS: Mapping[tuple[str, str], tuple[float, float]] = MappingProxyType({
    ("[degF]", "Cel"): (5 / 9, -32 * 5 / 9),
    ("kPa", "mm[Hg]"): (7.50062, 0.0),
    ("mg/dL", "mmol/L"): (1 / 18.016, 0.0),
})


Identified = tuple[str | None, str, str]  # (vital or None, code system as stored, code)
IDENTIFIERS_REMEMBERED = 4096  # distinct observation identifiers a code map remembers its answer for


def convert(value: float, unit: str, canonical: str) -> float | None:
    """``value`` in ``unit`` expressed in ``canonical``; None when the units do not convert."""
    if unit == canonical:
        return value
    rule = CONVERSIONS.get((unit, canonical))
    if rule is None:
        return None
    factor, offset = rule
    return round(value * factor + offset, 2)


@dataclass(frozen=True)
class CodeMap:
    """Observation codes -> vital names, unit texts -> UCUM. Immutable; ``extended`` makes a new one."""

    observations: Mapping[tuple[str, str], str]
    units: Mapping[str, str]
    _units_folded: Mapping[str, str] = field(init=False, repr=False, compare=False)
    # identify()'s answers by identifier as sent: monitors repeat a few dozen identifiers in every message.
    _identified: dict[tuple[str, ...], Identified] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        folded = {text.casefold(): ucum for text, ucum in self.units.items()}
        object.__setattr__(self, "_units_folded", folded)
        object.__setattr__(self, "_identified", {})

    def __reduce__(self) -> tuple[type[CodeMap], tuple[dict[tuple[str, str], str], dict[str, str]]]:
        """Pickled as plain dicts (read-only views do not pickle): routes travel to the store process."""
        return CodeMap, (dict(self.observations), dict(self.units))

    def vital(self, system: str, code: str) -> str | None:
        """The vital an OBX-3 identifier names, or None when it is not a vital we store.

        ``system`` is OBX-3.3 as sent; a route's entries with an empty system match any system.
        """
        code = code.strip()
        system = CODE_SYSTEMS.get(system.strip().upper(), system.strip())
        return self.observations.get((system, code)) or self.observations.get(("", code))

    def identify(self, identifier: Sequence[str]) -> Identified:
        """(vital, system, code) of an observation identifier as sent (the components of OBX-3): the
        identifier (components 1-3) first, then the alternate identifier (4-6); a vital of None when neither
        names one we store. An MDC code may come as its reference id in the text component."""
        key = tuple(identifier)
        known = self._identified.get(key)
        if known is None:
            if len(self._identified) >= IDENTIFIERS_REMEMBERED:  # a sender inventing codes: start again
                self._identified.clear()
            known = self._identified[key] = self._identify(key + ("",) * 6)
        return known

    def _identify(self, parts: tuple[str, ...]) -> Identified:
        for code, text, system in ((parts[0], parts[1], parts[2]), (parts[3], parts[4], parts[5])):
            if not code and not text:
                continue
            vital = self.vital(system, code) or (self.vital(system, text) if text.startswith("MDC_") else None)
            if vital:
                return vital, system.strip(), code.strip()
        return None, parts[2].strip(), parts[0].strip()

    def ucum(self, text: str) -> str | None:
        """UCUM for a unit as written: exact first, then ignoring case."""
        text = text.strip()
        return self.units.get(text) or self._units_folded.get(text.casefold())

    def extended(self, observations: Iterable[tuple[str, str, str]] = (),
                 units: Iterable[tuple[str, str]] = ()) -> CodeMap:
        """A new map with extra (system, code, vital) and (unit text, UCUM) entries taking precedence."""
        more = {(CODE_SYSTEMS.get(s.upper(), s), c): v for s, c, v in observations}
        return CodeMap({**self.observations, **more}, {**self.units, **dict(units)})


DEFAULT_CODES = CodeMap(
    MappingProxyType({**{("LN", c): v for c, v in _LOINC.items()}, **{("MDC", c): v for c, v in _MDC.items()}}),
    MappingProxyType(_UNITS),
)
