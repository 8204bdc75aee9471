"""Alert notifications as plain-text email over SMTP (smtplib), with STARTTLS or implicit TLS.

One connection per notification (alerts are rare; a held connection would time out between them). TLS
verifies the server's certificate and name (``ssl.create_default_context()`` unless a context is given);
credentials are refused without TLS. The Message-ID is derived from the idempotency key, so every retry of
one notification carries the same Message-ID and a receiver can drop the copies.

Failures: a 4xx SMTP reply, a lost or refused connection, a timeout or a failed TLS handshake is transient;
a 5xx reply (550 mailbox unavailable, 535 authentication failed, 530 TLS required) or a server that lacks
STARTTLS or AUTH when we need it is permanent. When some recipients are refused the notification is failed
(transient if any refusal was 4xx), so a missing recipient is seen: the retry goes to all recipients again
with the same Message-ID. Reasons carry reply codes, never addresses or server text.
"""
from __future__ import annotations

import hashlib
import re
import smtplib
import ssl
from collections.abc import Sequence
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Any

from adapters.delivery import DeliveryFailed
from adapters.notify.webhook import event_name
from transforms.notification_text import notification_text

SECURITY_MODES = ("starttls", "tls", "none")
_ENHANCED_STATUS = re.compile(rb"^([245]\.\d{1,3}\.\d{1,3})\b")
_NOT_ATEXT = re.compile(r"[^A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")


def message_id(key: str, sender: str) -> str:
    """``<alert.5.1a2b3c4d5e6f@sender-domain>``: readable, and unique per sending address and key."""
    readable = ".".join(part for part in _NOT_ATEXT.split(key) if part) or "notification"
    digest = hashlib.sha256(f"{sender}\n{key}".encode()).hexdigest()[:12]
    domain = sender.rpartition("@")[2] or "vitalsstream.invalid"
    return f"<{readable}.{digest}@{domain}>"


class EmailSender:
    """Sender (adapters/delivery.py) for route destinations of kind notify that go to email recipients."""

    def __init__(self, host: str, port: int, security: str, *, sender: str, recipients: Sequence[str],
                 username: str | None = None, password: str | None = None, timeout_seconds: float = 10.0,
                 ssl_context: ssl.SSLContext | None = None, local_hostname: str | None = None):
        if security not in SECURITY_MODES:
            raise ValueError(f"security must be one of {', '.join(SECURITY_MODES)}")
        if not recipients:
            raise ValueError("email notifications need at least one recipient")
        if (username is None) != (password is None):
            raise ValueError("give both username and password, or neither")
        if username is not None and security == "none":
            raise ValueError("SMTP credentials are only sent over TLS (security starttls or tls)")
        self.host, self.port, self.security = host, port, security
        self.sender, self.recipients = sender, list(recipients)
        self.username, self.password = username, password
        self.timeout_seconds = timeout_seconds
        self.ssl_context = ssl_context
        self.local_hostname = local_hostname  # the EHLO name; smtplib asks the resolver for our FQDN without it

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        event_name(kind)  # refuses kinds other than alert and alert_resolved
        message = self.message(kind, key, payload)
        try:
            smtp = self._connect()
        except (smtplib.SMTPException, OSError) as error:
            raise failure(error) from None
        try:
            if self.username is not None and self.password is not None:
                smtp.login(self.username, self.password)
            refused = smtp.send_message(message)
        except (smtplib.SMTPException, OSError) as error:
            smtp.close()
            raise failure(error) from None
        _quit(smtp)
        if refused:
            raise _refused(refused, len(self.recipients))
        return str(message["Message-ID"])

    def message(self, kind: str, key: str, payload: dict[str, Any]) -> EmailMessage:
        text = notification_text(kind, payload)
        message = EmailMessage()
        message["Subject"] = text.subject
        message["From"] = self.sender
        message["To"] = ", ".join(self.recipients)
        message["Date"] = format_datetime(datetime.now(UTC))
        message["Message-ID"] = message_id(key, self.sender)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no out-of-office replies to a pager
        message.set_content(text.body)
        return message

    def _connect(self) -> smtplib.SMTP:
        context = self.ssl_context or ssl.create_default_context()
        if self.security == "tls":
            return smtplib.SMTP_SSL(self.host, self.port, local_hostname=self.local_hostname,
                                    timeout=self.timeout_seconds, context=context)
        smtp = smtplib.SMTP(self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout_seconds)
        try:
            if self.security == "starttls":
                smtp.starttls(context=context)  # refuses a server that does not offer it: no silent plain text
            return smtp
        except BaseException:
            smtp.close()
            raise

    def close(self) -> None:
        """Nothing held between notifications."""


def _quit(smtp: smtplib.SMTP) -> None:
    """Say goodbye after the message was accepted: a failing QUIT must not turn a delivery into a failure."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def failure(error: BaseException) -> DeliveryFailed:
    """The DeliveryFailed for an smtplib or socket error: 4xx and the network transient, 5xx permanent."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return _refused(error.recipients, len(error.recipients))
    if isinstance(error, smtplib.SMTPResponseException):
        return _reply_failure(error.smtp_code, error.smtp_error, _stage(error))
    if isinstance(error, smtplib.SMTPNotSupportedError):
        return DeliveryFailed(f"SMTP server does not support what is configured: {error}", permanent=True)
    if isinstance(error, smtplib.SMTPServerDisconnected):  # smtplib reports a read timeout this way too
        if isinstance(error.__context__, TimeoutError):
            return DeliveryFailed("SMTP server did not answer in time")
        return DeliveryFailed("SMTP server closed the connection")
    if isinstance(error, smtplib.SMTPException):  # e.g. no AUTH mechanism in common
        return DeliveryFailed(f"SMTP failed: {error}", permanent=True)
    if isinstance(error, ssl.SSLCertVerificationError):
        return DeliveryFailed(f"TLS with the SMTP server failed: certificate verify failed: {error.verify_message}")
    if isinstance(error, TimeoutError):
        return DeliveryFailed("SMTP server did not answer in time")
    if isinstance(error, OSError) and error.strerror:
        return DeliveryFailed(f"cannot reach the SMTP server: [Errno {error.errno}] {error.strerror}")
    return DeliveryFailed(f"cannot reach the SMTP server: {type(error).__name__}")


def _stage(error: smtplib.SMTPResponseException) -> str:
    return {smtplib.SMTPSenderRefused: "for the sender", smtplib.SMTPDataError: "for the message",
            smtplib.SMTPConnectError: "on connect", smtplib.SMTPHeloError: "to EHLO",
            smtplib.SMTPAuthenticationError: "to login"}.get(type(error), "")


def _reply_failure(code: int, text: bytes | str, stage: str) -> DeliveryFailed:
    raw = text.encode("utf-8", "replace") if isinstance(text, str) else text
    enhanced = _ENHANCED_STATUS.match(raw or b"")
    described = f"SMTP server replied {code}" + (f" ({enhanced.group(1).decode()})" if enhanced else "")
    return DeliveryFailed(f"{described} {stage}".rstrip(), permanent=500 <= code < 600)


def _refused(refused: dict[str, tuple[int, bytes]], recipient_count: int) -> DeliveryFailed:
    codes = sorted({code for code, _ in refused.values()})
    permanent = all(500 <= code < 600 for code in codes)
    shown = ", ".join(str(code) for code in codes)
    return DeliveryFailed(f"SMTP server refused {len(refused)} of {recipient_count} recipients ({shown})",
                          permanent=permanent)
