"""Alert notifications into a Slack channel through an incoming webhook (https://hooks.slack.com/services/...).

Slack takes ``{"text": ..., "blocks": [...]}``: ``text`` is what the phone notification shows, the blocks are
what the channel shows (a header with the subject, a section with the body). Slack answers ``200 ok``, or an
error status with a short error code as the body (``400 invalid_payload``, ``403 action_prohibited``,
``404 channel_not_found``, ``410 channel_is_archived``, ``429`` when rate limited, ``5xx``). The error code is
added to the failure reason when it is such a code (lower-case letters and underscores), never other text.

The webhook URL is a secret (whoever has it can post into the channel): it is never put into a reason.
"""
from __future__ import annotations

import json
import re
from typing import Any

import requests

from adapters.notify.webhook import USER_AGENT, HttpPoster, event_name
from transforms.notification_text import NotificationText, notification_text

HEADER_LIMIT = 150  # Slack's limit for a header block's text
SECTION_LIMIT = 3000  # and for a section's
_SLACK_ERROR_CODE = re.compile(r"[a-z_]{1,64}")


def slack_message(text: NotificationText) -> dict[str, Any]:
    """The incoming-webhook body for one notification."""
    return {
        "text": escape(text.subject),
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": _clip(text.subject, HEADER_LIMIT)}},
            {"type": "section", "text": {"type": "plain_text", "text": _clip(text.body, SECTION_LIMIT)}},
        ],
    }


def escape(text: str) -> str:
    """Slack mrkdwn control characters (``<35 °C`` must not become a link): &, < and > as entities."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_error_code(response: requests.Response) -> str:
    """Slack's error code from a failed answer ("channel_not_found"); '' when the body is anything else."""
    code = response.text.strip()
    return code if _SLACK_ERROR_CODE.fullmatch(code) else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class SlackSender:
    """Sender (adapters/delivery.py) for route destinations of kind notify with a Slack incoming webhook."""

    def __init__(self, url: str, timeout_seconds: float = 10.0, proxy: str | None = None,
                 ca_file: str | None = None):
        self.http = HttpPoster(url, "Slack", timeout_seconds, proxy, ca_file, error_detail=slack_error_code)

    def send(self, kind: str, key: str, payload: dict[str, Any]) -> str:
        event_name(kind)  # refuses kinds other than alert and alert_resolved
        body = json.dumps(slack_message(notification_text(kind, payload)), ensure_ascii=False).encode("utf-8")
        self.http.post(body, {"Content-Type": "application/json; charset=utf-8", "User-Agent": USER_AGENT})
        return ""  # Slack gives incoming-webhook posts no id

    def close(self) -> None:
        self.http.close()
