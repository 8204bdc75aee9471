"""The published contract (wsdl/vitals.wsdl, wsdl/vitals12.wsdl) is what the server serves.

When this fails, the service changed: if on purpose, save the served WSDL over the file (address
http://localhost:8080/...) and tell the partners.
"""
from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from lxml import etree

from adapters.soap import soap_app
from adapters.sql_store import SqlStore
from tests.http_client import serving

WSDL = Path(__file__).resolve().parent.parent / "wsdl"
ADDRESS = "{http://schemas.xmlsoap.org/wsdl/}port"
SCHEMA = "{http://www.w3.org/2001/XMLSchema}schema"


def canonical(data: bytes) -> bytes:
    """C14N of the document with every service address blanked and the schema's top-level declarations in
    name order (their order carries no meaning, and Spyne's varies from process to process)."""
    root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    for schema in root.iter(SCHEMA):
        schema[:] = sorted(schema, key=lambda node: (node.tag, node.get("name", "")))
    for port in root.iter(ADDRESS):
        for address in port:
            address.set("location", "")
    return etree.tostring(root, method="c14n")


@pytest.mark.parametrize("path, file", [("vitals", "vitals.wsdl"), ("vitals12", "vitals12.wsdl")])
def test_the_served_wsdl_is_the_published_one(tmp_path: Path, path: str, file: str) -> None:
    app = FastAPI()
    app.mount("/soap", soap_app(SqlStore.from_url(f"sqlite:///{tmp_path / 'v.db'}")))
    with serving(app) as base:
        served = httpx.get(f"{base}/soap/{path}?wsdl", timeout=10)
    assert served.status_code == 200
    assert canonical(served.content) == canonical((WSDL / file).read_bytes())
    assert b"<!DOCTYPE" not in (WSDL / file).read_bytes()
