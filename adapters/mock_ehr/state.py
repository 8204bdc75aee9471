"""What the mock EHR received: an append-only JSON lines file, replayed at start, with idempotency keys.

Two kinds of line:

- ``{"event": "record", "ehr_id", "kind", "idempotency_key", "patient_id", "received_at", "digest", "content"}``:
  the first request with a key; ``ehr_id`` is ``EHR-`` and a six-digit sequence number.
- ``{"event": "repeat", "idempotency_key", "received_at", "same_content"}``: the key again; nothing new is
  recorded, the first answer is given again.

Every line is written, flushed and fsync'd under one lock before the caller answers, so an answer the EHR
gave is never forgotten by a restart. A torn last line (a crash mid-write) is skipped when the file is read.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger("vitalsstream.mock_ehr")

KINDS = ("observations", "alert")


@dataclass(frozen=True)
class Answer:
    ehr_id: str
    duplicate: bool


@dataclass
class Record:
    ehr_id: str
    kind: str
    idempotency_key: str
    patient_id: str
    received_at: str
    digest: str
    content: dict[str, Any]
    calls: int = 1
    changed_calls: int = 0  # repeats of the key whose content differed from the first
    last_call_at: str = field(default="")

    def as_json(self) -> dict[str, Any]:
        """The object GET /received lists: the bookkeeping first, then the record's content."""
        return {"kind": self.kind, "patient_id": self.patient_id, "idempotency_key": self.idempotency_key,
                "received_at": self.received_at, "ehr_id": self.ehr_id, "calls": self.calls,
                "changed_calls": self.changed_calls, "last_call_at": self.last_call_at or self.received_at,
                **self.content}


class ReceivedLog:
    """Thread-safe; ``record`` is the only writer. Open with ``ReceivedLog.open(path)``; ``close`` when done."""

    def __init__(self, path: Path, durable: bool = True):
        self.path = path
        self.durable = durable
        self._records: dict[str, Record] = {}
        self._lock = threading.Lock()
        self._file: Any = None

    @classmethod
    def open(cls, path: str | Path, durable: bool = True) -> ReceivedLog:
        """Replays ``path`` (creating it and its folder when missing) and opens it for appending.
        ``durable``: fsync every line (else only flush, for benchmarks that do not test crashes)."""
        received = cls(Path(path), durable)
        received.path.parent.mkdir(parents=True, exist_ok=True)
        if received.path.exists():
            received._replay()
        received._file = received.path.open("a", encoding="utf-8")
        if received._file.tell() and not _ends_with_newline(received.path):
            received._write_text("\n")  # end a torn last line, so the next line stands on its own
        return received

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def record(self, kind: str, key: str, patient_id: str, content: dict[str, Any]) -> Answer:
        """The first call with ``key`` is recorded and gets a new EHR id; later calls get that id again
        (``duplicate``) and only count."""
        digest = _digest(content)
        now = _now()
        with self._lock:
            if self._file is None:
                raise RuntimeError("the received log is closed")
            known = self._records.get(key)
            if known is not None:
                self._write({"event": "repeat", "idempotency_key": key, "received_at": now,
                             "same_content": known.digest == digest})
                self._count_repeat(known, now, known.digest == digest)
                return Answer(known.ehr_id, True)
            record = Record(f"EHR-{len(self._records) + 1:06d}", kind, key, patient_id, now, digest, content)
            self._write({"event": "record", "ehr_id": record.ehr_id, "kind": kind, "idempotency_key": key,
                         "patient_id": patient_id, "received_at": now, "digest": digest, "content": content})
            self._records[key] = record
            return Answer(record.ehr_id, False)

    def received(self, kind: str | None = None, patient_id: str | None = None) -> list[dict[str, Any]]:
        """Records in the order they were first received, optionally of one kind or one patient."""
        with self._lock:
            return [record.as_json() for record in self._records.values()
                    if kind in (None, record.kind) and patient_id in (None, record.patient_id)]

    def _write(self, line: dict[str, Any]) -> None:
        self._write_text(json.dumps(line, separators=(",", ":")) + "\n")

    def _write_text(self, text: str) -> None:
        self._file.write(text)
        self._file.flush()
        if self.durable:
            os.fsync(self._file.fileno())

    def _replay(self) -> None:
        skipped = 0
        with self.path.open(encoding="utf-8") as lines:
            for line in lines:
                try:
                    self._apply(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    skipped += 1
        if skipped:
            log.warning("mock EHR state file had unreadable lines; they were skipped",
                        extra={"path": str(self.path), "skipped": skipped})

    def _apply(self, line: dict[str, Any]) -> None:
        key = line["idempotency_key"]
        if line["event"] == "record":
            self._records[key] = Record(line["ehr_id"], line["kind"], key, line["patient_id"], line["received_at"],
                                        line["digest"], line["content"])
        elif line["event"] == "repeat" and key in self._records:
            self._count_repeat(self._records[key], line["received_at"], bool(line["same_content"]))

    @staticmethod
    def _count_repeat(record: Record, at: str, same_content: bool) -> None:
        record.calls += 1
        record.changed_calls += 0 if same_content else 1
        record.last_call_at = at


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as data:
        data.seek(-1, os.SEEK_END)
        return data.read(1) == b"\n"


def _digest(content: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(content, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _now() -> str:
    return iso_utc(datetime.now(UTC))


def iso_utc(moment: datetime) -> str:
    """``2026-11-21T10:00:00Z`` (microseconds kept when there are any); a naive time counts as UTC."""
    moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.isoformat().replace("+00:00", "Z")
