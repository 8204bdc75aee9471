import pytest

from transforms.errors import MessageProblems
from transforms.hl7.parser import Delimiters, escape, parse, unescape

MSH = "MSH|^~\\&|APP^FAC-ID^ISO|FAC|||20240101000000||ORU^R01^ORU_R01|C1|P|2.5"


@pytest.mark.parametrize("terminator", ["\r", "\n", "\r\n"])
def test_segments_split_on_cr_lf_and_crlf(terminator: str) -> None:
    message = parse(terminator.join([MSH, "PID|||P1", "OBX|1|NM|8867-4^HR^LN||72"]) + terminator)
    assert [s.name for s in message.segments] == ["MSH", "PID", "OBX"]


def test_msh_fields_are_numbered_as_hl7_numbers_them() -> None:
    msh = parse(MSH).msh
    assert msh.field(1) == "|"
    assert msh.field(2) == "^~\\&"
    assert msh.get(3, 2) == "FAC-ID"
    assert msh.get(9, 1) == "ORU" and msh.get(9, 2) == "R01"
    assert msh.get(10) == "C1"
    assert msh.get(12) == "2.5"
    assert msh.get(40) == ""


def test_delimiters_come_from_msh() -> None:
    message = parse("MSH#*~\\&#APP*X#FAC\rPID###P\\S\\1*** H*MR~P2")
    assert message.delimiters == Delimiters("#", "*", "~", "\\", "&")
    pid = message.segments[1]
    assert pid.get(3) == "P*1"
    assert pid.get(3, 4) == " H"
    assert pid.get(3, repetition=2) == "P2"
    assert pid.repetitions(3) == ["P\\S\\1*** H*MR", "P2"]


def test_segments_know_their_sequence() -> None:
    message = parse("\r".join([MSH, "OBX|1", "NTE|1", "OBX|2"]))
    assert [(s.name, s.sequence) for s in message.segments] == [("MSH", 1), ("OBX", 1), ("NTE", 1), ("OBX", 2)]


def test_framing_bytes_and_blank_lines_are_ignored() -> None:
    message = parse("\x0b" + MSH + "\r\r\nPID|||P1\r\x1c\r")
    assert [s.name for s in message.segments] == ["MSH", "PID"]


@pytest.mark.parametrize("raw, text", [
    ("a\\F\\b", "a|b"),
    ("a\\S\\b\\T\\c\\R\\d\\E\\e", "a^b&c~d\\e"),
    ("\\X41424344\\", "ABCD"),
    ("line\\.br\\two", "line\ntwo"),
    ("\\H\\bold\\N\\", "bold"),
    ("no closing \\F", "no closing \\F"),
    ("plain", "plain"),
])
def test_escape_sequences(raw: str, text: str) -> None:
    assert unescape(raw, Delimiters()) == text


def test_escape_round_trips() -> None:
    text = "a|b^c&d~e\\f"
    assert unescape(escape(text, Delimiters()), Delimiters()) == text


@pytest.mark.parametrize("text", ["", "PID|||1", "MSH|", "MSH|^~|x"])
def test_without_usable_msh_the_problem_is_named(text: str) -> None:
    with pytest.raises(MessageProblems) as caught:
        parse(text)
    assert caught.value.problems[0].location.segment == "MSH"
    assert caught.value.problems[0].code in (100, 101)


def test_a_stored_message_encodes_back_to_what_decodes_to_it() -> None:
    from tests.messages import fixture
    from transforms.hl7.charset import decode, encode

    for name in ("charset_latin1.hl7", "mdc_monitor_lf.hl7", "pcd01_nibp.hl7"):
        text = decode(fixture(name))
        assert decode(encode(text)) == text
    assert encode(decode(fixture("charset_latin1.hl7"))) == fixture("charset_latin1.hl7")
