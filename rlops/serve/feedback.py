"""`POST /v1/feedback`: a feedback event about an interaction the server logged, in the record format of
rlops/records.py (rlops/spec/schemas/feedback.schema.json), written once per idempotency key.

    POST /v1/feedback
    Idempotency-Key: 7d1c...            (or "idempotency_key" in the body; the header wins when both agree)
    {"interaction_id": "<X-Rlops-Interaction-Id of the answer>", "actor": "customer:42", "kind": "rating",
     "rating": {"value": 4, "scale": [1, 5]}}

The server fills in event_id and timestamp when they are missing. A repeat of a key answers what the first request
answered and writes nothing (also after a restart: the Recorder remembers the keys it wrote); the same key with a
different body is refused (422), as the IETF Idempotency-Key draft asks.
"""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import threading
import uuid
from typing import Any

from rlops.observe.recorder import Recorder, problems

IDEMPOTENCY_HEADER = "Idempotency-Key"
REMEMBERED = 100_000


class Refused(Exception):
    def __init__(self, status: int, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {m}" if f else m for f, m in problems))
        self.status, self.problems = status, problems


class Feedback:
    """Checks feedback events and remembers each idempotency key's first answer."""

    def __init__(self, recorder: Recorder):
        self.recorder = recorder
        self._seen: collections.OrderedDict[str, tuple[str, dict]] = collections.OrderedDict()  # key -> (body, answer)
        self._lock = threading.Lock()

    def accept(self, body: Any, header_key: str | None) -> tuple[dict, dict | None]:
        """(answer, record to write or None for a repeat); raises Refused with every problem."""
        if not isinstance(body, dict):
            raise Refused(400, [("", "the body must be a JSON feedback object: interaction_id, actor, kind and the "
                                     "kind's details (docs/records.md)")])
        key = header_key if header_key is not None else body.get("idempotency_key")
        if header_key is not None and body.get("idempotency_key") not in (None, header_key):
            raise Refused(400, [("idempotency_key", f"differs from the {IDEMPOTENCY_HEADER} header; send one key")])
        if key is not None and not (isinstance(key, str) and 0 < len(key) <= 200):
            raise Refused(400, [(IDEMPOTENCY_HEADER, "must be 1 to 200 characters")])
        fingerprint = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
        record = {k: v for k, v in body.items() if k != "schema"}
        record.setdefault("event_id", uuid.uuid4().hex)
        record.setdefault("timestamp", dt.datetime.now(dt.timezone.utc).isoformat(timespec="milliseconds")
                          .replace("+00:00", "Z"))
        if key is not None:
            record["idempotency_key"] = key
        found = problems(record, "feedback")
        if found:
            raise Refused(400, [(p.field, p.message) for p in found])
        with self._lock:
            if key is not None:
                seen = self._seen.get(key)
                if seen is not None and seen[0] != fingerprint:
                    raise Refused(422, [(IDEMPOTENCY_HEADER, f"{key!r} was used for a different feedback event; "
                                                             "use a new key for a new event")])
                if seen is not None:
                    return seen[1], None
                written = self.recorder.recorded_id("feedback", key)
                if written is not None:  # written by an earlier run of the server: its body is not known here
                    return {"event_id": written, "status": "recorded"}, None
            answer = {"event_id": record["event_id"], "interaction_id": record["interaction_id"], "status": "recorded"}
            if key is not None:
                self._seen[key] = (fingerprint, answer)
                if len(self._seen) > REMEMBERED:
                    self._seen.popitem(last=False)
        return answer, record

    def forget(self, answer: dict) -> None:
        """Drop the key of an event that could not be queued, so that its retry is written."""
        with self._lock:
            for key, (_, seen) in list(self._seen.items()):
                if seen is answer:
                    del self._seen[key]
