"""Our hot-path parser against hl7apy, the reference implementation, on every fixture."""
from pathlib import Path

import pytest
from hl7apy.consts import VALIDATION_LEVEL
from hl7apy.exceptions import ChildNotFound
from hl7apy.parser import parse_message

from tests.messages import FIXTURES
from transforms.hl7.charset import decode
from transforms.hl7.parser import parse

FILES = sorted(FIXTURES.glob("*.hl7")) + sorted(FIXTURES.glob("bad/*.hl7"))
FILES = [p for p in FILES if p.name != "no_msh.hl7"]  # hl7apy needs an MSH too


def segments_of(text: str) -> list[str]:
    return [line for line in text.replace("\r\n", "\r").replace("\n", "\r").split("\r") if line]


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_same_segments_fields_and_values(path: Path) -> None:
    text = decode(path.read_bytes())
    ours = parse(text)
    theirs = parse_message("\r".join(segments_of(text)), find_groups=False,
                           validation_level=VALIDATION_LEVEL.TOLERANT)
    sep = ours.delimiters.field
    assert [s.name for s in ours.segments] == [s.name.upper() for s in theirs.children]
    for mine, reference in zip(ours.segments, theirs.children, strict=True):
        rebuilt = sep.join(["MSH", *(mine.field(n) for n in range(2, len(mine) + 1))]) if mine.name == "MSH" \
            else sep.join([mine.name, *(mine.field(n) for n in range(1, len(mine) + 1))])
        expected = reference.to_er7().rstrip(sep)
        # hl7apy does not know the hex escape \Xhh\ and writes its escape character back escaped.
        expected = expected.replace("\\E\\X41\\E\\", "\\X41\\")
        assert rebuilt.rstrip(sep) == expected
    for number, obx in enumerate(s for s in ours.segments if s.name == "OBX"):
        reference = theirs.children.get("OBX")[number]
        for field in (3, 5, 6, 11, 14, 18):
            try:
                element = getattr(reference, f"obx_{field}")
            except ChildNotFound:  # OBX-18 came with v2.4
                continue
            value = element.to_er7() if element else ""
            assert obx.field(field) == value.replace("\\E\\X41\\E\\", "\\X41\\"), (path.name, field)
