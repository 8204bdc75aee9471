"""Source kinds: where a route's messages come from. Today one kind, ``mllp`` (HL7 v2 over MLLP/TCP).

A new kind (``soap``, ``rest``) is one more model with a ``kind`` literal, added to ``SOURCE_KINDS``.
The listener itself lives in adapters/; these models only say how it is configured.
"""
from __future__ import annotations

import ipaddress
import re
import ssl
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, ValidationInfo, field_validator

from adapters.mllp.server import MllpLimits as ListenerLimits
from adapters.mllp.server import server_ssl_context
from engine.routes.base import ConfigModel, broken_rule

_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
WILDCARD_HOSTS = frozenset({"0.0.0.0", "::", ""})


def _host(value: str) -> str:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOSTNAME.match(value):
            raise broken_rule(f"'{value}' is neither an IP address nor a host name") from None
    return value


def _relative_to_route(value: Path, info: ValidationInfo) -> Path:
    """Relative paths are read from the route file's folder (the loader passes it as context)."""
    base = (info.context or {}).get("base")
    return value if base is None or value.is_absolute() else base / value


def _existing_file(path: Path, info: ValidationInfo) -> Path:
    if (info.context or {}).get("base") is not None and not path.is_file():
        raise broken_rule(f"no such file: {path}")
    return path


RoutePath = Annotated[Path, AfterValidator(_relative_to_route)]
ExistingFile = Annotated[RoutePath, AfterValidator(_existing_file)]  # checked when read from a route file


class MllpTls(ConfigModel):
    """TLS on the MLLP port. Without ``client_ca`` any client may connect; with it, client certificates
    signed by that CA are checked (and required when ``require_client_cert`` is true)."""

    cert: RoutePath = Field(description="Server certificate chain (PEM); relative to the route file.",
                            examples=["tls/vitals.crt"])
    key: RoutePath | None = Field(None, description="Private key of ``cert`` (PEM). Required with ``cert``.",
                                  validate_default=True, examples=["tls/vitals.key"])
    client_ca: RoutePath | None = Field(None, description="CA bundle (PEM) that signs client certificates.",
                                        examples=["tls/monitors-ca.crt"])
    require_client_cert: bool = Field(False, description="Refuse clients without a certificate signed by "
                                      "``client_ca`` (mutual TLS).", examples=[True])

    @field_validator("key")
    @classmethod
    def _key_with_cert(cls, key: Path | None, info: ValidationInfo) -> Path | None:
        if key is None and info.data.get("cert") is not None:
            raise broken_rule("required when 'cert' is given (the certificate's private key)")
        return key

    @field_validator("require_client_cert")
    @classmethod
    def _client_ca_for_required_cert(cls, required: bool, info: ValidationInfo) -> bool:
        if required and "client_ca" in info.data and info.data["client_ca"] is None:
            raise broken_rule("needs 'client_ca', the CA that signs the client certificates")
        return required


class MllpLimits(ConfigModel):
    """Bounds that keep one misbehaving sender from exhausting the engine."""

    max_frame_bytes: int = Field(1_048_576, gt=0, description="Largest message (one MLLP frame) accepted; "
                                 "a longer frame closes the connection.", examples=[4_194_304])
    read_timeout_seconds: float = Field(30, gt=0, description="Time allowed to finish a frame once it "
                                        "started.", examples=[30])
    idle_timeout_seconds: float = Field(600, gt=0, description="A connection with no frame for this long "
                                        "is closed.", examples=[600])
    write_timeout_seconds: float = Field(30, gt=0, description="Time allowed to write an ACK before the "
                                         "connection is dropped.", examples=[30])
    handshake_timeout_seconds: float = Field(10, gt=0, description="TLS only: time allowed for the TLS "
                                             "handshake.", examples=[10])
    max_connections: int = Field(200, gt=0, description="Open connections at once; connections beyond "
                                 "this are closed at once.", examples=[200])


class MllpSource(ConfigModel):
    """HL7 v2 messages over MLLP (TCP, optionally TLS), answered with ACKs after they are stored."""

    kind: Literal["mllp"] = Field(description="Source kind.", examples=["mllp"])
    host: Annotated[str, AfterValidator(_host)] = Field(
        "127.0.0.1", description="Address to listen on; 0.0.0.0 (or ::) listens on every interface.",
        examples=["0.0.0.0"])
    port: int = Field(2575, ge=0, le=65535, description="TCP port; 0 picks a free port (tests).",
                      examples=[2575])
    tls: MllpTls | None = Field(None, description="TLS settings; plain TCP when absent.",
                                examples=[{"cert": "tls/vitals.crt", "key": "tls/vitals.key"}])
    limits: MllpLimits = Field(default_factory=MllpLimits, description="Frame size, timeouts, connection cap.",
                               examples=[{"max_frame_bytes": 1048576, "max_connections": 50}])
    ack_mode: Literal["as_requested", "original"] = Field(
        "as_requested", description="as_requested: MSH-15/MSH-16 decide which ACKs are sent (enhanced mode); "
        "original: always exactly one AA/AE/AR.", examples=["original"])

    def mllp_limits(self) -> ListenerLimits:
        """The listener's limits (adapters.mllp.server.MllpLimits)."""
        limits = self.limits
        return ListenerLimits(max_frame_bytes=limits.max_frame_bytes, read_timeout=limits.read_timeout_seconds,
                              idle_timeout=limits.idle_timeout_seconds, max_connections=limits.max_connections,
                              write_timeout=limits.write_timeout_seconds,
                              handshake_timeout=limits.handshake_timeout_seconds)

    def ssl_context(self) -> ssl.SSLContext | None:
        """The listener's TLS context (reads the certificate files), or None for plain TCP."""
        tls = self.tls
        if tls is None:
            return None
        return server_ssl_context(str(tls.cert), str(tls.key or tls.cert),
                                  str(tls.client_ca) if tls.client_ca else None, tls.require_client_cert)


class RestSource(ConfigModel):
    """Vitals POSTed as JSON to /api/v1/devices/{device_id}/readings on the engine's HTTP server."""

    kind: Literal["rest"] = Field(description="Source kind.", examples=["rest"])


class SoapSource(ConfigModel):
    """SubmitVitals over SOAP 1.1 (/soap/vitals) and SOAP 1.2 (/soap/vitals12) on the engine's HTTP server."""

    kind: Literal["soap"] = Field(description="Source kind.", examples=["soap"])


SOURCE_KINDS = (MllpSource, RestSource, SoapSource)
HTTP_SOURCE_KINDS = ("rest", "soap")  # served by the engine's HTTP server; at most one route each
