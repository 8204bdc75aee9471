"""Messages: search (status, route, control id, patient, time; the REST search reused), the trail of one
message (adapters/dashboard/trail.py), and reprocessing a refused message (the REST endpoint's rules reused).
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, Response

from adapters.dashboard.auth import Operating, PageError, Viewing, html_response, redirect
from adapters.dashboard.forms import choice, input_value, local_time, query, text
from adapters.dashboard.markup import (
    View,
    badge,
    esc,
    filter_form,
    input_field,
    link,
    page,
    select_field,
    stored,
    table,
)
from adapters.dashboard.trail import trail_page
from adapters.rest.deps import Store
from adapters.rest.messages import MessageId, list_messages
from adapters.rest.paging import Page, decode_cursor
from adapters.rest.reprocess import reprocess

router = APIRouter()

PAGE_SIZE = 50
STATUSES = ("STORED", "FILTERED", "ERROR")
HEADERS = ("Message", "Received", "Route", "Control id", "Sender", "Type", "Status", "ACK", "Readings", "Error")


@router.get("/messages", response_class=HTMLResponse, include_in_schema=False)
def messages_page(request: Request, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    zone = view.settings.time_zone
    status, route = choice(request, "status", STATUSES), text(request, "route", 100)
    control_id, patient = text(request, "control_id", 200), text(request, "patient", 100)
    since, until = local_time(request, "from", zone), local_time(request, "to", zone)
    found = list_messages(store, _page(request.query_params.get("cursor", "")), status=status, route=route,
                          control_id=control_id, patient_id=patient, since=since, until=until)
    fields = (select_field("status", "Status", STATUSES, status) + input_field("route", "Route", route, size=10) +
              input_field("control_id", "Control id", control_id) + input_field("patient", "Patient", patient) +
              input_field("from", "Received from", input_value(since, zone), "datetime-local", 18) +
              input_field("to", "to", input_value(until, zone), "datetime-local", 18))
    filters = {"status": status, "route": route, "control_id": control_id, "patient": patient,
               "from": input_value(since, zone), "to": input_value(until, zone)}
    older = (f'<p>{link("/messages" + query(**filters, cursor=found["next_cursor"]), "Older messages")}</p>'
             if found["next_cursor"] else "")
    body = (filter_form("/messages", fields) +
            table("Messages, newest first (content is never listed)", HEADERS,
                  [_row(view, item) for item in found["items"]], "No messages match these filters.") + older)
    return html_response(request, viewer, page(view, "Messages", body, "/messages"))


@router.get("/messages/{message_id}", response_class=HTMLResponse, include_in_schema=False)
def message_page(request: Request, message_id: MessageId, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    return html_response(request, viewer, trail_page(view, store, message_id, request.query_params.get("raw") == "1"))


@router.post("/messages/{message_id}/reprocess", include_in_schema=False)
async def reprocess_message(request: Request, message_id: MessageId, posted: Operating, store: Store) -> Response:
    try:
        answer = await reprocess(message_id, request, store)
    except HTTPException as refused:
        raise PageError(refused.status_code, "Not reprocessed", str(refused.detail)) from None
    created: dict[str, Any] = json.loads(bytes(answer.body))
    return redirect(f"/messages/{created['message_id']}")


def _page(cursor: str) -> Page:
    try:
        return Page(PAGE_SIZE, decode_cursor(cursor) if cursor else None)
    except RequestValidationError:
        return Page(PAGE_SIZE)


def _row(view: View, item: dict[str, Any]) -> list[str]:
    received: datetime = stored(item["received_at"])
    return [link(f"/messages/{item['id']}", str(item["id"]), f"Trail of message {item['id']}"), view.when(received),
            esc(item["route"]), esc(item["control_id"]),
            esc(f"{item['sending_application']} / {item['sending_facility']}"), esc(item["message_type"]),
            badge(item["status"].lower(), item["status"]), esc(item["ack_code"]), esc(item["reading_count"]),
            esc(_first_line(item["error"]))]


def _first_line(text_value: str | None, limit: int = 120) -> str:
    line = (text_value or "").splitlines()[0] if text_value else ""
    return line if len(line) <= limit else line[:limit - 1] + "…"
