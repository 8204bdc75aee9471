"""Route files: loading with positions, interpolation, every error at once, the runtime route they become."""
from __future__ import annotations

import shutil
import ssl
import subprocess
import textwrap
from pathlib import Path
from typing import Any, get_args
from zoneinfo import ZoneInfo

import pytest
from pydantic import BaseModel

from engine.routes import ConfigError, RouteConfig, RouteConfigError, check_routes, load_route_file, load_routes
from engine.routes.cases import RouteTestFile
from engine.routes.interpolation import InterpolationError, interpolate

ROUTES = Path(__file__).resolve().parent.parent / "routes"


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return folder


def lines(errors: list[ConfigError], folder: Path) -> list[str]:
    return [str(error).replace(f"{folder}/", "") for error in errors]


# --- the shipped routes ------------------------------------------------------------------------------------

def test_shipped_routes_check_clean() -> None:
    assert check_routes(ROUTES, env={}) == []


def test_shipped_default_route_listens_on_loopback_2575_unless_the_environment_says_otherwise() -> None:
    default, rest, soap = load_routes(ROUTES, env={})
    assert (default.name, default.source.host, default.source.port) == ("default", "127.0.0.1", 2575)
    assert (rest.name, rest.source.kind, soap.name, soap.source.kind) == ("rest", "rest", "soap", "soap")
    moved, _, _ = load_routes(ROUTES, env={"VITALS_MLLP_HOST": "0.0.0.0", "VITALS_MLLP_PORT": "12575"})
    assert (moved.source.host, moved.source.port) == ("0.0.0.0", 12575)


def test_the_shipped_default_is_the_channels_default_route() -> None:
    route = load_route_file(ROUTES / "default.yaml", env={}).to_route()
    assert (route.name, route.message_types, route.sending_applications, route.sending_facilities) == (
        "default", frozenset({("ORU", "R01")}), frozenset(), frozenset())
    assert (route.strict, route.log_phi, route.original_mode, route.oru.zone) == (False, False, False,
                                                                                 ZoneInfo("UTC"))


# --- every field documents itself (docs are generated from the models) ------------------------------------

def _models(model: type[BaseModel], seen: set[type[BaseModel]]) -> set[type[BaseModel]]:
    seen.add(model)
    for info in model.model_fields.values():
        for inner in _types(info.annotation):
            if isinstance(inner, type) and issubclass(inner, BaseModel) and inner not in seen:
                _models(inner, seen)
    return seen


def _types(annotation: Any) -> list[Any]:
    return [annotation, *(t for arg in get_args(annotation) for t in _types(arg))]


@pytest.mark.parametrize("model", sorted(_models(RouteConfig, set()) | _models(RouteTestFile, set()),
                                         key=lambda m: m.__name__), ids=lambda m: m.__name__)
def test_every_field_has_a_description_and_an_example_and_unknown_keys_are_refused(model: type[BaseModel]) -> None:
    assert model.model_config.get("extra") == "forbid"
    for name, info in model.model_fields.items():
        assert info.description, f"{model.__name__}.{name} has no description"
        assert info.examples, f"{model.__name__}.{name} has no example"


# --- a minimal route and its defaults ---------------------------------------------------------------------

def test_a_minimal_route_is_a_source_and_takes_its_name_from_the_file(tmp_path: Path) -> None:
    write(tmp_path, {"icu.yaml": "source: {kind: mllp, port: 2576}\n"})
    (icu,) = load_routes(tmp_path, env={})
    assert (icu.name, icu.source.host, icu.source.port, icu.source.tls) == ("icu", "127.0.0.1", 2576, None)
    assert (icu.validation, icu.log_phi, icu.source.ack_mode) == ("tolerant", False, "as_requested")
    assert icu.accept.message_types == ["ORU^R01"]
    assert [d.kind for d in icu.destinations] == ["sql"]
    limits = icu.source.mllp_limits()
    assert (limits.max_frame_bytes, limits.read_timeout, limits.idle_timeout, limits.max_connections,
            limits.write_timeout) == (1048576, 30, 600, 200, 30)
    assert icu.source.ssl_context() is None


def test_route_tests_are_not_routes(tmp_path: Path) -> None:
    write(tmp_path, {"icu.yaml": "source: {kind: mllp, port: 2576}\n", "icu.test.yaml": "cases: nonsense\n"})
    assert [route.name for route in load_routes(tmp_path, env={})] == ["icu"]


def test_an_empty_or_missing_folder_is_an_error(tmp_path: Path) -> None:
    assert lines(check_routes(tmp_path, env={}), tmp_path) == [f"{tmp_path}: no route files (*.yaml)"]
    assert lines(check_routes(tmp_path / "nowhere", env={}), tmp_path) == ["nowhere: no such folder"]


# --- to_route ------------------------------------------------------------------------------------------------

def test_to_route_carries_filters_code_map_zone_and_switches(tmp_path: Path) -> None:
    write(tmp_path, {"philips.yaml": """
        name: philips-icu
        source: {kind: mllp, port: 2577, ack_mode: original}
        accept:
          message_types: ["ORU^R01", "ORU^R30"]
          sending_applications: [MONITOR_GW]
          sending_facilities: [ICU, 4711]
        transform:
          kind: hl7_oru
          time_zone: Europe/Berlin
          observation_codes:
            - {system: 99PHILIPS, code: "0002-4182", vital: heart_rate}
            - {code: 150456, vital: pulse_rate}
            - {code: 0002, vital: spo2}  # YAML 1.1 would read 0002 as octal 2
          units: [{unit: "Schläge/min", ucum: /min}]
        validation: strict
        log_phi: true
        """})
    route = load_route_file(tmp_path / "philips.yaml", env={}).to_route()
    assert route.name == "philips-icu"
    assert route.message_types == frozenset({("ORU", "R01"), ("ORU", "R30")})
    assert (route.sending_applications, route.sending_facilities) == (frozenset({"MONITOR_GW"}),
                                                                      frozenset({"ICU", "4711"}))
    assert (route.strict, route.log_phi, route.original_mode) == (True, True, True)
    assert route.oru.zone == ZoneInfo("Europe/Berlin")
    codes = route.oru.codes
    assert codes.vital("99PHILIPS", "0002-4182") == "heart_rate"
    assert codes.vital("MDC", "150456") == "spo2"  # the built-in table still wins for its own system
    assert codes.vital("OTHER", "150456") == "pulse_rate"  # an empty system matches any other system
    assert codes.ucum("schläge/min") == "/min"
    assert codes.vital("LN", "8867-4") == "heart_rate"  # built-in codes are kept
    assert codes.vital("X", "0002") == "spo2"


def test_tls_paths_are_relative_to_the_route_file(tmp_path: Path) -> None:
    write(tmp_path, {"secure.yaml": """
        source:
          kind: mllp
          tls: {cert: tls/vitals.crt, key: /etc/vitals/vitals.key, client_ca: ca.pem, require_client_cert: true}
        """})
    tls = load_route_file(tmp_path / "secure.yaml", env={}).source.tls
    assert tls is not None
    assert (tls.cert, tls.key, tls.client_ca) == (tmp_path / "tls/vitals.crt", Path("/etc/vitals/vitals.key"),
                                                  tmp_path / "ca.pem")


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_tls_settings_become_the_listeners_ssl_context(tmp_path: Path) -> None:
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                    "-keyout", "vitals.key", "-out", "vitals.crt", "-days", "2", "-subj", "/CN=vitals"],
                   cwd=tmp_path, check=True, capture_output=True)
    write(tmp_path, {"secure.yaml": """
        source:
          kind: mllp
          tls: {cert: vitals.crt, key: vitals.key, client_ca: vitals.crt, require_client_cert: true}
          limits: {handshake_timeout_seconds: 3}
        """})
    source = load_route_file(tmp_path / "secure.yaml", env={}).source
    context = source.ssl_context()
    assert context is not None
    assert (context.verify_mode, context.minimum_version) == (ssl.CERT_REQUIRED, ssl.TLSVersion.TLSv1_2)
    assert source.mllp_limits().handshake_timeout == 3


# --- interpolation ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "env", "expected"), [
    ("${PORT}", {"PORT": "2575"}, "2575"),
    ("${PORT:-2575}", {}, "2575"),
    ("${PORT:-2575}", {"PORT": ""}, "2575"),  # empty counts as unset, as in a shell
    ("${PORT:-2575}", {"PORT": "3000"}, "3000"),
    ("${EMPTY}", {"EMPTY": ""}, ""),
    ("mllp://${HOST:-localhost}:${PORT:-2575}/x", {"HOST": "h"}, "mllp://h:2575/x"),
    ("${GREETING:-hello: world}}", {}, "hello: world}"),  # the default ends at the first }
    ("$${PORT} costs $5 and $$", {}, "${PORT} costs $5 and $$"),
    ("${URL:-http://a/b?c=d}", {}, "http://a/b?c=d"),
    ("no references", {}, "no references"),
    ("${EHR:+true}", {"EHR": "http://ehr"}, "true"),
    ("${EHR:+true}", {"EHR": ""}, ""),
    ("${EHR:+true}", {}, ""),
])
def test_interpolation(text: str, env: dict[str, str], expected: str) -> None:
    assert interpolate(text, env) == expected


@pytest.mark.parametrize(("text", "message"), [
    ("${MISSING}", "environment variable MISSING is not set (write ${MISSING:-default} to give a default)"),
    ("${MISSING", "'${' without a closing '}' (write '$${' for a literal '${')"),
    ("${1X}", "'${1X}' is not ${NAME}, ${NAME:-default} or ${NAME:+word}"),
    ("${X-default}", "'${X-default}' is not ${NAME}, ${NAME:-default} or ${NAME:+word}"),
])
def test_interpolation_errors(text: str, message: str) -> None:
    with pytest.raises(InterpolationError) as raised:
        interpolate(text, {})
    assert str(raised.value) == message


def test_interpolated_values_are_read_as_the_schema_expects(tmp_path: Path) -> None:
    write(tmp_path, {"icu.yaml": """
        name: ${ROUTE_NAME:-icu}
        source: {kind: mllp, port: "${PORT}", host: '${HOST:-0.0.0.0}'}
        log_phi: ${LOG_PHI:-false}
        accept: {sending_facilities: ["$${literal}"]}
        """})
    (icu,) = load_routes(tmp_path, env={"PORT": "2599", "LOG_PHI": "true"})
    assert (icu.name, icu.source.port, icu.source.host, icu.log_phi) == ("icu", 2599, "0.0.0.0", True)
    assert icu.accept.sending_facilities == ["${literal}"]


# --- broken files: exact file:line:column: path: message -----------------------------------------------------

BROKEN = [
    pytest.param("""
        source:
          kind: mllp
          prot: 2575
        """, ["icu.yaml:3:3: source.prot: unknown key 'prot' - did you mean 'port'?"], id="unknown-key-suggestion"),
    pytest.param("""
        source: {kind: mllp}
        colour: blue
        """, ["icu.yaml:2:1: colour: unknown key 'colour' (known keys: accept, destinations, devices, "
              "log_phi, name, retention, source, transform, validation)"], id="unknown-key-without-near-miss"),
    pytest.param("""
        source:
          kind: mllp
          port: twenty-five
          limits: {max_connections: many, read_timeout_seconds: 0}
        log_phi: maybe
        """, ["icu.yaml:3:9: source.port: expected a whole number (got 'twenty-five')",
              "icu.yaml:4:29: source.limits.max_connections: expected a whole number (got 'many')",
              "icu.yaml:4:57: source.limits.read_timeout_seconds: must be greater than 0 (got 0)",
              "icu.yaml:5:10: log_phi: expected true or false (got 'maybe')"], id="wrong-types-and-limits"),
    pytest.param("""
        source: {kind: mllp, port: 70000}
        """, ["icu.yaml:1:28: source.port: must be less than or equal to 65535 (got 70000)"], id="port-range"),
    pytest.param("""
        source: {kind: mllp}
        transform:
          kind: hl7_oru
          time_zone: Europe/Atlantis
        """, ["icu.yaml:4:14: transform.time_zone: unknown time zone 'Europe/Atlantis' (IANA names like "
              "Europe/Berlin, or UTC)"], id="bad-time-zone"),
    pytest.param("""
        source: {kind: mllp}
        transform:
          kind: hl7_oru
          observation_codes:
            - {code: "0002-4182", vital: heart_rat}
            - {code: "0002-4bb8", vital: oxygen}
          units:
            - {unit: "Schläge/min", ucum: bpm}
        """, ["icu.yaml:5:34: transform.observation_codes[0].vital: unknown vital 'heart_rat' - did you mean "
              "'heart_rate'?",
              "icu.yaml:6:34: transform.observation_codes[1].vital: unknown vital 'oxygen' (one of: bp_diastolic, "
              "bp_mean, bp_systolic, glucose, heart_rate, pulse_rate, resp_rate, spo2, temperature)",
              "icu.yaml:8:35: transform.units[0].ucum: 'bpm' is not a UCUM unit the code tables know (one of: "
              "%, /min, Cel, [degF], kPa, mg/dL, mm[Hg], mmol/L)"], id="unknown-vital-and-unit"),
    pytest.param("""
        source: {kind: mllp}
        accept:
          message_types: ["ORU^R01", ORU_R01, "oru^r01"]
        """, ["icu.yaml:3:30: accept.message_types[1]: 'ORU_R01' is not MSH-9 as MESSAGE^EVENT, like ORU^R01",
              "icu.yaml:3:39: accept.message_types[2]: 'oru^r01' is not MSH-9 as MESSAGE^EVENT, like ORU^R01"],
                 id="bad-message-type-format"),
    pytest.param("""
        source:
          kind: mllp
          port: ${ICU_MLLP_PORT}
        """, ["icu.yaml:3:9: source.port: environment variable ICU_MLLP_PORT is not set (write "
              "${ICU_MLLP_PORT:-default} to give a default)"], id="missing-env-var"),
    pytest.param("""
        source:
          kind: mllp
           port: 2575
        """, ["icu.yaml:3:8: YAML syntax: mapping values are not allowed here"], id="yaml-syntax"),
    pytest.param("""
        source: {kind: mllp, port: [2575}
        """, ["icu.yaml:1:33: YAML syntax: while parsing a flow sequence expected ',' or ']', but got '}'"],
                 id="yaml-syntax-flow"),
    pytest.param("""
        source: {kind: mllp, port: ${PORT:-2575}}
        """, ["icu.yaml:1:29: YAML syntax: while parsing a flow mapping expected ',' or '}', but got '{' (inside "
              "{...} or [...], quote values that use ${...}: port: \"${PORT}\")"], id="unquoted-reference-in-flow"),
    pytest.param("""
        source:
          kind: mllp
          tls:
            cert: tls/vitals.crt
            require_client_cert: true
        """, ["icu.yaml:4:5: source.tls.key: required when 'cert' is given (the certificate's private key)",
              "icu.yaml:5:26: source.tls.require_client_cert: needs 'client_ca', the CA that signs the client "
              "certificates"], id="tls-cert-without-key"),
    pytest.param("""
        source: {kind: fhir, port: 8080}
        destinations: [{kind: sql}, {}]
        """, ["icu.yaml:1:16: source.kind: unknown kind 'fhir' (one of: mllp, rest, soap)",
              "icu.yaml:2:29: destinations[1].kind: required key is missing (one of: sql, ehr_soap, notify)"],
                 id="unknown-kinds"),
    pytest.param("""
        source: {kind: mllp}
        destinations:
          - {kind: ehr_soap, name: ehr, endpoint: "ftp://ehr", username: me}
          - {kind: notify, name: pager, slack: {url: "https://hooks.example/x"}, webhook: {url: "http://h/y"}}
          - {kind: notify, name: ehr, email: {host: smtp, sender: nobody, to: []}, severities: [info]}
        """, ["icu.yaml:3:5: destinations[0].password: username and password go together (WS-Security "
              "UsernameToken)",
              "icu.yaml:3:43: destinations[0].endpoint: 'ftp://ehr' is not an http:// or https:// URL",
              "icu.yaml:4:5: destinations[1]: needs exactly one of webhook, slack, email (found: webhook, slack)",
              "icu.yaml:5:59: destinations[2].email.sender: 'nobody' is not an email address",
              "icu.yaml:5:71: destinations[2].email.to: must not be empty",
              "icu.yaml:5:89: destinations[2].severities[0]: must be 'warning' or 'critical' (got 'info')"],
                 id="outbox-destinations"),
    pytest.param("""
        source: {kind: mllp}
        destinations:
          - {kind: ehr_soap, name: ehr}
          - {kind: notify, name: ehr, webhook: {url: "http://h/y"}}
        """, ["icu.yaml:3:3: destinations: needs exactly one destination of kind sql: every message is stored in "
              "the engine's database before it is acknowledged"], id="no-sql-destination"),
    pytest.param("""
        source: {kind: mllp}
        destinations:
          - {kind: sql}
          - {kind: ehr_soap, name: ehr}
          - {kind: notify, name: ehr, webhook: {url: "http://h/y"}}
        """, ["icu.yaml:5:26: destinations[2].name: destination name 'ehr' is used twice"], id="destination-twice"),
    pytest.param("""
        source: {kind: mllp}
        destinations:
          - {kind: sql}
          - {kind: ehr_soap, name: ehr, wsdl: missing.wsdl}
          - {kind: notify, name: m1, email: {host: smtp, security: none, sender: a@b.org, to: [c@d.org],
                                               username: u, password: p}}
          - {kind: notify, name: m2, email: {host: smtp, sender: a@b.org, to: [c@d.org], username: u}}
        """, ["icu.yaml:4:39: destinations[1].wsdl: no such file: missing.wsdl",
              "icu.yaml:6:63: destinations[2].email.password: a password is never sent without TLS (security: "
              "starttls or tls)",
              "icu.yaml:7:37: destinations[3].email.password: username and password go together (SMTP login)"],
                 id="destination-files-and-credentials"),
    pytest.param("""
        name: icu
        source: {kind: mllp}
        name: ward
        """, ["icu.yaml:3:1: name: duplicate key 'name' (first written at line 1)"], id="duplicate-key"),
    pytest.param("""
        accept: ORU^R01
        transform: {kind: hl7_oru, units: {unit: x}}
        """, ["icu.yaml:1:1: source: required key is missing",
              "icu.yaml:1:9: accept: expected a mapping of keys to values (got 'ORU^R01')",
              "icu.yaml:2:35: transform.units: expected a list (got a mapping)"], id="missing-and-shapes"),
    pytest.param("""
        name: intensive care
        source: {kind: mllp, host: "bad host name"}
        validation: lenient
        """, ["icu.yaml:1:7: name: 'intensive care' is not a route name (letters, digits, '_', '-', '.'; at most "
              "100)",
              "icu.yaml:2:28: source.host: 'bad host name' is neither an IP address nor a host name",
              "icu.yaml:3:13: validation: must be 'tolerant' or 'strict' (got 'lenient')"], id="name-host-choice"),
]


@pytest.mark.parametrize(("text", "expected"), BROKEN)
def test_broken_route_reports_each_error_at_its_place(tmp_path: Path, text: str, expected: list[str]) -> None:
    write(tmp_path, {"icu.yaml": text})
    assert lines(check_routes(tmp_path, env={}), tmp_path) == expected


def test_every_error_of_every_file_is_reported_at_once(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.yaml": "source: {kind: mllp, prot: 1}\nvalidation: lenient\n",
        "b.yaml": "source:\n  kind: mllp\n  port: ${NOPE}\nlog_phi: ${NOPE_EITHER}\ncolor: red\n",
        "c.yaml": "source: [\n",
        "d.yaml": "source: {kind: mllp, port: 2590}\n",
    })
    with pytest.raises(RouteConfigError) as raised:
        load_routes(tmp_path, env={})
    assert lines(raised.value.errors, tmp_path) == [
        "a.yaml:1:22: source.prot: unknown key 'prot' - did you mean 'port'?",
        "a.yaml:2:13: validation: must be 'tolerant' or 'strict' (got 'lenient')",
        "b.yaml:3:9: source.port: environment variable NOPE is not set (write ${NOPE:-default} to give a default)",
        "b.yaml:4:10: log_phi: environment variable NOPE_EITHER is not set (write ${NOPE_EITHER:-default} to "
        "give a default)",
        "b.yaml:5:1: color: unknown key 'color' (known keys: accept, destinations, devices, log_phi, name, "
        "retention, source, transform, validation)",
        "c.yaml:2:1: YAML syntax: while parsing a flow node expected the node content, but found '<stream end>'",
    ]
    assert str(raised.value) == "\n".join(map(str, raised.value.errors))


def test_duplicate_names_and_ports_across_files(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.yaml": "name: icu\nsource: {kind: mllp, port: 2580, host: 0.0.0.0}\n",
        "b.yaml": "name: icu\nsource: {kind: mllp, port: 2581}\n",
        "c.yaml": "source:\n  kind: mllp\n  port: 2580\n  host: 10.1.2.3\n",
        "icu.yaml": "source: {kind: mllp, port: 2581, host: 10.1.2.3}\n",
        "zero.yaml": "source: {kind: mllp, port: 0}\n",
        "zero2.yaml": "source: {kind: mllp, port: 0}\n",
    })
    assert lines(check_routes(tmp_path, env={}), tmp_path) == [
        "b.yaml:1:7: name: route name 'icu' is already used by a.yaml:1:7",
        "c.yaml:3:9: source.port: 10.1.2.3:2580 is already used by route 'icu' (a.yaml:2:28)",
        "icu.yaml:1:1: name: route name 'icu' (named after its file; set 'name:') is already used by "
        "a.yaml:1:7",
    ]


def test_same_port_on_different_addresses_is_fine(tmp_path: Path) -> None:
    write(tmp_path, {"a.yaml": "source: {kind: mllp, port: 2580, host: 10.0.0.1}\n",
                     "b.yaml": "source: {kind: mllp, port: 2580, host: 10.0.0.2}\n"})
    assert check_routes(tmp_path, env={}) == []


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "latin.yaml").write_bytes(b"name: caf\xe9\n")
    assert lines(check_routes(tmp_path, env={}), tmp_path) == ["latin.yaml: not UTF-8 text: invalid continuation byte"]


def test_load_route_file_raises_with_the_files_errors(tmp_path: Path) -> None:
    write(tmp_path, {"icu.yaml": "source: {kind: mllp, prot: 1}\n"})
    with pytest.raises(RouteConfigError) as raised:
        load_route_file(tmp_path / "icu.yaml", env={})
    assert lines(raised.value.errors, tmp_path) == [
        "icu.yaml:1:22: source.prot: unknown key 'prot' - did you mean 'port'?"]


def test_one_route_takes_each_kind_of_http_submission(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("source: {kind: rest}\n")
    (tmp_path / "b.yaml").write_text("source: {kind: rest}\n")
    errors = [str(error) for error in check_routes(tmp_path, env={})]
    assert len(errors) == 1 and "b.yaml:1:16: source.kind: route 'a' already takes rest submissions" in errors[0]


def test_outbox_destination_names_are_unique_across_routes(tmp_path: Path) -> None:
    write(tmp_path, {
        "a.yaml": "source: {kind: mllp, port: 2601}\ndestinations: [{kind: sql}, {kind: ehr_soap, name: ehr}]\n",
        "b.yaml": "source: {kind: mllp, port: 2602}\ndestinations:\n  - kind: sql\n  - kind: ehr_soap\n"
                  "    name: ehr\n",
    })
    assert lines(check_routes(tmp_path, env={}), tmp_path) == [
        "b.yaml:5:11: destinations[1].name: destination name 'ehr' is already used by route 'a' (a.yaml:2:52)"]


def test_an_outbox_destination_is_enabled_by_an_environment_variable(tmp_path: Path) -> None:
    write(tmp_path, {"icu.yaml": """
        source: {kind: mllp}
        destinations:
          - kind: sql
          - kind: ehr_soap
            name: ehr
            enabled: ${VITALS_EHR_URL:+true}
            endpoint: ${VITALS_EHR_URL:-http://unused}
          - {kind: notify, name: pager, webhook: {url: "http://127.0.0.1:9/hook"}, severities: [warning, critical],
             suppress_minutes: 5}
        """})
    off = load_routes(tmp_path, env={})[0]
    assert [target.name for target in off.to_route().outbox] == ["pager"]
    on = load_routes(tmp_path, env={"VITALS_EHR_URL": "http://127.0.0.1:8090/ehr"})[0]
    ehr, pager = on.to_route().outbox
    assert (ehr.name, ehr.readings, ehr.alerts) == ("ehr", True, True)
    assert (pager.readings, pager.alerts, pager.severities) == (False, True, frozenset({"warning", "critical"}))
    assert pager.suppress_seconds == 300
    assert on.outbox_destinations()[0].endpoint == "http://127.0.0.1:8090/ehr"
