"""The housekeeping jobs engine/scheduler.py runs on one engine node at a time (docs/housekeeping.md).

Each job is a plain function ``(store, settings..., now) -> result`` that runs its own short transactions
and returns what it did; ``now`` comes from the caller, so tests drive them with any clock.

- ``outbox_sweep``: lapsed SENDING claims back to PENDING; dead_letters and destination_down incidents.
- ``stale_devices``: devices learned from new readings; device_offline incidents.
- ``reconciliation``: per route and hour, received / stored / forwarded / confirmed; mismatch incidents.
- ``retention``: raw message content emptied after the route's retention age, in small batches.
"""
