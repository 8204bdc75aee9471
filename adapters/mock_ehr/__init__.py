"""A mock hospital EHR that speaks our EHR contract (wsdl/ehr.wsdl) for tests, benchmarks and demos.

``server.serve`` runs it for ``vitalsstream mock-ehr``; ``server.MockEhr`` starts it in a background thread.
It is a real SOAP service (Spyne behind a2wsgi and uvicorn) at ``/ehr``; it keeps what it received in an
append-only JSON lines file (``state.ReceivedLog``), enforces idempotency keys, shows its records at
``GET /received`` and can be told to misbehave through ``/control`` (``control.Behaviour``). See docs/ehr.md.

Nothing here imports Spyne at import time: ``server`` imports the app when it builds one.
"""
