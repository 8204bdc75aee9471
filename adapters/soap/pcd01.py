"""IHE PCD-01 (Communicate PCD Data) over SOAP 1.2: the DeviceObservationConsumer at /soap/pcd01.

The body of ``CommunicatePCDData`` (namespace urn:ihe:pcd:dec:2010) is an HL7 v2 ORU^R01 as text (ER7); the
answer, ``CommunicatePCDDataResponse``, is the HL7 ACK as text. Both are plain xs:string elements, as in the
IHE PCD Technical Framework's DeviceObservationConsumer.xsd. The message takes the HL7 path of the channel,
exactly as MLLP: ``Inbound(bytes, route, peer)`` through the same synchronous submit callable SubmitVitals
uses (so the engine's group committer serves both), answered after the commit. See docs/soap.md.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from spyne import ServiceBase, Unicode, rpc

from adapters.soap.service import client_fault, guarded, server_fault
from engine.channel import Inbound, Receipt, Route, Submission
from transforms.errors import MessageProblems
from transforms.hl7.charset import decode, encode
from transforms.hl7.header import Header, read_header
from transforms.hl7.parser import parse

NS = "urn:ihe:pcd:dec:2010"
SyncDeliver = Callable[[Inbound | Submission], Receipt]  # SubmitVitals and PCD-01 share it


@dataclass(frozen=True)
class PcdDeps:
    deliver: SyncDeliver
    route: Route


class DeviceObservationConsumer(ServiceBase):
    """IHE PCD-01 Device Observation Consumer."""

    @rpc(Unicode, _returns=Unicode, _body_style="bare", _in_variable_names={"message": "CommunicatePCDData"})
    def CommunicatePCDData(ctx, message):
        """An HL7 v2 ORU^R01 (ER7 text) in, its HL7 acknowledgement (ER7 text) out, after the commit."""
        return guarded(_communicate, ctx, message)


def _communicate(ctx: Any, message: str | None) -> str:
    if not message or not message.strip():
        raise client_fault("CommunicatePCDData is empty: it must carry an HL7 v2 ORU^R01 message")
    deps: PcdDeps = ctx.app.pcd01
    env = ctx.transport.req_env
    raw = encode(message)  # in the character set MSH-18 declares, so the channel decodes it as sent
    receipt = deps.deliver(Inbound(raw, deps.route, f"{env.get('REMOTE_ADDR', '')}:{env.get('REMOTE_PORT', '')}"))
    return answer(receipt, raw)


def answer(receipt: Receipt, raw: bytes) -> str:
    """The last ACK (the application ACK in enhanced mode; AR 207 when the store failed), else a fault for
    what is no ORU at all, else the empty string: the sender asked for no acknowledgement (MSH-15/16)."""
    if receipt.acks:
        return receipt.acks[-1]
    header = _header(raw)
    if header is None:
        raise client_fault("CommunicatePCDData does not hold an HL7 v2 message: it must start with an MSH segment")
    if header.is_ack:
        raise client_fault("CommunicatePCDData holds an acknowledgement; an acknowledgement is never acknowledged")
    if receipt.message_id is None:
        raise server_fault("the message could not be stored; send it again later")
    return ""


def _header(raw: bytes) -> Header | None:
    """MSH as the channel reads it; only asked when the channel produced no ACK (rare)."""
    try:
        return read_header(parse(decode(raw)))
    except MessageProblems:
        return None


# SOAP 1.2 Part 1, appendix A: a SOAP 1.2 node answers a SOAP 1.1 request with a SOAP 1.1 VersionMismatch
# fault whose Upgrade header names the envelope it supports.
VERSION_MISMATCH = (
    b'<?xml version="1.0" encoding="UTF-8"?>'
    b'<env:Envelope xmlns:env="http://schemas.xmlsoap.org/soap/envelope/"><env:Header>'
    b'<upg:Upgrade xmlns:upg="http://www.w3.org/2003/05/soap-envelope">'
    b'<upg:SupportedEnvelope qname="ns1:Envelope" xmlns:ns1="http://www.w3.org/2003/05/soap-envelope"/>'
    b'</upg:Upgrade></env:Header><env:Body><env:Fault><faultcode>env:VersionMismatch</faultcode>'
    b'<faultstring>IHE PCD-01 is SOAP 1.2 only: post a SOAP 1.2 envelope (http://www.w3.org/2003/05/soap-envelope) '
    b'as application/soap+xml</faultstring></env:Fault></env:Body></env:Envelope>')


class Soap12Only:
    """ASGI: a POST in SOAP 1.1's media type (text/xml) gets the VersionMismatch fault before anything reads
    its body; everything else passes (Spyne faults a SOAP 1.1 envelope sent as application/soap+xml)."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        content_type = dict(scope.get("headers", ())).get(b"content-type", b"")
        if scope["type"] == "http" and scope["method"] == "POST" and \
                content_type.split(b";", 1)[0].strip().lower() == b"text/xml":
            await send({"type": "http.response.start", "status": 500,
                        "headers": [(b"content-type", b"text/xml; charset=utf-8"),
                                    (b"content-length", str(len(VERSION_MISMATCH)).encode()),
                                    (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": VERSION_MISMATCH})
            return
        await self.app(scope, receive, send)
