"""Acknowledgement rules of HL7 v2.5 chapter 2.9 (see ../shared/HL7-VITALS.md)."""
from datetime import UTC, datetime

import pytest

from transforms.errors import Location, Problem
from transforms.hl7.ack import Outcome, acknowledgement_codes, acknowledgements
from transforms.hl7.header import read_header
from transforms.hl7.parser import parse

NOW = datetime(2024, 3, 5, 10, 0, tzinfo=UTC)
BAD_VALUE = Problem(102, "OBX-5 value 'x' is not numeric", Location("OBX", 2, 5))
DB_DOWN = Problem(207, "the message could not be stored; send it again later")


def header(accept: str = "", application: str = "", version: str = "2.5"):
    message = parse(f"MSH|^~\\&|MON^EUI^X|WARD|EHR|HOSP|20240305||ORU^R01^ORU_R01|CTRL-1|P|{version}|||"
                    f"{accept}|{application}")
    return read_header(message), message.delimiters


@pytest.mark.parametrize("accept, application, outcome, codes", [
    ("", "", "accepted", ["AA"]), ("", "", "error", ["AE"]), ("", "", "rejected", ["AR"]),
    ("NE", "AL", "accepted", ["AA"]), ("NE", "AL", "error", ["AE"]), ("NE", "AL", "rejected", ["AR"]),
    ("AL", "AL", "accepted", ["CA", "AA"]), ("AL", "AL", "error", ["CE"]), ("AL", "AL", "rejected", ["CR"]),
    ("AL", "NE", "accepted", ["CA"]), ("AL", "NE", "error", ["CE"]),
    ("NE", "NE", "accepted", []), ("NE", "NE", "error", []),
    ("ER", "AL", "accepted", ["AA"]), ("ER", "AL", "error", ["CE"]),
    ("SU", "AL", "accepted", ["CA", "AA"]), ("SU", "AL", "error", ["AE"]),
    ("NE", "ER", "accepted", []), ("NE", "ER", "error", ["AE"]),
    ("NE", "SU", "accepted", ["AA"]), ("NE", "SU", "error", []),
    ("AL", "", "accepted", ["CA", "AA"]),
])
def test_original_and_enhanced_mode(accept: str, application: str, outcome: str, codes: list[str]) -> None:
    problems = {"accepted": (), "error": (BAD_VALUE,), "rejected": (DB_DOWN,)}[outcome]
    assert acknowledgement_codes(header(accept, application)[0], Outcome(outcome, problems)) == codes


def test_ack_swaps_sender_and_receiver_and_echoes_control_id() -> None:
    h, d = header()
    [ack] = acknowledgements(h, d, Outcome("accepted"), now=lambda: NOW, new_control_id=lambda: "ACK-9")
    assert ack == ("MSH|^~\\&|EHR|HOSP|MON^EUI^X|WARD|20240305100000+0000||ACK^R01^ACK|ACK-9|P|2.5\r"
                   "MSA|AA|CTRL-1\r")


def test_v25_error_ack_has_err_2_location_err_3_code_and_msa_3() -> None:
    h, d = header()
    [ack] = acknowledgements(h, d, Outcome.from_problems([BAD_VALUE]), now=lambda: NOW,
                             new_control_id=lambda: "A")
    msa, err = ack.split("\r")[1:3]
    assert msa == "MSA|AE|CTRL-1|OBX-5 value 'x' is not numeric"
    assert err == "ERR||OBX^2^5|102^Data type error^HL70357|E||||OBX-5 value 'x' is not numeric"


def test_v23_error_ack_uses_err_1() -> None:
    h, d = header(version="2.3")
    [ack] = acknowledgements(h, d, Outcome.from_problems([BAD_VALUE]), now=lambda: NOW,
                             new_control_id=lambda: "A")
    segments = ack.split("\r")
    assert segments[0].split("|")[8] == "ACK^R01"  # v2.3 MSH-9 has no message structure
    assert segments[2] == "ERR|OBX^2^5^102&Data type error&HL70357"


def test_v27_drops_withdrawn_msa_3() -> None:
    h, d = header(version="2.7")
    [ack] = acknowledgements(h, d, Outcome.from_problems([BAD_VALUE]), now=lambda: NOW,
                             new_control_id=lambda: "A")
    assert ack.split("\r")[1] == "MSA|AE|CTRL-1"


def test_database_down_is_ar_with_207() -> None:
    h, d = header()
    outcome = Outcome.from_problems([DB_DOWN])
    assert outcome.result == "rejected"
    [ack] = acknowledgements(h, d, outcome, now=lambda: NOW, new_control_id=lambda: "A")
    assert "MSA|AR|CTRL-1" in ack and "|207^Application internal error^HL70357|" in ack


def test_duplicate_key_is_a_content_error() -> None:
    assert Outcome.from_problems([Problem(205, "control id reused")]).result == "error"


def test_problem_text_is_escaped() -> None:
    h, d = header()
    problem = Problem(103, "OBX-6 unit 'mm|Hg^x' is not known", Location("OBX", 1, 6))
    [ack] = acknowledgements(h, d, Outcome.from_problems([problem]), now=lambda: NOW,
                             new_control_id=lambda: "A")
    assert "mm\\F\\Hg\\S\\x" in ack
    assert all(segment.count("|") < 12 for segment in ack.split("\r")[1:])
