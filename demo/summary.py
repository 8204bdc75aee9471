"""The demo's one-line summary: what the senders were answered, and what the engine and the mock EHR report.

``Observer.look`` asks the running processes over HTTP (the engine's /metrics, alerts, destinations and
open incidents; the mock EHR's /received and /control); anything that does not answer shows as ``?``.
Only counts, kinds and device ids are printed, never patient data.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import requests
from prometheus_client.parser import text_string_to_metric_families

EHR_DESTINATION = "ehr"
PAGE = 1000


@dataclass
class View:
    stored: int | None = None
    alerts: list[dict[str, Any]] | None = None
    ehr_sent: int | None = None
    ehr_waiting: int | None = None
    incidents: list[dict[str, Any]] = field(default_factory=list)
    ehr_received: int | None = None
    ehr_mode: str | None = None


class Observer:
    def __init__(self, engine_url: str, ehr_url: str, timeout: float = 3.0):
        self.engine_url = engine_url
        self.ehr_url = ehr_url
        self._timeout = timeout
        self._session = requests.Session()

    def look(self) -> View:
        view = View()
        metrics = self._get(f"{self.engine_url}/metrics", text=True)
        if metrics is not None:
            view.stored = stored_messages(metrics)
        alerts = self._get(f"{self.engine_url}/api/v1/alerts?limit={PAGE}")
        view.alerts = alerts["items"] if alerts else None
        destinations = self._get(f"{self.engine_url}/api/v1/destinations")
        ehr = next((d for d in (destinations or {}).get("items", []) if d["name"] == EHR_DESTINATION), None)
        if ehr is not None:
            view.ehr_sent = ehr["counts"]["SENT"]
            view.ehr_waiting = ehr["counts"]["PENDING"] + ehr["counts"]["SENDING"]
        incidents = self._get(f"{self.engine_url}/api/v1/incidents?state=open")
        view.incidents = incidents["items"] if incidents else []
        received = self._get(f"{self.ehr_url}/received")
        view.ehr_received = len(received) if received is not None else None
        control = self._get(f"{self.ehr_url}/control")
        view.ehr_mode = control["mode"] if control else None
        return view

    def close(self) -> None:
        self._session.close()

    def _get(self, url: str, text: bool = False) -> Any:
        try:
            answer = self._session.get(url, timeout=self._timeout)
            answer.raise_for_status()
            return answer.text if text else answer.json()
        except (requests.RequestException, ValueError):
            return None


def stored_messages(metrics: str) -> int:
    """Messages with status STORED, every route, from the Prometheus text of /metrics."""
    return int(sum(sample.value for family in text_string_to_metric_families(metrics)
                   if family.name == "vitalsstream_messages" for sample in family.samples
                   if sample.name == "vitalsstream_messages_total" and sample.labels.get("status") == "STORED"))


def summary_line(answers: Counter[tuple[str, str]], view: View) -> str:
    """``sent 131 (MLLP 60 AA, 44 CA+AA; REST 10 HTTP 201; SOAP 8 ok) | stored 131 | alerts 9: 3 critical,
    1 trend | EHR 120 received (ok), 2 waiting | incidents: device_offline MON-C-0405``"""
    by_channel: dict[str, list[str]] = {}
    for (channel, answer), count in sorted(answers.items()):
        by_channel.setdefault(channel, []).append(f"{count} {answer}")
    sent = "; ".join(f"{channel} {', '.join(parts)}" for channel, parts in by_channel.items())
    parts = [f"sent {sum(answers.values())}" + (f" ({sent})" if sent else ""),
             f"stored {_known(view.stored)}", _alerts(view.alerts),
             f"EHR {_known(view.ehr_received)} received ({view.ehr_mode or '?'}), {_known(view.ehr_waiting)} waiting"]
    if view.incidents:
        parts.append("incidents: " + ", ".join(f"{i['kind']} {i['subject']}" for i in view.incidents))
    return " | ".join(parts)


def _alerts(alerts: list[dict[str, Any]] | None) -> str:
    if alerts is None:
        return "alerts ?"
    critical = sum(a["severity"] == "critical" for a in alerts)
    trend = sum(a["kind"] == "trend" for a in alerts)
    return f"alerts {len(alerts)}: {critical} critical, {trend} trend"


def _known(value: int | None) -> str:
    return "?" if value is None else str(value)
