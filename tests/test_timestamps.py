from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from transforms.hl7.timestamps import format_timestamp, parse_timestamp

UTC = UTC


@pytest.mark.parametrize("text, expected", [
    ("20240305101530", datetime(2024, 3, 5, 10, 15, 30, tzinfo=UTC)),
    ("202403051015", datetime(2024, 3, 5, 10, 15, tzinfo=UTC)),
    ("20240305", datetime(2024, 3, 5, tzinfo=UTC)),
    ("20240305101530.1234", datetime(2024, 3, 5, 10, 15, 30, 123400, tzinfo=UTC)),
    ("20090813095715+0500", datetime(2009, 8, 13, 4, 57, 15, tzinfo=UTC)),
    ("20250101083000-0500", datetime(2025, 1, 1, 13, 30, tzinfo=UTC)),
    ("20240305101530.5-0130", datetime(2024, 3, 5, 11, 45, 30, 500000, tzinfo=UTC)),
])
def test_time_stamps_become_utc(text: str, expected: datetime) -> None:
    assert parse_timestamp(text) == expected


def test_the_routes_zone_applies_without_offset() -> None:
    berlin = ZoneInfo("Europe/Berlin")
    assert parse_timestamp("20240701120000", berlin) == datetime(2024, 7, 1, 10, tzinfo=UTC)
    assert parse_timestamp("20240101120000", berlin) == datetime(2024, 1, 1, 11, tzinfo=UTC)
    assert parse_timestamp("20240701120000+0000", berlin) == datetime(2024, 7, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("text", ["", "2024-03-05", "20241305", "20240230", "202403051", "20240305101530+2500",
                                  "2024030510^M", "20240305 1015"])
def test_invalid_time_stamps_raise(text: str) -> None:
    with pytest.raises(ValueError):
        parse_timestamp(text)


def test_format_timestamp() -> None:
    assert format_timestamp(datetime(2024, 3, 5, 10, 15, 30, tzinfo=UTC)) == "20240305101530+0000"
