"""Alert notification senders against real receivers: an HTTP server in a thread (webhook and Slack, plain and
TLS) and aiosmtpd (plain SMTP, STARTTLS, implicit TLS, AUTH), plus the pure notification text.

Receivers answer what a test tells them; every server a test starts is stopped when it ends.
"""
from __future__ import annotations

import email
import email.policy
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage, Message
from email.utils import parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from adapters.delivery import DeliveryFailed
from adapters.notify import EmailSender, SlackSender, WebhookSender, message_id
from tests.servers import free_port
from tests.tls import make_certs
from transforms.notification_text import notification_text

SECRET = "s3cret-shared-with-the-receiver"
RAISED: dict[str, Any] = {
    "alert_id": 5, "patient_id": "P1", "device_id": "MON-1", "vital": "heart_rate", "severity": "critical",
    "kind": "threshold", "state": "open", "message": "heart_rate 150 /min above critical high 140", "value": 150.0,
    "raised_at": "2026-11-21T10:00:00Z", "message_id": 12, "resolved_at": None, "resolved_by": None,
    "route": "default",
}
RESOLVED = {**RAISED, "state": "resolved", "resolved_at": "2026-11-21T10:20:00Z", "resolved_by": "nurse.lee"}


def expect_failure(call: Any, *args: Any, permanent: bool) -> str:
    """Run the send; it must fail the given way. Returns the reason."""
    with pytest.raises(DeliveryFailed) as caught:
        call(*args)
    assert caught.value.permanent is permanent, caught.value.reason
    return caught.value.reason


# --- notification text (pure) -------------------------------------------------------------------------------

def test_raised_alert_text_puts_severity_reading_and_patient_first() -> None:
    text = notification_text("alert", RAISED)
    assert text.subject == "CRITICAL heart rate 150 /min - patient P1"
    assert text.body == ("CRITICAL heart rate 150 /min\nabove critical high 140\nPatient: P1\nDevice: MON-1\n"
                         "Raised: 2026-11-21 10:00 UTC\nAlert 5 (threshold, route default)\n")


def test_resolve_notice_says_who_resolved_it_and_when() -> None:
    text = notification_text("alert_resolved", RESOLVED)
    assert text.subject == "RESOLVED CRITICAL heart rate 150 /min - patient P1"
    assert text.body.splitlines()[:2] == ["RESOLVED CRITICAL heart rate 150 /min",
                                          "Resolved by nurse.lee at 2026-11-21 10:20 UTC"]
    anonymous = notification_text("alert_resolved", {**RESOLVED, "resolved_by": None, "resolved_at": None})
    assert anonymous.body.splitlines()[1] == "Resolved"


@pytest.mark.parametrize(("vital", "message", "headline", "detail"), [
    ("temperature", "temperature <35 Cel below critical low 35", "WARNING temperature <35 °C", "below critical low 35"),
    ("bp_systolic", "bp_systolic 185 mm[Hg] above critical high 180", "WARNING systolic BP 185 mmHg",
     "above critical high 180"),
    ("spo2", "spo2 92.5 % below warning low 94", "WARNING SpO2 92.5 %", "below warning low 94"),
])
def test_threshold_text_shows_the_reading_in_readable_units(vital: str, message: str, headline: str,
                                                            detail: str) -> None:
    text = notification_text("alert", {**RAISED, "severity": "warning", "vital": vital, "message": message})
    assert text.body.splitlines()[:2] == [headline, detail]


def test_trend_alert_text_keeps_the_whole_message() -> None:
    trend = {**RAISED, "vital": "heart_rate,spo2", "kind": "trend",
             "message": "heart rate rose 21 /min and spo2 fell 5.5 % within 10 minutes"}
    text = notification_text("alert", trend)
    assert text.subject == "CRITICAL trend: heart rate + SpO2 - patient P1"
    assert "heart rate rose 21 /min and spo2 fell 5.5 % within 10 minutes" in text.body.splitlines()


def test_text_is_one_line_per_field_whatever_the_payload_holds() -> None:
    text = notification_text("alert", {**RAISED, "patient_id": "P1\r\nBcc: x@example.org", "raised_at": "soon"})
    assert "\n" not in text.subject and "\r" not in text.body
    assert "Raised: soon" in text.body
    with pytest.raises(ValueError):
        notification_text("observations", RAISED)


# --- a real HTTP receiver -----------------------------------------------------------------------------------

@dataclass
class Received:
    path: str
    headers: Message
    body: bytes


@dataclass
class Receiver:
    """An HTTP server on 127.0.0.1 that records POSTs and answers ``status`` with ``answer``."""

    status: int = 200
    answer: bytes = b""
    content_type: str = "text/plain"
    extra_headers: dict[str, str] = field(default_factory=dict)
    stall: bool = False  # hold every answer until the receiver closes
    received: list[Received] = field(default_factory=list)
    released: threading.Event = field(default_factory=threading.Event)

    def serve(self, ssl_context: ssl.SSLContext | None = None) -> ThreadingHTTPServer:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                receiver.received.append(Received(self.path, self.headers, body))
                if receiver.stall:
                    receiver.released.wait(10)
                try:
                    self.send_response(receiver.status)
                    for name, value in {"Content-Type": receiver.content_type, **receiver.extra_headers}.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(receiver.answer)))
                    self.end_headers()
                    self.wfile.write(receiver.answer)
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, format: str, *args: Any) -> None:  # silence the access log
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        if ssl_context is not None:
            server.socket = ssl_context.wrap_socket(server.socket, server_side=True)
        return server


@contextmanager
def receiving(ssl_context: ssl.SSLContext | None = None) -> Iterator[tuple[Receiver, str]]:
    """A receiver and its base URL; stopped (stalled answers released) when the block ends."""
    receiver = Receiver()
    server = receiver.serve(ssl_context)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    scheme = "https" if ssl_context else "http"
    try:
        yield receiver, f"{scheme}://{'localhost' if ssl_context else '127.0.0.1'}:{server.server_address[1]}"
    finally:
        receiver.released.set()
        server.shutdown()
        server.server_close()
        thread.join(10)


@pytest.fixture
def http_receiver() -> Iterator[tuple[Receiver, str]]:
    with receiving() as started:
        yield started


@contextmanager
def webhook(url: str, **options: Any) -> Iterator[WebhookSender]:
    sender = WebhookSender(url, **options)
    try:
        yield sender
    finally:
        sender.close()


# --- webhook ------------------------------------------------------------------------------------------------

def test_webhook_posts_the_event_with_its_idempotency_key(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    receiver.status, receiver.content_type, receiver.answer = 201, "application/json", b'{"id": "evt-77"}'
    with webhook(f"{base}/hooks/vitals", headers={"Authorization": "Bearer t0ken"}) as sender:
        assert sender.send("alert", "alert:5", RAISED) == "evt-77"
    [request] = receiver.received
    assert request.path == "/hooks/vitals"
    assert request.headers["Idempotency-Key"] == "alert:5"
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["Authorization"] == "Bearer t0ken"
    assert request.headers["X-VitalsStream-Signature"] is None
    assert json.loads(request.body) == {"event": "alert.raised", "idempotency_key": "alert:5", "alert": RAISED,
                                        "text": "CRITICAL heart rate 150 /min - patient P1"}


def test_webhook_resolve_notice_and_an_answer_without_id(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    receiver.status, receiver.answer = 204, b""
    with webhook(base) as sender:
        assert sender.send("alert_resolved", "alert_resolved:5", RESOLVED) == ""
    sent = json.loads(receiver.received[0].body)
    assert (sent["event"], sent["alert"]["resolved_by"]) == ("alert.resolved", "nurse.lee")


def receiver_verifies(secret: str, request: Received, tolerance_seconds: int = 300) -> bool:
    """What docs/notify.md tells a receiver to do, written from the docs (not with our signing code)."""
    timestamp = request.headers["X-VitalsStream-Timestamp"]
    expected = "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + request.body,
                                    hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) <= tolerance_seconds
    return fresh and hmac.compare_digest(expected, request.headers["X-VitalsStream-Signature"])


def test_webhook_signature_verifies_with_the_documented_algorithm(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    with webhook(base, secret=SECRET) as sender:
        sender.send("alert", "alert:5", RAISED)
    [request] = receiver.received
    assert request.headers["X-VitalsStream-Signature"].startswith("sha256=")
    assert receiver_verifies(SECRET, request)
    assert not receiver_verifies("another secret", request)
    tampered = Received(request.path, request.headers, request.body.replace(b'"P1"', b'"P2"'))
    assert not receiver_verifies(SECRET, tampered)


@pytest.mark.parametrize("status", [500, 502, 503, 408, 425, 429])
def test_webhook_server_trouble_and_throttling_are_transient(http_receiver: tuple[Receiver, str],
                                                             status: int) -> None:
    receiver, base = http_receiver
    receiver.status = status
    with webhook(base) as sender:
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=False)
    assert reason.startswith(f"webhook at 127.0.0.1:{base.rsplit(':', 1)[1]} answered {status} ")


@pytest.mark.parametrize("status", [400, 401, 403, 404, 410, 422])
def test_webhook_client_errors_are_permanent(http_receiver: tuple[Receiver, str], status: int) -> None:
    receiver, base = http_receiver
    receiver.status = status
    with webhook(base) as sender:
        expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=True)


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_webhook_redirects_are_not_followed(http_receiver: tuple[Receiver, str], status: int) -> None:
    receiver, base = http_receiver
    receiver.status, receiver.extra_headers = status, {"Location": f"{base}/elsewhere"}
    with webhook(f"{base}/old") as sender:
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=True)
    assert "redirects are not followed" in reason
    assert [r.path for r in receiver.received] == ["/old"]


def test_webhook_failure_reason_has_no_body_path_or_patient_data(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    receiver.status, receiver.answer = 500, b"patient P1 heart_rate 150 could not be stored"
    with webhook(f"{base}/hooks/T0001/B0001/secret-token") as sender:
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=False)
    assert reason == f"webhook at 127.0.0.1:{base.rsplit(':', 1)[1]} answered 500 Internal Server Error"


def test_webhook_timeout_is_transient(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    receiver.stall = True
    with webhook(base, timeout_seconds=0.3) as sender:
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=False)
    assert "did not answer within 0.3 s" in reason


def test_webhook_connection_refused_is_transient() -> None:
    with webhook(f"http://127.0.0.1:{free_port()}/hook") as sender:
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=False)
    assert "Connection refused" in reason and "/hook" not in reason


def test_webhook_refuses_other_kinds_bad_urls_and_bad_headers(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    with webhook(base) as sender:
        expect_failure(sender.send, "observations", "observations:1", {}, permanent=True)
    with webhook(base, headers={"X-Ward": "7\r\nX-Injected: 1"}) as badly_configured:
        expect_failure(badly_configured.send, "alert", "alert:5", RAISED, permanent=True)
    assert receiver.received == []
    with pytest.raises(ValueError):
        WebhookSender("ftp://example.org/hook")


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return make_certs(tmp_path_factory.mktemp("notify-tls"))


def server_context(certs: dict[str, str]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certs["server.pem"], certs["server.key"])
    return context


def test_webhook_over_https_verifies_the_receiver_certificate(certs: dict[str, str]) -> None:
    with receiving(server_context(certs)) as (receiver, base):
        with webhook(base, ca_file=certs["ca.pem"]) as sender:
            sender.send("alert", "alert:5", RAISED)
        with webhook(base) as untrusting:  # the public CA bundle does not know the test CA
            reason = expect_failure(untrusting.send, "alert", "alert:5", RAISED, permanent=False)
    assert reason.startswith("TLS with webhook at localhost:")
    assert len(receiver.received) == 1


# --- Slack --------------------------------------------------------------------------------------------------

def test_slack_message_has_escaped_text_and_simple_blocks(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    receiver.answer = b"ok"
    cold = {**RAISED, "vital": "temperature", "message": "temperature <35 Cel below critical low 35"}
    sender = SlackSender(f"{base}/services/T0/B0/XYZ")
    try:
        assert sender.send("alert", "alert:5", cold) == ""
    finally:
        sender.close()
    [request] = receiver.received
    assert request.headers["Content-Type"].startswith("application/json")
    sent = json.loads(request.body)
    text = notification_text("alert", cold)
    assert sent["text"] == "CRITICAL temperature &lt;35 °C - patient P1"
    assert sent["blocks"] == [
        {"type": "header", "text": {"type": "plain_text", "text": text.subject}},
        {"type": "section", "text": {"type": "plain_text", "text": text.body}},
    ]


@pytest.mark.parametrize(("status", "answer", "permanent"), [
    (400, b"invalid_payload", True),
    (403, b"action_prohibited", True),
    (404, b"channel_not_found", True),
    (410, b"channel_is_archived", True),
    (404, b"no_service", True),
    (429, b"rate_limited", False),
    (500, b"rollup_error", False),
    (503, b"", False),
])
def test_slack_errors_are_classified_and_named(http_receiver: tuple[Receiver, str], status: int, answer: bytes,
                                               permanent: bool) -> None:
    receiver, base = http_receiver
    receiver.status, receiver.answer = status, answer
    sender = SlackSender(f"{base}/services/T0/B0/XYZ")
    try:
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=permanent)
    finally:
        sender.close()
    assert reason.startswith(f"Slack at 127.0.0.1:{base.rsplit(':', 1)[1]} answered {status} ")
    assert reason.endswith(f": {answer.decode()}" if answer else "Service Unavailable")
    assert "XYZ" not in reason


def test_slack_reason_leaves_out_an_answer_that_is_not_an_error_code(http_receiver: tuple[Receiver, str]) -> None:
    receiver, base = http_receiver
    receiver.status, receiver.answer = 400, b"<html>patient P1</html>"
    sender = SlackSender(base)
    try:
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=True)
    finally:
        sender.close()
    assert reason.endswith("answered 400 Bad Request")


def test_slack_connection_refused_is_transient() -> None:
    sender = SlackSender(f"http://127.0.0.1:{free_port()}/services/T0/B0/XYZ")
    try:
        expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=False)
    finally:
        sender.close()


# --- email over a real SMTP server (aiosmtpd) ---------------------------------------------------------------

SENDER, WARD = "vitals@hospital.test", "ward7-nurses@hospital.test"
USERNAME, PASSWORD = "vitals", "correct horse"


@dataclass
class Delivered:
    mail_from: str
    recipients: list[str]
    message: EmailMessage
    over_tls: bool
    authenticated: bool


class Mailbox:
    """aiosmtpd handler: keeps what it accepts; refuses recipients named unknown* (550) and busy* (451)."""

    def __init__(self) -> None:
        self.delivered: list[Delivered] = []

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str,
                          rcpt_options: list[str]) -> str:
        if address.startswith("unknown"):
            return f"550 5.1.1 <{address}>: mailbox unavailable"
        if address.startswith("busy"):
            return "451 4.2.0 mailbox busy, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.original_content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.delivered.append(Delivered(envelope.mail_from, list(envelope.rcpt_tos), message, bool(session.ssl),
                                        bool(session.authenticated)))
        return "250 2.0.0 accepted"


def check_password(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
    ok = isinstance(auth_data, LoginPassword) and auth_data == (USERNAME.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself


@contextmanager
def smtp_server(**options: Any) -> Iterator[tuple[Mailbox, int]]:
    """aiosmtpd on 127.0.0.1 in its own thread; ``options`` go to its SMTP class (tls_context, authenticator...)."""
    mailbox, port = Mailbox(), free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port, server_hostname="smtp.hospital.test",
                            ready_timeout=10, **options)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def emailer(port: int, security: str = "none", **options: Any) -> EmailSender:
    recipients = options.pop("recipients", [WARD])
    return EmailSender("127.0.0.1", port, security, sender=SENDER, recipients=recipients, timeout_seconds=5,
                       local_hostname="vitals.hospital.test", **options)


def client_context(certs: dict[str, str]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=certs["ca.pem"])


def test_email_is_a_proper_message_with_a_stable_message_id() -> None:
    with smtp_server() as (mailbox, port):
        sender = emailer(port)
        first = sender.send("alert", "alert:5", RAISED)
        again = sender.send("alert", "alert:5", RAISED)
        sender.close()
    assert first == again == message_id("alert:5", SENDER)
    assert first.startswith("<alert.5.") and first.endswith("@hospital.test>")
    delivered = mailbox.delivered[0]
    assert (delivered.mail_from, delivered.recipients, delivered.over_tls) == (SENDER, [WARD], False)
    message = delivered.message
    assert message["Subject"] == "CRITICAL heart rate 150 /min - patient P1"
    assert (message["From"], message["To"], message["Message-ID"]) == (SENDER, WARD, first)
    assert parsedate_to_datetime(message["Date"]).tzinfo is not None
    assert message["Auto-Submitted"] == "auto-generated"
    assert message.get_content_type() == "text/plain"
    assert message.get_content().replace("\r\n", "\n") == notification_text("alert", RAISED).body


def test_email_resolve_notice_has_its_own_message_id() -> None:
    with smtp_server() as (mailbox, port):
        resolved_id = emailer(port).send("alert_resolved", "alert_resolved:5", RESOLVED)
    assert resolved_id != message_id("alert:5", SENDER)
    assert "Resolved by nurse.lee at 2026-11-21 10:20 UTC" in mailbox.delivered[0].message.get_content().splitlines()


def test_email_with_a_non_ascii_subject_arrives_intact() -> None:
    cold = {**RAISED, "vital": "temperature", "message": "temperature 34.1 Cel below critical low 35"}
    with smtp_server() as (mailbox, port):
        emailer(port).send("alert", "alert:6", cold)
    assert mailbox.delivered[0].message["Subject"] == "CRITICAL temperature 34.1 °C - patient P1"


def test_email_over_starttls_with_login(certs: dict[str, str]) -> None:
    with smtp_server(tls_context=server_context(certs), require_starttls=True,
                     authenticator=check_password) as (mailbox, port):
        emailer(port, "starttls", username=USERNAME, password=PASSWORD,
                ssl_context=client_context(certs)).send("alert", "alert:5", RAISED)
    [delivered] = mailbox.delivered
    assert (delivered.over_tls, delivered.authenticated) == (True, True)


def test_email_over_implicit_tls(certs: dict[str, str]) -> None:
    # aiosmtpd cannot tell it runs inside TLS it did not negotiate itself, hence auth_require_tls=False
    with smtp_server(ssl_context=server_context(certs), authenticator=check_password,
                     auth_require_tls=False) as (mailbox, port):
        emailer(port, "tls", username=USERNAME, password=PASSWORD,
                ssl_context=client_context(certs)).send("alert", "alert:5", RAISED)
    assert len(mailbox.delivered) == 1


def test_email_wrong_password_is_permanent(certs: dict[str, str]) -> None:
    with smtp_server(tls_context=server_context(certs), authenticator=check_password) as (mailbox, port):
        sender = emailer(port, "starttls", username=USERNAME, password="wrong", ssl_context=client_context(certs))
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=True)
    assert reason.startswith("SMTP server replied 535") and "wrong" not in reason
    assert mailbox.delivered == []


def test_email_starttls_refuses_a_certificate_it_cannot_verify(certs: dict[str, str]) -> None:
    with smtp_server(tls_context=server_context(certs)) as (mailbox, port):
        reason = expect_failure(emailer(port, "starttls").send, "alert", "alert:5", RAISED, permanent=False)
    assert reason.startswith("TLS with the SMTP server failed")
    assert mailbox.delivered == []


def test_email_starttls_against_a_server_without_it_is_permanent() -> None:
    with smtp_server() as (mailbox, port):
        reason = expect_failure(emailer(port, "starttls").send, "alert", "alert:5", RAISED, permanent=True)
    assert "STARTTLS" in reason and mailbox.delivered == []


def test_email_in_plain_text_to_a_server_that_requires_tls_is_permanent(certs: dict[str, str]) -> None:
    with smtp_server(tls_context=server_context(certs), require_starttls=True) as (mailbox, port):
        reason = expect_failure(emailer(port).send, "alert", "alert:5", RAISED, permanent=True)
    assert reason.startswith("SMTP server replied 530") and mailbox.delivered == []


def test_email_mailbox_unavailable_is_permanent() -> None:
    with smtp_server() as (mailbox, port):
        sender = emailer(port, recipients=["unknown@hospital.test"])
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=True)
    assert reason == "SMTP server refused 1 of 1 recipients (550)"
    assert mailbox.delivered == []


def test_email_temporary_refusal_is_transient() -> None:
    with smtp_server() as (mailbox, port):
        sender = emailer(port, recipients=["busy@hospital.test"])
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=False)
    assert reason == "SMTP server refused 1 of 1 recipients (451)"
    assert mailbox.delivered == []


def test_email_partly_refused_fails_so_the_missing_recipient_is_seen() -> None:
    with smtp_server() as (mailbox, port):
        sender = emailer(port, recipients=[WARD, "unknown@hospital.test"])
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=True)
    assert reason == "SMTP server refused 1 of 2 recipients (550)"
    assert [d.recipients for d in mailbox.delivered] == [[WARD]]


def test_email_server_down_is_transient() -> None:
    reason = expect_failure(emailer(free_port()).send, "alert", "alert:5", RAISED, permanent=False)
    assert "Connection refused" in reason


def test_email_server_that_never_greets_is_transient() -> None:
    with socket.create_server(("127.0.0.1", 0)) as silent:  # accepts into the backlog, never answers
        sender = EmailSender("127.0.0.1", silent.getsockname()[1], "none", sender=SENDER, recipients=[WARD],
                             timeout_seconds=0.3, local_hostname="vitals.hospital.test")
        reason = expect_failure(sender.send, "alert", "alert:5", RAISED, permanent=False)
    assert reason == "SMTP server did not answer in time"


def test_email_configuration_is_checked_up_front(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="only sent over TLS"):
        EmailSender("127.0.0.1", 25, "none", sender=SENDER, recipients=[WARD], username="u", password="p")
    with pytest.raises(ValueError, match="recipient"):
        EmailSender("127.0.0.1", 25, "starttls", sender=SENDER, recipients=[])
    with pytest.raises(ValueError, match="security"):
        EmailSender("127.0.0.1", 25, "ssl", sender=SENDER, recipients=[WARD])
    expect_failure(emailer(25).send, "observations", "observations:1", {}, permanent=True)
