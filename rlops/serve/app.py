"""The serving loop without HTTP: route a request by the manifest, answer it, record it, run the shadow, take
feedback, and follow the manifest when it changes. `rlops.serve.server` puts HTTP in front of it.

What each interaction record carries (rlops/spec/schemas/interaction.schema.json; `rlops monitor` reads these):
`agent.name` (the policy), `agent.version` (the version that answered), `agent.stage` (production, canary or
shadow), `user` (the routing key, when given), `conversation_id` (the X-Rlops-Conversation-Id header, when given),
`outcome.latency_ms`, `usage`, and for a shadow answer `shadow_of`: the interaction id of the answer the user got.
"""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from rlops.errors import InvalidInput, Problem, RlopsError
from rlops.records import is_id
from rlops.registry.manifest import Manifest, manifest_path
from rlops.serve import backends, chat_format
from rlops.serve.config import ServeSettings
from rlops.serve.feedback import Feedback
from rlops.serve.recording import Background
from rlops.serve.routing import Route, route

SHADOW_WORKERS = 2


@dataclass
class Answer:
    """One routed answer: `body` (a chat.completion) or `chunks` (chat.completion.chunk objects) and its route."""

    interaction_id: str
    route: Route
    body: dict | None = None
    chunks: Iterator[dict] | None = None


def read_manifest(root: Path, policy: str) -> Manifest:
    path = root / manifest_path(policy)
    manifest = Manifest.parse(path.read_text(encoding="utf-8") if path.is_file() else None, policy,
                              manifest_path(policy))
    if manifest.canary and not (manifest.canary_fraction is not None and 0 < manifest.canary_fraction <= 1):
        raise InvalidInput([Problem(manifest_path(policy), None, "canary.fraction",
                                    f"{manifest.canary_fraction} must be above 0 and at most 1, e.g. 0.05")])
    return manifest


def _stamp(path: Path) -> tuple | None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_mtime_ns, st.st_size, st.st_ino


class Service:
    def __init__(self, cfg: ServeSettings, root: Path, backend: Any = None):
        self.cfg, self.root = cfg, root
        self.manifest_file = root / manifest_path(cfg.policy)
        self._stamp = _stamp(self.manifest_file)
        self.manifest = read_manifest(root, cfg.policy)
        self.backend = backend if backend is not None else backends.make(cfg, root)
        self._preload(self.manifest)
        self.records = Background(root / cfg.logs, cfg.queue_size, cfg.fsync)
        self.feedback = Feedback(self.records.recorder)
        self.counts = {"reloads": 0, "reload_errors": 0, "shadow_dropped": 0, "shadow_errors": 0, "backend_errors": 0}
        self.last_reload_error = ""
        self._shadow: queue.Queue = queue.Queue(maxsize=cfg.queue_size)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._shadow_worker, daemon=True, name=f"rlops-serve-shadow-{i}")
                         for i in range(SHADOW_WORKERS)]
        self._threads.append(threading.Thread(target=self._watch, daemon=True, name="rlops-serve-manifest"))
        for t in self._threads:
            t.start()

    # -- the manifest ----------------------------------------------------------------------------------------

    def _preload(self, manifest: Manifest) -> None:
        load = getattr(self.backend, "load", None)
        if load is not None:  # an in-process backend loads new versions before they take traffic
            for version in manifest.stages().values():
                load(version)

    def reload(self) -> bool:
        """Read the manifest again; True when it changed what is served. A bad manifest keeps the old one."""
        self._stamp = _stamp(self.manifest_file)
        try:
            manifest = read_manifest(self.root, self.cfg.policy)
            if manifest == self.manifest:
                return False
            self._preload(manifest)
        except RlopsError as e:
            self.counts["reload_errors"] += 1
            self.last_reload_error = e.message
            print(f"rlops serve: kept serving {self.manifest.stages()}: {e.message}", file=sys.stderr)
            return False
        old, self.manifest = self.manifest, manifest  # one assignment: a request sees the old or the new, whole
        self.counts["reloads"] += 1
        print(f"rlops serve: manifest changed: {old.stages()} -> {manifest.stages()}", file=sys.stderr)
        return True

    def _watch(self) -> None:
        while not self._stop.wait(self.cfg.reload_poll_s):
            if _stamp(self.manifest_file) != self._stamp:
                self.reload()

    # -- answering -------------------------------------------------------------------------------------------

    def chat(self, body: dict, user_header: str | None = None, conversation: str | None = None,
             auth: str | None = None) -> Answer:
        """Answer a checked request (messages.request_problems found nothing) by the manifest in force now."""
        user = body.get("user") or user_header or None
        chosen = route(self.manifest, user)
        iid = uuid.uuid4().hex
        base = {"user": user, "conversation_id": conversation if is_id(conversation) else None,
                "input_messages": [chat_format.to_record(m) for m in body["messages"]],
                "tool_definitions": body.get("tools") or None}
        base = {k: v for k, v in base.items() if v is not None}
        started = time.perf_counter()
        if chosen.shadow:
            self._queue_shadow(chosen.shadow, body, base, iid)
        if body.get("stream"):
            return Answer(iid, chosen, chunks=self._streamed(chosen, body, base, iid, started, auth))
        try:
            answer = self.backend.complete(chosen.version, body, auth)
        except backends.BackendError:
            self.counts["backend_errors"] += 1
            raise
        choice = (answer.get("choices") or [{}])[0]
        output = chat_format.to_record(choice.get("message") or {"role": "assistant", "content": ""})
        self._record(base, iid, chosen.version, chosen.stage, output, answer.get("usage"), started)
        return Answer(iid, chosen, body=answer)

    def _streamed(self, chosen: Route, body: dict, base: dict, iid: str, started: float,
                  auth: str | None) -> Iterator[dict]:
        seen: list[dict] = []
        try:
            for piece in self.backend.stream(chosen.version, body, auth):
                seen.append(piece)
                yield piece
        except backends.BackendError:
            self.counts["backend_errors"] += 1
            raise
        output, usage, _ = chat_format.assemble(seen)
        self._record(base, iid, chosen.version, chosen.stage, chat_format.to_record(output), usage, started)

    def _record(self, base: dict, iid: str, version: str, stage: str, output: dict, usage: dict | None,
                started: float, **extra: Any) -> None:
        record = {"interaction_id": iid, "agent": {"name": self.cfg.policy, "version": version, "stage": stage},
                  **base, "output_messages": [output],
                  "outcome": {"status": "ok", "latency_ms": round((time.perf_counter() - started) * 1000, 3)}, **extra}
        usage_rec = chat_format.usage_record(usage)
        if usage_rec:
            record["usage"] = usage_rec
        self.records.put("interactions", record)

    # -- the shadow ------------------------------------------------------------------------------------------

    def _queue_shadow(self, version: str, body: dict, base: dict, iid: str) -> None:
        try:
            self._shadow.put_nowait((version, body, base, iid))
        except queue.Full:
            self.counts["shadow_dropped"] += 1

    def _shadow_worker(self) -> None:
        while True:
            item = self._shadow.get()
            try:
                if item is None:
                    return
                version, body, base, iid = item
                started = time.perf_counter()
                try:
                    answer = self.backend.complete(version, {**body, "stream": False})
                except Exception as e:  # the user never sees the shadow, so its failure is only counted
                    self.counts["shadow_errors"] += 1
                    print(f"rlops serve: shadow {version} failed: {e}", file=sys.stderr)
                    continue
                choice = (answer.get("choices") or [{}])[0]
                output = chat_format.to_record(choice.get("message") or {"role": "assistant", "content": ""})
                self._record(base, uuid.uuid4().hex, version, "shadow", output, answer.get("usage"), started,
                             shadow_of=iid)
            finally:
                self._shadow.task_done()

    # -- state and shutdown ----------------------------------------------------------------------------------

    def status(self) -> dict:
        return {"policy": self.cfg.policy, "backend": self.cfg.backend, "serving": self.manifest.stages(),
                "canary_fraction": self.manifest.canary_fraction, **self.counts,
                "last_reload_error": self.last_reload_error, "records_written": self.records.written,
                "records_dropped": self.records.dropped, "records_failed": self.records.failed,
                "records_queued": self.records.queue.qsize(), "shadow_queued": self._shadow.qsize()}

    def flush(self) -> None:
        """Wait for the shadow answers and the records queued so far (tests and shutdown)."""
        self._shadow.join()
        self.records.flush()

    def close(self) -> None:
        self._stop.set()
        for _ in range(SHADOW_WORKERS):
            self._shadow.put(None)
        for t in self._threads:
            t.join()
        self.records.close()
        self.backend.close()
