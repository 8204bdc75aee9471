"""The dashboard: HTML pages served by the engine at ``/`` for the on-call nurse lead and the integration engineer.

One module per job: ``integrations`` (a tile per route and destination, ``health`` decides its colour from
``facts``), ``alerts`` (the live list, acknowledge, resolve) and ``alert_detail`` (the drill-down with its
chart), ``messages`` and ``trail`` (search, one message's trail, reprocess), ``operations`` (incidents,
destinations, dead letters), ``stats`` and ``stats_queries``; ``svg`` draws the charts, ``markup`` the
shared HTML, ``forms`` reads what the browser sent; ``auth``, ``passwords``, ``signin`` and ``settings``
handle who may see and do what. ``app.mount_dashboard`` puts it on the engine's FastAPI app.
"""
from __future__ import annotations
