"""The home page: one tile per route and per outbox destination, green / yellow / red with the reason.

``GET /`` is the page; ``GET /integrations/tiles`` the tiles alone, which dashboard.js fetches every few
seconds (a wall screen stays current without a reload). ``window`` (1h, 24h, 7d) sets the counters' span.
"""
from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from adapters.dashboard.auth import Viewing, fragment_response, html_response
from adapters.dashboard.facts import DestinationTile, RouteTile, tiles
from adapters.dashboard.forms import choice
from adapters.dashboard.health import WINDOW_MINUTES, Verdict
from adapters.dashboard.markup import View, digest, esc, link, live_attributes, number, page
from adapters.rest.deps import Store

router = APIRouter()

WINDOWS = {"1h": timedelta(hours=1), "24h": timedelta(hours=24), "7d": timedelta(days=7)}
DEFAULT_WINDOW = "24h"
SYMBOLS = {"green": "✔", "yellow": "▲", "red": "✖"}


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def integrations_page(request: Request, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    window = choice(request, "window", WINDOWS) or DEFAULT_WINDOW
    current = ' aria-current="true"'
    windows = " ".join(f'<a href="/?window={key}"{current if key == window else ""}>{key}</a>' for key in WINDOWS)
    shown = _tiles(view, store, window)
    body = (f'<p class="controls">Counters over the last: {windows}. Health looks at the last '
            f'{WINDOW_MINUTES} minutes.</p>'
            f'<p class="live-status" aria-live="polite"></p>'
            f'<div id="tiles"{live_attributes(f"/integrations/tiles?window={window}", shown)}>{shown}</div>')
    return html_response(request, viewer, page(view, "Integrations", body, "/"))


@router.get("/integrations/tiles", response_class=HTMLResponse, include_in_schema=False)
def integration_tiles(request: Request, viewer: Viewing, store: Store) -> HTMLResponse:
    view = View.of(request, viewer)
    content = _tiles(view, store, choice(request, "window", WINDOWS) or DEFAULT_WINDOW)
    return fragment_response(request, viewer, content, digest(content))


def _tiles(view: View, store: Store, window: str) -> str:
    routes, destinations = tiles(store, view.request.app.state, view.settings, view.now, WINDOWS[window])
    route_tiles = "".join(_route(view, tile, window) for tile in routes) or '<p class="empty">No routes yet.</p>'
    destination_tiles = "".join(_destination(view, tile, window) for tile in destinations) or (
        '<p class="empty">No outbox destinations are configured.</p>')
    return (f'<h2>Routes</h2><div class="tiles">{route_tiles}</div>'
            f'<h2>Destinations</h2><div class="tiles">{destination_tiles}</div>')


def _heading(kind: str, name: str, verdict: Verdict, note: str = "") -> str:
    symbol = SYMBOLS[verdict.status]
    return (f'<h3 id="{kind}-{esc(name)}"><span class="status"><span aria-hidden="true">{symbol}</span> '
            f'{esc(verdict.word)}</span> {esc(name)} <small>{esc(note or kind)}</small></h3>'
            f'<p class="reason">{esc(verdict.reason)}</p>')


def _counters(pairs: list[tuple[str, int | str]]) -> str:
    return '<dl class="counters">' + "".join(f"<div><dt>{esc(k)}</dt><dd>{esc(v)}</dd></div>" for k, v in pairs) + (
        "</dl>")


def _route(view: View, tile: RouteTile, window: str) -> str:
    c = tile.counters
    p50, p90, samples = tile.latency_ms
    latency = (f"ACK latency p50 {number(p50, 1)} ms, p90 {number(p90, 1)} ms ({samples} in {WINDOW_MINUTES} min)"
               if samples else f"ACK latency: no messages in {WINDOW_MINUTES} min")
    last = view.when(tile.last_received_at) if tile.last_received_at else f"none in {window}"
    note = "route" if tile.configured else "route (not configured now)"
    counters = _counters([(key, c[key]) for key in ("received", "filtered", "stored", "errored", "queued", "sent")])
    return (f'<article class="tile tile-{tile.verdict.status}" aria-labelledby="route-{esc(tile.name)}">'
            f'{_heading("route", tile.name, tile.verdict, note)}{counters}'
            f'<p class="meta">Last message {last}. {latency}.</p>'
            f'<p class="meta">{link(f"/messages?route={tile.name}", "Messages", f"Messages of route {tile.name}")}'
            f' · {link(f"/messages?route={tile.name}&status=ERROR", "Errors", f"Errors of route {tile.name}")}'
            f'</p></article>')


def _destination(view: View, tile: DestinationTile, window: str) -> str:
    f = tile.facts
    last = view.when(tile.last_sent_at) if tile.last_sent_at else f"none in {window}"
    kind = f"{tile.kind or 'destination'}" + (f" of route {tile.route}" if tile.route else "")
    counters = _counters([("queued", f.queued), ("sent", tile.sent), ("dead", f.dead_letters),
                          (f"failed {WINDOW_MINUTES} min", f.failed_recent)])
    return (f'<article class="tile tile-{tile.verdict.status}" aria-labelledby="destination-{esc(tile.name)}">'
            f'{_heading("destination", tile.name, tile.verdict, kind)}{counters}'
            f'<p class="meta">Last sent {last}.</p>'
            f'<p class="meta">{link("/operations#destinations", "Outbox", f"Outbox of {tile.name}")}</p>'
            f'</article>')
