"""Writing records off the request path: a bounded queue drained by one thread into `rlops.observe.Recorder`.

A request only puts its record on the queue (`put_nowait`); when the queue is full the record is dropped and
counted (`dropped`), never waited for. A record the Recorder refuses is counted in `failed`, with the last reason.
The writer takes what is queued in batches (up to BATCH) and, with fsync on, flushes them to disk once per batch
(a group commit): one fsync per record would cap logging at a few hundred records a second on a busy disk.
"""

from __future__ import annotations

import queue
import sys
import threading
from pathlib import Path

from rlops.errors import RlopsError
from rlops.observe.recorder import Recorder

_STOP = object()
BATCH = 512


class Background:
    def __init__(self, directory: Path, size: int, fsync: bool = True):
        self.recorder = Recorder(directory, fsync=False)  # synced per batch below
        self.fsync = fsync
        self.queue: queue.Queue = queue.Queue(maxsize=size)
        self.dropped = 0
        self.written = 0
        self.failed = 0
        self.last_error = ""
        self._counts = threading.Lock()
        self._thread = threading.Thread(target=self._drain, name="rlops-serve-recorder", daemon=True)
        self._thread.start()

    def put(self, stream: str, record: dict) -> bool:
        """Queue `record` for `stream` ("interactions" or "feedback"); False (and counted) when the queue is full."""
        try:
            self.queue.put_nowait((stream, record))
            return True
        except queue.Full:
            with self._counts:
                self.dropped += 1
            return False

    def _drain(self) -> None:
        stopping = False
        while not stopping:
            batch = [self.queue.get()]
            while len(batch) < BATCH:
                try:
                    batch.append(self.queue.get_nowait())
                except queue.Empty:
                    break
            try:
                for item in batch:
                    if item is _STOP:
                        stopping = True
                        continue
                    self._write(*item)
                if self.fsync:
                    try:
                        self.recorder.sync()
                    except OSError as e:  # the records are written, not yet durable; keep serving, say so
                        self.last_error = f"fsync failed: {e}"
                        print(f"rlops serve: {self.last_error}", file=sys.stderr)
            finally:
                for _ in batch:
                    self.queue.task_done()

    def _write(self, stream: str, record: dict) -> None:
        try:
            if stream == "interactions":
                self.recorder.record_interaction(record)
            else:
                self.recorder.record_feedback(record)
            with self._counts:
                self.written += 1
        except RlopsError as e:  # a record we built wrong is a bug; say so, keep serving
            with self._counts:
                self.failed += 1
                self.last_error = e.message
            print(f"rlops serve: a {stream} record was not written: {e.message}", file=sys.stderr)

    def flush(self) -> None:
        """Wait until every queued record is written (tests and shutdown; never on a request)."""
        self.queue.join()

    def close(self) -> None:
        self.queue.put(_STOP)  # after everything already queued
        self._thread.join()
        self.recorder.close()
