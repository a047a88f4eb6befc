"""`kcc check --format sarif` (SARIF 2.1.0) and `--werror`."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kcc.diagnostics import Diagnostic, Label
from kcc.explain import all_codes
from kcc.sarif import artifact_uri, render_sarif, rule_description
from kcc.source import Origin, SourceFile

from .conftest import REPO

TWO_QUOTES = """\
loadmodule “sl.so”
loadmodule “pv.so”
request_route {
    exit;
}
"""

# preprocessor warnings only (W0114 `#!undef` of an unknown name, W0115 text after
# `#!ifdef NAME`): the config is otherwise clean, so the exit code is --werror's business
WARNINGS_ONLY = """\
#!undef NOT_DEFINED
#!ifdef WITH_X extra words
#!endif
loadmodule "sl.so"
request_route {
    sl_send_reply("404", "Not Found");
    exit;
}
"""

CLEAN = """\
loadmodule "sl.so"
request_route {
    sl_send_reply("404", "Not Found");
    exit;
}
"""


def kcc(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kcc", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def sarif_schema() -> dict[str, Any]:
    """The parts of the OASIS SARIF 2.1.0 schema that kcc's logs use.

    Transcribed from the specification (sections 3.13 sarifLog, 3.14 run, 3.18 tool,
    3.19 toolComponent, 3.27 result, 3.11 message, 3.28 location, 3.29
    physicalLocation, 3.4 artifactLocation, 3.30 region, 3.49 reportingDescriptor):
    required properties, types, enums and minimums, with no extra properties allowed
    where kcc writes the object, so a typo in a property name fails too.
    """
    message = {
        "type": "object",
        "properties": {"text": {"type": "string"}, "id": {"type": "string"}},
        "anyOf": [{"required": ["text"]}, {"required": ["id"]}],
    }
    region = {
        "type": "object",
        "properties": {
            "startLine": {"type": "integer", "minimum": 1},
            "startColumn": {"type": "integer", "minimum": 1},
            "endLine": {"type": "integer", "minimum": 1},
            "endColumn": {"type": "integer", "minimum": 1},
        },
        "additionalProperties": False,
    }
    location = {
        "type": "object",
        "properties": {
            "id": {"type": "integer", "minimum": -1},
            "message": message,
            "physicalLocation": {
                "type": "object",
                "properties": {
                    "artifactLocation": {
                        "type": "object",
                        "properties": {
                            "uri": {"type": "string", "format": "uri-reference"},
                            "uriBaseId": {"type": "string"},
                        },
                        "additionalProperties": False,
                    },
                    "region": region,
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }
    multiformat = {
        "type": "object",
        "required": ["text"],
        "properties": {"text": {"type": "string"}, "markdown": {"type": "string"}},
    }
    rule = {
        "type": "object",
        "required": ["id"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "shortDescription": multiformat,
            "fullDescription": multiformat,
            "help": multiformat,
            "helpUri": {"type": "string", "format": "uri"},
            "defaultConfiguration": {
                "type": "object",
                "properties": {"level": {"enum": ["none", "note", "warning", "error"]}},
            },
            "properties": {"type": "object"},
        },
        "additionalProperties": False,
    }
    result = {
        "type": "object",
        "required": ["message"],
        "properties": {
            "ruleId": {"type": "string"},
            "ruleIndex": {"type": "integer", "minimum": -1},
            "level": {"enum": ["none", "note", "warning", "error"]},
            "message": message,
            "locations": {"type": "array", "items": location},
            "relatedLocations": {"type": "array", "items": location},
            "properties": {"type": "object"},
        },
        "additionalProperties": False,
    }
    return {
        "$schema": "http://json-schema.org/draft-04/schema#",
        "type": "object",
        "required": ["version", "runs"],
        "properties": {
            "$schema": {"type": "string", "format": "uri"},
            "version": {"enum": ["2.1.0"]},
            "runs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["tool"],
                    "properties": {
                        "tool": {
                            "type": "object",
                            "required": ["driver"],
                            "properties": {
                                "driver": {
                                    "type": "object",
                                    "required": ["name"],
                                    "properties": {
                                        "name": {"type": "string"},
                                        "version": {"type": "string"},
                                        "semanticVersion": {"type": "string"},
                                        "informationUri": {"type": "string", "format": "uri"},
                                        "rules": {"type": "array", "items": rule},
                                    },
                                }
                            },
                        },
                        "results": {"type": "array", "items": result},
                        "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                        "originalUriBaseIds": {"type": "object"},
                    },
                },
            },
        },
        "additionalProperties": False,
    }


def assert_valid_sarif(log: dict[str, Any]) -> None:
    import jsonschema

    validator = jsonschema.Draft4Validator(
        sarif_schema(), format_checker=jsonschema.Draft4Validator.FORMAT_CHECKER
    )
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors)


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# -- the renderer, on hand-made diagnostics ------------------------------------------


@pytest.fixture
def diagnostics(tmp_path: Path) -> list[Diagnostic]:
    text = 'route(RELAY);\nt_on_failure("FAIL");\n#!define X "a"\n'
    source = SourceFile(str(tmp_path / "sub dir" / "a.cfg"), text)
    route_span = source.span(6, 11)  # RELAY
    failure_span = source.span(28, 32)  # FAIL
    define_site = source.span(14, 26)
    expanded = source.span(47, 50, Origin("define", "X", define_site, source.span(45, 46)))
    return [
        Diagnostic.error(
            "E0301",
            "unknown route `RELAY`",
            route_span,
            "no `route[RELAY]` block",
            labels=[Label(failure_span, "the failure route named here")],
            help="did you mean `RELAY2`?",
        ),
        Diagnostic.warning("W0306", "route `X` calls itself", expanded, "recursive call"),
        Diagnostic.error("E0303", "module loaded twice", None, notes=["no span at all"]),
    ]


def test_sarif_log_structure(tmp_path: Path, diagnostics: list[Diagnostic]) -> None:
    log = json.loads(render_sarif(diagnostics, base=tmp_path))
    assert log["version"] == "2.1.0"
    assert log["$schema"] == "https://json.schemastore.org/sarif-2.1.0.json"
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "kcc"
    assert run["columnKind"] == "unicodeCodePoints"
    # one rule per code present, sorted; results keep the order given
    assert [r["id"] for r in driver["rules"]] == ["E0301", "E0303", "W0306"]
    assert [r["ruleId"] for r in run["results"]] == ["E0301", "W0306", "E0303"]
    assert [r["ruleIndex"] for r in run["results"]] == [0, 2, 1]
    assert [r["level"] for r in run["results"]] == ["error", "warning", "error"]
    assert [r["defaultConfiguration"]["level"] for r in driver["rules"]] == [
        "error",
        "error",
        "warning",
    ]

    first = run["results"][0]
    assert first["message"]["text"] == "unknown route `RELAY`\nhelp: did you mean `RELAY2`?"
    [location] = first["locations"]
    assert location["message"] == {"text": "no `route[RELAY]` block"}
    assert location["physicalLocation"] == {
        "artifactLocation": {"uri": "sub%20dir/a.cfg"},
        "region": {"startLine": 1, "startColumn": 7, "endLine": 1, "endColumn": 12},
    }
    assert first["relatedLocations"] == [
        {
            "id": 0,
            "physicalLocation": {
                "artifactLocation": {"uri": "sub%20dir/a.cfg"},
                "region": {"startLine": 2, "startColumn": 15, "endLine": 2, "endColumn": 19},
            },
            "message": {"text": "the failure route named here"},
        }
    ]

    # a span from a define expansion points at the use site, with the origin as a note
    second = run["results"][1]
    region = second["locations"][0]["physicalLocation"]["region"]
    assert (region["startLine"], region["startColumn"], region["endColumn"]) == (2, 1, 13)
    assert second["message"]["text"] == (
        "route `X` calls itself\nnote: expanded from `X`, defined at "
        f"{tmp_path / 'sub dir' / 'a.cfg'}:3:10"
    )

    # no span: no locations (SARIF allows a result without one)
    third = run["results"][2]
    assert "locations" not in third
    assert third["message"]["text"] == "module loaded twice\nnote: no span at all"


def test_sarif_rules_use_the_explain_pages(tmp_path: Path, diagnostics: list[Diagnostic]) -> None:
    rules = json.loads(render_sarif(diagnostics[:1], base=tmp_path))["runs"][0]["tool"]["driver"][
        "rules"
    ]
    code = "E0103"  # a page the foundation wrote, so this test does not wait for others
    page_rules = json.loads(
        render_sarif([Diagnostic.error(code, "typographic quote", None)], base=tmp_path)
    )["runs"][0]["tool"]["driver"]["rules"]
    assert page_rules[0]["shortDescription"] == {"text": all_codes()[code]}
    description = page_rules[0]["fullDescription"]["text"]
    assert description == rule_description(code)
    assert description.startswith("The config language only knows the straight quotes")
    assert "\n" not in description
    assert "## Example" not in description
    assert all("helpUri" not in rule for rule in rules + page_rules)


def test_rule_description_of_unknown_code_is_empty() -> None:
    assert rule_description("E9999") == ""


def test_sarif_validates_against_the_schema(tmp_path: Path, diagnostics: list[Diagnostic]) -> None:
    assert_valid_sarif(json.loads(render_sarif(diagnostics, base=tmp_path)))
    assert_valid_sarif(json.loads(render_sarif([], base=tmp_path)))


def test_schema_validation_catches_a_broken_log(
    tmp_path: Path, diagnostics: list[Diagnostic]
) -> None:
    import jsonschema

    log = json.loads(render_sarif(diagnostics, base=tmp_path))
    log["runs"][0]["results"][0]["level"] = "fatal"  # not a SARIF level
    with pytest.raises(AssertionError, match="level"):
        assert_valid_sarif(log)
    del log["version"]
    assert not jsonschema.Draft4Validator(sarif_schema()).is_valid(log)


def test_artifact_uri(tmp_path: Path) -> None:
    inside = tmp_path / "cfg" / "kamailio.cfg"
    assert artifact_uri(str(inside), tmp_path) == "cfg/kamailio.cfg"
    assert artifact_uri(str(tmp_path / "a#b.cfg"), tmp_path) == "a%23b.cfg"
    outside = tmp_path.parent / "elsewhere.cfg"
    assert artifact_uri(str(outside), tmp_path) == outside.as_uri()
    assert artifact_uri("<command-line>", tmp_path) is None


# -- the command line ----------------------------------------------------------------


def test_check_sarif_on_a_broken_config(tmp_path: Path) -> None:
    write(tmp_path, "quotes.cfg", TWO_QUOTES)
    result = kcc("check", "--format", "sarif", "quotes.cfg", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr == ""
    log = json.loads(result.stdout)
    assert_valid_sarif(log)
    [run] = log["runs"]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["E0103"]
    [res] = run["results"]  # the two quoted strings are one coalesced error
    assert res["ruleId"] == "E0103"
    assert res["level"] == "error"
    assert res["message"]["text"].startswith('typographic quote in place of `"`\n')
    assert res["locations"][0]["physicalLocation"] == {
        "artifactLocation": {"uri": "quotes.cfg"},
        "region": {"startLine": 1, "startColumn": 12, "endLine": 1, "endColumn": 19},
    }
    [related] = res["relatedLocations"]
    assert related["message"] == {"text": "here too"}
    assert related["physicalLocation"]["region"]["startLine"] == 2


def test_check_sarif_uri_is_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "etc").mkdir()
    cfg = write(tmp_path / "etc", "quotes.cfg", TWO_QUOTES)
    log = json.loads(kcc("check", "--format", "sarif", str(cfg), cwd=tmp_path).stdout)
    uri = log["runs"][0]["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert uri == {"uri": "etc/quotes.cfg"}


def test_check_sarif_clean_config(tmp_path: Path) -> None:
    write(tmp_path, "clean.cfg", CLEAN)
    result = kcc("check", "--format", "sarif", "clean.cfg", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    log = json.loads(result.stdout)
    assert_valid_sarif(log)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []


def test_werror_turns_warnings_into_a_failing_exit(tmp_path: Path) -> None:
    write(tmp_path, "warn.cfg", WARNINGS_ONLY)
    plain = kcc("check", "warn.cfg", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "warning[W0114]" in plain.stderr
    assert plain.stderr.rstrip().endswith("warn.cfg: 2 warnings")

    strict = kcc("check", "--werror", "warn.cfg", cwd=tmp_path)
    assert strict.returncode == 1
    assert strict.stderr.rstrip().endswith(
        "warn.cfg: 2 warnings (warnings treated as errors: --werror)"
    )
    # the diagnostics themselves stay warnings
    assert "warning[W0114]" in strict.stderr
    assert "error[" not in strict.stderr

    sarif = kcc("check", "--werror", "--format", "sarif", "warn.cfg", cwd=tmp_path)
    assert sarif.returncode == 1
    results = json.loads(sarif.stdout)["runs"][0]["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("W0114", "warning"),
        ("W0115", "warning"),
    ]


def test_werror_on_a_clean_config_and_on_errors(tmp_path: Path) -> None:
    write(tmp_path, "clean.cfg", CLEAN)
    clean = kcc("check", "--werror", "clean.cfg", cwd=tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert clean.stderr == ""
    write(tmp_path, "quotes.cfg", TWO_QUOTES)
    broken = kcc("check", "--werror", "quotes.cfg", cwd=tmp_path)
    assert broken.returncode == 1
    assert broken.stderr.rstrip().endswith("quotes.cfg: 1 error")
    assert "--werror" not in broken.stderr
