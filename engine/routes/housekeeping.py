"""A route's housekeeping settings: how often its devices must be heard from, how long raw content is kept.

```yaml
devices:
  expected_interval_seconds: 300   # a device silent longer raises a device_offline incident; 0: not watched
  devices: {MON-7: 60, PUMP-2: 0}  # per-device overrides
retention:
  raw_content_days: 30             # messages.raw and delivered outbox payloads emptied after this; 0: kept
```
The stale-device and retention jobs (engine/jobs/) read them; readings, alerts and the message rows
themselves and outbox rows with their attempts (the audit trail) are never pruned.
"""
from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from engine.routes.base import ConfigModel

DeviceId = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Seconds = Annotated[int, Field(ge=0)]

DEFAULT_INTERVAL_SECONDS = 300
DEFAULT_RAW_CONTENT_DAYS = 30


class DevicesConfig(ConfigModel):
    """How often the route's devices are expected to send: a device silent for longer than its interval
    raises a ``device_offline`` incident, cleared when its data returns."""

    expected_interval_seconds: int = Field(
        DEFAULT_INTERVAL_SECONDS, ge=0, description="Longest silence allowed for a device of this route, in "
        "seconds; 0: devices of this route are not watched.", examples=[300])
    devices: dict[DeviceId, Seconds] = Field(
        default_factory=dict, description="Per-device intervals (device id as stored: OBX-18, else MSH-3) "
        "overriding expected_interval_seconds; 0 leaves that device unwatched.",
        examples=[{"MON-7": 60, "PUMP-2": 0}])

    def interval_for(self, device_id: str) -> int:
        """The silence allowed for ``device_id``, in seconds (0: not watched)."""
        return self.devices.get(device_id, self.expected_interval_seconds)


class RetentionConfig(ConfigModel):
    """How long the route's message content is kept: the raw message, and the payloads of its outbox rows once
    delivered (SENT) or held back (SUPPRESSED). Readings, alerts, message rows (the audit trail: ids, hashes,
    status, ACKs), outbox rows with their attempts, and the payloads of rows not delivered are kept regardless."""

    raw_content_days: int = Field(
        DEFAULT_RAW_CONTENT_DAYS, ge=0, description="Days after receipt when a message's raw content "
        "(messages.raw, patient data) and its delivered outbox payloads are emptied; 0 keeps them "
        "forever.", examples=[30])
