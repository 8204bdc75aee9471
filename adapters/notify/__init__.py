"""Alert notifications: the senders the outbox worker uses for route destinations of kind ``notify``.

Each implements the Sender contract of adapters/delivery.py for the outbox kinds ``alert`` and
``alert_resolved``: a signed JSON webhook, a Slack incoming webhook, and SMTP email. The words come from
transforms/notification_text.py. See docs/notify.md for payloads, the signature scheme and failure rules.
"""
from adapters.notify.email import EmailSender, message_id
from adapters.notify.slack import SlackSender, slack_message
from adapters.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookSender, signature

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "EmailSender",
    "SlackSender",
    "WebhookSender",
    "message_id",
    "signature",
    "slack_message",
]
