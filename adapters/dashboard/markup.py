"""The HTML every page shares, as small functions over f-strings: everything interpolated goes through ``esc``.

``View`` is what a page renders for (the request, the visitor, the settings, the time now); ``page`` wraps a
body in the layout (skip link, navigation, the sign-in banner, one h1); the rest build tables, forms,
buttons, badges and times. No style attributes anywhere: the Content-Security-Policy allows our CSS file only.
"""
from __future__ import annotations

import hashlib
import html
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from fastapi import Request

from adapters.dashboard.auth import Viewer, settings_of
from adapters.dashboard.settings import DashboardSettings
from adapters.rest.json_rows import iso, now

NAVIGATION = (("/", "Integrations"), ("/alerts", "Alerts"), ("/stats", "Statistics"), ("/messages", "Messages"),
              ("/operations", "Incidents & outbox"))


@dataclass(frozen=True)
class View:
    request: Request
    viewer: Viewer
    settings: DashboardSettings
    now: datetime  # UTC, naive: as stored

    @classmethod
    def of(cls, request: Request, viewer: Viewer) -> View:
        return cls(request, viewer, settings_of(request), now())

    def when(self, moment: datetime | None) -> str:
        """A stored time in the dashboard's zone, machine-readable in ``datetime``."""
        if moment is None:
            return ""
        shown = moment.replace(tzinfo=UTC).astimezone(self.settings.time_zone)
        return f'<time datetime="{iso(moment)}">{shown:%Y-%m-%d %H:%M:%S}</time>'

    def button(self, action: str, label: str, *, confirm: str = "", back: str = "", danger: bool = False,
               fields: dict[str, str] | None = None, element_id: str = "", aria_label: str = "") -> str:
        """A one-button POST form with the CSRF token; ``confirm``: JS asks before sending."""
        hidden = {"csrf": self.viewer.csrf, **({"next": back} if back else {}), **(fields or {})}
        inputs = "".join(f'<input type="hidden" name="{esc(k)}" value="{esc(v)}">' for k, v in hidden.items())
        attributes = f' data-confirm="{esc(confirm)}"' if confirm else ""
        button_attributes = (f' id="{esc(element_id)}"' if element_id else "") + (
            f' aria-label="{esc(aria_label)}"' if aria_label else "")
        css = "button danger" if danger else "button"
        return (f'<form class="inline" method="post" action="{esc(action)}"{attributes}>{inputs}'
                f'<button type="submit" class="{css}"{button_attributes}>{esc(label)}</button></form>')


def esc(value: object) -> str:
    return "" if value is None else html.escape(str(value), quote=True)


def page(view: View, title: str, body: str, active: str = "") -> str:
    current = ' aria-current="page"'
    nav = "".join(f'<a href="{href}"{current if href == active else ""}>{esc(text)}</a>'
                  for href, text in NAVIGATION)
    return (f'<!doctype html><html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{esc(title)} · VitalsStream</title><link rel="stylesheet" href="/static/dashboard.css">'
            f'<script src="/static/dashboard.js" defer></script></head>'
            f'<body data-refresh-ms="{int(view.settings.refresh_seconds * 1000)}">'
            f'<a class="skip" href="#main">Skip to content</a>'
            f'<header class="top"><span class="brand">VitalsStream</span>'
            f'<nav aria-label="Dashboard">{nav}</nav>{_who(view)}</header>{_banner(view)}'
            f'<main id="main" tabindex="-1"><h1>{esc(title)}</h1>{body}</main>'
            f'<footer>Times in {esc(view.settings.time_zone.key)}. Page built {view.when(view.now)}.</footer>'
            f'</body></html>')


def _who(view: View) -> str:
    viewer = view.viewer
    if view.settings.sign_in and not viewer.signed_in:
        return ""
    if not view.settings.sign_in:
        return f'<div class="who">Acting as <strong>{esc(viewer.name)}</strong> <a href="/signin">change</a></div>'
    sign_out = view.button("/signout", "Sign out")
    return f'<div class="who"><strong>{esc(viewer.name)}</strong> ({esc(viewer.role)}) {sign_out}</div>'


def _banner(view: View) -> str:
    if view.settings.sign_in:
        return ""
    return ('<p class="banner" role="note"><strong>Sign-in is off:</strong> no users are configured, so anyone '
            'who can reach this address acts as admin. Set VITALS_DASHBOARD_USERS to turn sign-in on.</p>')


def error_page(view: View, title: str, text: str) -> str:
    return page(view, title, f'<p class="problem">{esc(text)}</p><p><a href="/">Back to the dashboard</a></p>')


def table(caption: str, headers: Sequence[str], rows: Iterable[Sequence[str] | str], empty: str,
          body_id: str = "", live: str = "", css: str = "") -> str:
    """``rows`` hold HTML already escaped: a sequence of cells, or a whole ``<tr>`` (from ``tr``).
    ``live``: the URL dashboard.js refreshes the body from."""
    head = "".join(f'<th scope="col">{esc(header)}</th>' for header in headers)
    body = rows_html(rows, len(headers), empty)
    attributes = (f' id="{esc(body_id)}"' if body_id else "") + (live_attributes(live, body) if live else "")
    return (f'<div class="scroll"><table class="{esc(css)}"><caption>{esc(caption)}</caption>'
            f'<thead><tr>{head}</tr></thead><tbody{attributes}>{body}</tbody></table></div>')


def live_attributes(url: str, content: str) -> str:
    """What dashboard.js needs to refresh an element from ``url``: the URL and a digest of what it shows now
    (the fragment's answer carries the digest of its content in X-Digest: equal digests, nothing swapped)."""
    return f' data-live="{esc(url)}" data-digest="{digest(content)}"'


def digest(content: str) -> str:
    return hashlib.sha256(content.encode()).hexdigest()[:20]


def rows_html(rows: Iterable[Sequence[str] | str], columns: int, empty: str) -> str:
    """The rows of a table body (what the live refresh swaps in)."""
    lines = "".join(row if isinstance(row, str) else tr(row) for row in rows)
    return lines or f'<tr><td colspan="{columns}" class="empty">{esc(empty)}</td></tr>'


def tr(cells: Sequence[str], row_id: str = "", css: str = "") -> str:
    attributes = (f' id="{esc(row_id)}"' if row_id else "") + (f' class="{esc(css)}"' if css else "")
    return f"<tr{attributes}>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def badge(kind: str, text: str) -> str:
    return f'<span class="badge badge-{esc(kind)}">{esc(text)}</span>'


def link(href: str, text: str, label: str = "") -> str:
    aria = f' aria-label="{esc(label)}"' if label else ""
    return f'<a href="{esc(href)}"{aria}>{esc(text)}</a>'


def select_field(name: str, label: str, options: Sequence[str], selected: str | None, any_label: str = "any") -> str:
    choices = f'<option value="">{esc(any_label)}</option>' + "".join(
        f'<option value="{esc(option)}"{" selected" if option == selected else ""}>{esc(option)}</option>'
        for option in options)
    return f'<label>{esc(label)} <select name="{esc(name)}">{choices}</select></label>'


def input_field(name: str, label: str, value: str | None, kind: str = "text", size: int = 14) -> str:
    return (f'<label>{esc(label)} <input type="{esc(kind)}" name="{esc(name)}" value="{esc(value)}" '
            f'size="{size}"></label>')


def filter_form(action: str, fields: str, legend: str = "Filter") -> str:
    return (f'<form class="filters" method="get" action="{esc(action)}"><fieldset><legend>{esc(legend)}</legend>'
            f'{fields}<button type="submit" class="button">Apply</button> <a href="{esc(action)}">Clear</a>'
            f'</fieldset></form>')


def definition_list(items: Sequence[tuple[str, str]]) -> str:
    """``items`` of (term, HTML already escaped)."""
    return "<dl class=\"facts\">" + "".join(f"<dt>{esc(term)}</dt><dd>{value}</dd>" for term, value in items) + "</dl>"


def stored(text: str | None) -> datetime | None:
    """A time the REST functions answered (ISO 8601 with Z) back as stored: UTC, naive."""
    return datetime.fromisoformat(text.removesuffix("Z")) if text else None


def number(value: float | int | None, digits: int = 2) -> str:
    """A value as nurses read it: 72, 37.5, 0.25 (trailing zeros dropped)."""
    if value is None:
        return ""
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)
    return esc(text)
