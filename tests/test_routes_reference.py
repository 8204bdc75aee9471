"""docs/routes-reference.md is generated from the route config models and must match a fresh generation."""
from __future__ import annotations

import difflib
import re
import subprocess
import sys
from pathlib import Path
from typing import Annotated, Any, Literal, Union, get_args

import pytest
from pydantic import AfterValidator, BaseModel, Field, StringConstraints, model_validator

from engine.routes import RouteConfig
from engine.routes.base import ConfigModel, broken_rule
from engine.settings import PROJECT_ROOT
from scripts import routes_reference
from scripts.routes_reference import REFERENCE, WRITE_COMMAND, main, render

SCRIPT = PROJECT_ROOT / "scripts" / "routes_reference.py"


def test_the_reference_matches_a_fresh_generation() -> None:
    current = REFERENCE.read_text(encoding="utf-8") if REFERENCE.is_file() else ""
    fresh = render()
    if current != fresh:
        diff = "".join(list(difflib.unified_diff(current.splitlines(keepends=True), fresh.splitlines(keepends=True),
                                                 "docs/routes-reference.md", "fresh generation"))[:60])
        pytest.fail(f"docs/routes-reference.md is stale: run `{WRITE_COMMAND}`\n{diff}", pytrace=False)


def _models(model: type[BaseModel], seen: dict[type[BaseModel], None]) -> dict[type[BaseModel], None]:
    """Every model below ``model``, found through the annotations (independently of the generator's walk)."""
    seen[model] = None
    for info in model.model_fields.values():
        for inner in _types(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                _models(inner, seen)
    return seen


def _types(annotation: Any) -> list[Any]:
    return [annotation, *(t for arg in get_args(annotation) for t in _types(arg))]


def _section_of(document: str, model: type[BaseModel]) -> str:
    start = document.find(f'<a id="{model.__name__.lower()}"></a>')
    assert start >= 0, f"no section for {model.__name__} in docs/routes-reference.md"
    end = document.find('<a id="', start + 1)
    return document[start:end if end >= 0 else len(document)]


@pytest.mark.parametrize("model", list(_models(RouteConfig, {})), ids=lambda model: model.__name__)
def test_every_key_of_every_model_has_a_row_in_its_section(model: type[BaseModel]) -> None:
    section = _section_of(REFERENCE.read_text(encoding="utf-8"), model)
    for name in model.model_fields:
        assert f"\n| `{name}` |" in section, f"{model.__name__}.{name} is missing from its section"


def test_the_kinds_are_listed_with_a_link_to_their_section() -> None:
    document = render()
    kinds = document[document.index("## Kinds"):document.index('<a id="routeconfig">')]
    for kind, anchor in [("mllp", "mllpsource"), ("rest", "restsource"), ("soap", "soapsource"),
                         ("hl7_oru", "hl7orutransform"), ("sql", "sqldestination"),
                         ("ehr_soap", "ehrsoapdestination"), ("notify", "notifydestination")]:
        assert f"| `{kind}` | [" in kinds and f"](#{anchor}) |" in kinds, kind


def test_the_reference_holds_no_path_of_this_checkout() -> None:
    document = render()
    assert str(PROJECT_ROOT) not in document
    assert "| `wsdl` | path of an existing file, relative to the route file's folder | the installation's " \
           "`wsdl/ehr.wsdl` |" in document


def test_the_command_prints_the_reference_from_any_folder(tmp_path: Path) -> None:
    printed = subprocess.run([sys.executable, str(SCRIPT)], cwd=tmp_path, capture_output=True, timeout=60,
                             check=True)
    assert printed.stdout.decode("utf-8") == render()
    checked = subprocess.run([sys.executable, str(SCRIPT), "--check"], cwd=tmp_path, capture_output=True,
                             timeout=60)
    assert checked.returncode == 0, checked.stderr.decode()


def test_write_and_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                         ) -> None:
    target = tmp_path / "docs" / "routes-reference.md"
    target.parent.mkdir()
    target.write_text("an old reference\n", encoding="utf-8")
    monkeypatch.setattr(routes_reference, "REFERENCE", target)
    assert main(["--check"]) == 1
    assert f"{target} is stale: run {WRITE_COMMAND}" in capsys.readouterr().err
    assert main(["--write"]) == 0
    assert target.read_text(encoding="utf-8") == render()
    assert main(["--check"]) == 0


# --- the rendering, on models made for the test ---------------------------------------------------------

def _positive_even(value: int) -> int:
    if value % 2:
        raise broken_rule("must be even")
    return value


class Fast(ConfigModel):
    """Go fast."""

    kind: Literal["fast"] = Field(description="Kind.", examples=["fast"])
    speed: float = Field(1.5, gt=0, description="How fast.", examples=[2.0])


class Slow(ConfigModel):
    """Go slow."""

    kind: Literal["slow"] = Field(description="Kind.", examples=["slow"])
    lanes: int = Field(2, ge=1, le=64, description="Lanes | used.", examples=[4])


class Limits(ConfigModel):
    """Bounds."""

    low: int = Field(0, ge=0, description="Low.", examples=[1])
    high: int = Field(10, ge=0, description="High.", examples=[9])

    @model_validator(mode="after")
    def _ordered(self) -> Limits:
        if self.high < self.low:
            raise broken_rule(f"must not be below low ({self.low})", at=("high",))
        return self


class Sample(ConfigModel):
    """A sample with ``every`` kind of key."""

    mode: Annotated[Union[Fast, Slow], Field(discriminator="kind")] = Field(  # noqa: UP007
        description="How.", examples=[{"kind": "fast", "speed": 3}])
    tags: list[str] = Field(default_factory=list, min_length=1, description="Tags.", examples=[["a", "b"]])
    level: Literal["low", "high"] = Field("low", description="Level.", examples=["high"])
    limits: Limits = Field(default_factory=Limits, description="Limits.", examples=[{"low": 1}])
    extra: Limits | None = Field(None, description="More limits.", examples=[None])
    by_device: dict[Annotated[str, StringConstraints(min_length=1, max_length=200)], int] = Field(
        default_factory=dict, description="Per device.", examples=[{"MON-7": 60}])
    even: Annotated[int, AfterValidator(_positive_even)] = Field(2, description="Even.", examples=[4])
    file: Path = Field(PROJECT_ROOT / "wsdl" / "ehr.wsdl", description="A file.", examples=["x.wsdl"])


def _row(document: str, model: type[BaseModel], key: str) -> str:
    section = _section_of(document, model)
    return next(line for line in section.splitlines() if line.startswith(f"| `{key}` |"))


@pytest.fixture
def even_in_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(routes_reference.VALIDATOR_WORDS, f"{__name__}._positive_even",
                        routes_reference.Words("even whole number"))


@pytest.mark.usefixtures("even_in_words")
def test_types_defaults_and_examples_in_words() -> None:
    document = render(Sample)
    assert _row(document, Sample, "mode") == ("| `mode` | mapping, chosen by its `kind`: [`fast`](#fast), "
                                              "[`slow`](#slow) | **required** | How. | `{kind: fast, speed: 3}` |")
    assert _row(document, Sample, "tags") == "| `tags` | list of strings (at least one) | `[]` | Tags. | `[a, b]` |"
    assert _row(document, Sample, "level") == "| `level` | one of: `low`, `high` | `low` | Level. | `high` |"
    assert _row(document, Sample, "limits") == ("| `limits` | mapping ([Limits](#limits)) | `{}` (every key at its "
                                                "default) | Limits. | `{low: 1}` |")
    assert _row(document, Sample, "extra") == ("| `extra` | mapping ([Limits](#limits)) | `null` (not set) | "
                                               "More limits. | `null` |")
    assert _row(document, Sample, "by_device") == ("| `by_device` | mapping of keys (string of 1 to 200 characters) "
                                                   "to values (whole number) | `{}` | Per device. | `{MON-7: 60}` |")
    assert _row(document, Sample, "even") == "| `even` | even whole number | `2` | Even. | `4` |"
    assert _row(document, Sample, "file") == ("| `file` | file path | the installation's `wsdl/ehr.wsdl` | A file. | "
                                              "`x.wsdl` |")
    assert _row(document, Fast, "speed") == "| `speed` | number > 0 | `1.5` | How fast. | `2.0` |"
    assert _row(document, Slow, "lanes") == "| `lanes` | whole number from 1 to 64 | `2` | Lanes \\| used. | `4` |"
    assert "A sample with `every` kind of key." in document


@pytest.mark.usefixtures("even_in_words")
def test_sections_come_in_file_order_with_kind_first_and_their_rules() -> None:
    document = render(Sample)
    titles = re.findall(r"^## (.+)$", document, re.MULTILINE)
    assert titles == ["Contents", "Kinds", "Route file (top level)", "`mode` (kind `fast`)", "`mode` (kind `slow`)",
                      "`limits`"]
    assert _section_of(document, Fast).index("| `kind` |") < _section_of(document, Fast).index("| `speed` |")
    assert "- `high`: must not be below low (…)" in _section_of(document, Limits)
    assert "Part of: [Sample](#sample)." in _section_of(document, Limits)


def test_a_validator_without_words_stops_the_generator() -> None:
    with pytest.raises(ValueError, match=r"no words for the validator tests\.test_routes_reference\._positive_even"):
        render(Sample)
