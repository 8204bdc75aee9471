"""Destination kinds: where a route's readings and alerts go.

``sql`` is the engine's own database (VITALS_DB_URL): every message is stored there, with its readings
and alerts, before it is acknowledged. The other kinds are outbox destinations: the transaction that
stores a message also writes one outbox row per record each of them must get, and the outbox worker
(engine/outbox.py) delivers the rows with retries, in order per patient.

- ``ehr_soap``: readings (RecordObservations) and alerts (RecordAlert) to the EHR over SOAP (zeep).
- ``notify``: alerts to people on call: a webhook, a Slack incoming webhook or email (SMTP with TLS).
"""
from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from engine.routes.base import ConfigModel, broken_rule
from engine.routes.source import ExistingFile
from engine.settings import PROJECT_ROOT

DEFAULT_EHR_WSDL = PROJECT_ROOT / "wsdl" / "ehr.wsdl"


def _empty_is_false(value: Any) -> Any:
    """``enabled: ${VITALS_EHR_URL:+true}`` reads as false when the variable is unset (an empty string)."""
    return False if value == "" else value


def _http_url(value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise broken_rule(f"'{value}' is not an http:// or https:// URL")
    return value


def _address(value: str) -> str:
    local, at, domain = value.rpartition("@")
    if not at or not local or "." not in domain or any(c.isspace() or c in "<>,;" for c in value):
        raise broken_rule(f"'{value}' is not an email address")
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
EmailAddress = Annotated[str, AfterValidator(_address)]
Enabled = Annotated[bool, BeforeValidator(_empty_is_false)]


def _destination_name(value: str) -> str:
    if not value or len(value) > 100 or not all(c.isalnum() or c in "_.-" for c in value):
        raise broken_rule(f"'{value}' is not a destination name (letters, digits, '_', '-', '.'; at most 100)")
    return value


DestinationName = Annotated[str, AfterValidator(_destination_name)]


class SqlDestination(ConfigModel):
    """Store messages, readings and alerts in the engine's database (VITALS_DB_URL)."""

    kind: Literal["sql"] = Field(description="Destination kind.", examples=["sql"])


class Retry(ConfigModel):
    """How an outbox destination retries transient failures: exponential backoff with jitter, capped."""

    first_delay_seconds: float = Field(1.0, gt=0, description="Wait before the second attempt; each later "
                                       "wait doubles (with jitter) up to max_delay_seconds.", examples=[1.0])
    max_delay_seconds: float = Field(300.0, gt=0, description="Longest wait between two attempts.",
                                     examples=[300.0])
    max_attempts: int = Field(60, ge=1, description="Attempts before a record goes to the dead letters "
                              "(60 attempts with the defaults: two to four hours, with the jitter).",
                              examples=[60])

    @model_validator(mode="after")
    def _cap_not_below_first(self) -> Retry:
        if self.max_delay_seconds < self.first_delay_seconds:
            raise broken_rule("must not be below first_delay_seconds", at=("max_delay_seconds",))
        return self


class OutboxDestination(ConfigModel):
    """What every outbox destination has: a name (its queue), a switch, concurrency and retries."""

    name: DestinationName = Field(description="Unique across all routes: the destination's queue in the "
                                  "outbox, and what operators pause, resume and retry.", examples=["ehr"])
    enabled: Enabled = Field(True, description="false (or empty) leaves the destination out; "
                             "`${VAR:+true}` enables it only when VAR is set.", examples=["${VITALS_EHR_URL:+true}"])
    concurrency: int = Field(4, ge=1, le=64, description="Records sent at once (order is kept per patient).",
                             examples=[4])
    timeout_seconds: float = Field(10.0, gt=0, description="Time one delivery may take before it counts as "
                                   "a transient failure.", examples=[10.0])
    retry: Retry = Field(default_factory=Retry, description="Backoff and the retry limit for transient failures.",
                         examples=[{"first_delay_seconds": 1, "max_delay_seconds": 300, "max_attempts": 60}])


class EhrSoapDestination(OutboxDestination):
    """Readings and alerts to the EHR's results service over SOAP (contract: wsdl/ehr.wsdl, through zeep)."""

    kind: Literal["ehr_soap"] = Field(description="Destination kind.", examples=["ehr_soap"])
    wsdl: ExistingFile = Field(DEFAULT_EHR_WSDL, description="The EHR's WSDL, read from disk (never fetched); "
                               "relative to the route file. Default: wsdl/ehr.wsdl.",
                               examples=["../wsdl/ehr.wsdl"], validate_default=True)
    endpoint: HttpUrl | None = Field(None, description="The service URL, overriding the WSDL's address.",
                                     examples=["${VITALS_EHR_URL}"])
    send: list[Literal["readings", "alerts"]] = Field(
        default_factory=lambda: ["readings", "alerts"], min_length=1,
        description="readings: one RecordObservations per stored message and patient; alerts: RecordAlert when "
        "an alert is raised and when it is resolved.", examples=[["readings", "alerts"]])
    username: str | None = Field(None, description="WS-Security UsernameToken user; take it from the "
                                 "environment.", examples=["${VITALS_EHR_USER}"])
    password: str | None = Field(None, description="WS-Security UsernameToken password; from the environment, "
                                 "never written in the file.", examples=["${VITALS_EHR_PASSWORD}"],
                                 validate_default=True)

    @field_validator("password")
    @classmethod
    def _password_with_username(cls, password: str | None, info: ValidationInfo) -> str | None:
        if "username" in info.data and (info.data["username"] is None) != (password is None):
            raise broken_rule("username and password go together (WS-Security UsernameToken)")
        return password


class Webhook(ConfigModel):
    """POST a JSON document per alert to a URL, optionally signed (HMAC-SHA256, docs/notify.md)."""

    url: HttpUrl = Field(description="Where alerts are POSTed.", examples=["https://oncall.example.org/hooks/vitals"])
    secret: str | None = Field(None, description="Signing secret, from the environment.",
                               examples=["${VITALS_WEBHOOK_SECRET}"])


class Slack(ConfigModel):
    """A Slack incoming webhook."""

    url: HttpUrl = Field(description="The incoming-webhook URL Slack gave, from the environment.",
                         examples=["${VITALS_SLACK_WEBHOOK_URL}"])


class Email(ConfigModel):
    """Email through an SMTP server, with STARTTLS or implicit TLS."""

    host: str = Field(description="SMTP server.", examples=["smtp.hospital.example"])
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 implicit TLS).",
                      examples=[587])
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls, tls (implicit) or none (only for a relay on this machine).",
        examples=["starttls"])
    username: str | None = Field(None, description="SMTP login, from the environment.",
                                 examples=["${VITALS_SMTP_USER}"])
    password: str | None = Field(None, description="SMTP password, from the environment.",
                                 examples=["${VITALS_SMTP_PASSWORD}"], validate_default=True)
    sender: EmailAddress = Field(description="From address.", examples=["vitals@hospital.example"])

    @field_validator("password", mode="after")
    @classmethod
    def _login_pair_over_tls(cls, password: str | None, info: ValidationInfo) -> str | None:
        username = info.data.get("username")
        if (username is None) != (password is None) and "username" in info.data:
            raise broken_rule("username and password go together (SMTP login)")
        if password is not None and info.data.get("security") == "none":
            raise broken_rule("a password is never sent without TLS (security: starttls or tls)")
        return password
    to: list[EmailAddress] = Field(min_length=1, description="Recipients.", examples=[["icu-oncall@hospital.example"]])


class NotifyDestination(OutboxDestination):
    """Alerts to people on call: exactly one of webhook, slack or email."""

    kind: Literal["notify"] = Field(description="Destination kind.", examples=["notify"])
    concurrency: int = Field(2, ge=1, le=64, description="Notifications sent at once.", examples=[2])
    webhook: Webhook | None = Field(None, description="Send to a webhook.",
                                    examples=[{"url": "https://oncall.example.org/hooks/vitals"}])
    slack: Slack | None = Field(None, description="Send to a Slack incoming webhook.",
                                examples=[{"url": "${VITALS_SLACK_WEBHOOK_URL}"}])
    email: Email | None = Field(None, description="Send email.", examples=[
        {"host": "smtp.hospital.example", "sender": "vitals@hospital.example", "to": ["icu@hospital.example"]}])
    severities: list[Literal["warning", "critical"]] = Field(
        default_factory=lambda: ["critical"], min_length=1, description="Alert severities notified.",
        examples=[["critical", "warning"]])
    suppress_minutes: float = Field(15, ge=0, description="A new alert of the same patient, vital and kind, "
                                    "no more severe, within this many minutes of the last one notified is "
                                    "recorded as SUPPRESSED, not sent (a repeating breach does not flood; an "
                                    "escalation to critical is always sent).", examples=[15])

    @model_validator(mode="after")
    def _exactly_one_channel(self) -> NotifyDestination:
        chosen = [name for name in ("webhook", "slack", "email") if getattr(self, name) is not None]
        if len(chosen) != 1:
            found = ", ".join(chosen) if chosen else "none"
            raise broken_rule(f"needs exactly one of webhook, slack, email (found: {found})")
        return self


DESTINATION_KINDS = (SqlDestination, EhrSoapDestination, NotifyDestination)
