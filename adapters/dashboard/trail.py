"""The trail of one message: received, stored (or refused), its ACKs, readings, alerts, every outbox record it
queued with each delivery attempt and the destination's answer (the EHR's record id, or its error).

The REST trail (adapters/rest/messages.message_trail) gives the message, readings, alerts and duplicates;
two more queries add the outbox rows (``ix_outbox_message``) and their attempts (``ix_outbox_attempts_row``),
one by primary key the raw content. Raw content (patient data) is shown only on request (``?raw=1``) and
only to an operator or admin; with sign-in off, only to a loopback client (the REST API's rule).
"""
from __future__ import annotations

from typing import Any

from fastapi import HTTPException
from sqlalchemy import select
from sqlalchemy.engine import Row

from adapters.dashboard.auth import PageError
from adapters.dashboard.markup import View, badge, definition_list, esc, link, number, page, stored, table
from adapters.rest.auth import is_loopback
from adapters.rest.messages import message_trail
from adapters.rest.outbox import ATTEMPTS, OUTBOX
from adapters.sql_store import SqlStore
from adapters.sql_tables import messages as m
from adapters.sql_tables import outbox as o
from adapters.sql_tables import outbox_attempts as t

MAX_DELIVERIES = 200
NOT_REPROCESSED = ("REST", "SOAP")  # their callers send them again


def trail_page(view: View, store: SqlStore, message_id: int, show_raw: bool) -> str:
    try:
        trail = message_trail(store, view.request, message_id, raw=False)
    except HTTPException:
        raise PageError(404, "No such message", f"There is no message {message_id}.") from None
    allowed = may_see_raw(view)
    with store.engine.connect() as conn:
        columns = [m.c.reprocess_of] + ([m.c.raw] if allowed and show_raw else [])
        extra = conn.execute(select(*columns).where(m.c.id == message_id)).one()
        deliveries = conn.execute(OUTBOX.where(o.c.message_id == message_id).order_by(o.c.id)
                                  .limit(MAX_DELIVERIES)).all()
        attempts = conn.execute(ATTEMPTS.add_columns(t.c.outbox_id).where(
            t.c.outbox_id.in_([row.id for row in deliveries])).order_by(t.c.outbox_id, t.c.attempt)).all() \
            if deliveries else []
    message = trail["message"]
    body = (_summary(view, message, extra.reprocess_of) + _reprocess(view, message) +
            f"<h2>Trail</h2>{_steps(view, trail, deliveries, attempts)}"
            f"<h2>Acknowledgements</h2>{_acks(trail['acks'])}"
            f"<h2>Readings</h2>{_readings(view, trail['readings'])}"
            f"<h2>Alerts</h2>{_alerts(view, trail['alerts'])}"
            f"{_duplicates(view, trail['duplicates'])}"
            f"<h2>Raw content</h2>{_raw(view, message_id, allowed, getattr(extra, 'raw', None), show_raw)}")
    return page(view, f"Message {message_id}", body, "/messages")


def may_see_raw(view: View) -> bool:
    if view.settings.sign_in:
        return view.viewer.may("operator")
    client = view.request.client.host if view.request.client else ""
    return is_loopback(client)


def _summary(view: View, message: dict[str, Any], reprocess_of: int | None) -> str:
    facts = [("Status", badge(message["status"].lower(), message["status"])), ("Route", esc(message["route"])),
             ("Control id", esc(message["control_id"])),
             ("Sender", esc(f"{message['sending_application']} / {message['sending_facility']}")),
             ("Type", esc(f"{message['message_type']} v{message['version']}")), ("Peer", esc(message["peer"])),
             ("Received", view.when(stored(message["received_at"]))),
             ("Answered", view.when(stored(message["processed_at"]))), ("ACK code", esc(message["ack_code"])),
             ("Readings", esc(message["reading_count"])),
             ("Content hash", f"<code>{esc(message['content_hash'])}</code>")]
    if message["duplicate_of"]:
        original = message["duplicate_of"]
        facts.append(("Duplicate of", link(f"/messages/{original}", f"message {original}")))
    if reprocess_of:
        facts.append(("Reprocess of", link(f"/messages/{reprocess_of}", f"message {reprocess_of}")))
    if message["error"]:
        facts.append(("Error", f'<pre class="wrap">{esc(message["error"])}</pre>'))
    return definition_list(facts)


def _reprocess(view: View, message: dict[str, Any]) -> str:
    if message["status"] == "STORED" or message["message_type"] in NOT_REPROCESSED:
        return ""
    if not view.viewer.may("operator"):
        return '<p class="note">An operator can send this message through its route again.</p>'
    button = view.button(f"/messages/{message['id']}/reprocess", "Reprocess", element_id="reprocess",
                         confirm=f"Send message {message['id']} through route {message['route']} again?")
    return f'<p class="note">Refused or filtered: {button} sends its stored content through its route again.</p>'


def _steps(view: View, trail: dict[str, Any], deliveries: list[Row], attempts: list[Row]) -> str:
    message = trail["message"]
    received = stored(message["received_at"])
    steps = [(received, "Received", f"route {esc(message['route'])}, peer {esc(message['peer'])}")]
    outcome = {"STORED": "Stored", "FILTERED": "Filtered", "ERROR": "Refused"}.get(message["status"], message["status"])
    steps.append((stored(message["processed_at"]) or received, outcome,
                  f"{message['reading_count']} reading(s), answered {esc(message['ack_code'] or 'no ACK')}"))
    for alert in trail["alerts"]:
        steps.append((stored(alert["created_at"]), "Alert",
                      f"{link('/alerts/' + str(alert['id']), 'alert ' + str(alert['id']))}: {esc(alert['message'])}"))
    by_row: dict[int, list[Row]] = {}
    for attempt in attempts:
        by_row.setdefault(attempt.outbox_id, []).append(attempt)
    for row in deliveries:
        steps.append((row.created_at, f"Queued for {esc(row.destination)}",
                      f"{esc(row.kind)} <code>{esc(row.idempotency_key)}</code>, now "
                      f"{badge(row.state.lower(), row.state)}"))
        for attempt in by_row.get(row.id, []):
            answer = (f"answer: {esc(attempt.remote_id)}" if attempt.remote_id else
                      f"error: {esc(attempt.error)}" if attempt.error else "")
            steps.append((attempt.started_at, f"Attempt {attempt.attempt} to {esc(row.destination)}",
                          f"{esc(attempt.outcome)} in {number(attempt.duration_ms)} ms on {esc(attempt.node)}; "
                          f"{answer}"))
    rows = [[view.when(moment), step, detail] for moment, step, detail in
            sorted(steps, key=lambda step: step[0] or received)]
    return table(f"What happened to message {message['id']}", ("When", "Step", "Detail"), rows, "")


def _acks(acks: list[str]) -> str:
    if not acks:
        return "<p>No ACK was sent (an ACK itself, or a submission answered over HTTP).</p>"
    return "".join(f'<pre class="hl7" aria-label="ACK {n}">{esc(ack.replace(chr(13), chr(10)).strip())}</pre>'
                   for n, ack in enumerate(acks, 1))


def _readings(view: View, readings: list[dict[str, Any]]) -> str:
    rows = [[esc(r["patient_id"]), esc(r["vital"]), f"{esc(r['comparator'])}{number(r['value'])}", esc(r["unit"]),
             view.when(stored(r["observed_at"])), esc(r["device_id"]),
             esc(f"{r['source_code']} ({r['source_system']})")]
            for r in readings]
    return table("Readings stored from this message", ("Patient", "Vital", "Value", "Unit", "Observed", "Device",
                                                      "Code"), rows, "No readings were stored.")


def _alerts(view: View, alerts: list[dict[str, Any]]) -> str:
    rows = [[link(f"/alerts/{a['id']}", str(a["id"]), f"Alert {a['id']}"), badge(a["severity"], a["severity"]),
             badge(a["state"], a["state"]), esc(a["patient_id"]), esc(a["message"])] for a in alerts]
    return table("Alerts raised or updated by its readings", ("Alert", "Severity", "State", "Patient", "What"), rows,
                 "No alerts.")


def _duplicates(view: View, duplicates: list[dict[str, Any]]) -> str:
    if not duplicates:
        return ""
    rows = [[link(f"/messages/{d['id']}", str(d["id"])), view.when(stored(d["received_at"])), esc(d["status"]),
             esc(d["peer"])] for d in duplicates]
    return "<h2>Duplicates</h2>" + table("Messages sent again with this key and other content",
                                         ("Message", "Received", "Status", "Peer"), rows, "")


def _raw(view: View, message_id: int, allowed: bool, raw: str | None, show_raw: bool) -> str:
    if not allowed:
        return "<p>The raw content holds patient data: it is shown to operators and admins only.</p>"
    if not show_raw:
        return f'<p>{link(f"/messages/{message_id}?raw=1#raw", "Show the raw content")} (patient data).</p>'
    if raw is None:
        return "<p>Not kept any more: retention emptied it.</p>"
    return f'<pre id="raw" class="hl7" tabindex="0">{esc(raw.replace(chr(13), chr(10)).strip())}</pre>'
