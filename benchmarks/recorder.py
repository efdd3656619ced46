"""Measure rlops.observe.Recorder: records per second, the memory of remembered keys, and the time to reopen.

    .venv/bin/python benchmarks/recorder.py            # 5,000 records per setting, 100,000 for keys and reopen
    .venv/bin/python benchmarks/recorder.py --n 1000 --window 20000

One thread appends ~1.2 KB interactions (validated or not, fsynced or not) into a fresh temporary directory;
then --window feedback keys are remembered (memory measured with tracemalloc); then a directory holding --window
interactions is reopened, which rebuilds the dedupe keys from the files. Prints a Markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import tracemalloc
import uuid

from rlops.observe.recorder import Recorder


def interaction(i: int) -> dict:
    return {"agent": {"name": "support-agent", "version": "v3"}, "conversation_id": f"c-{i}",
            "input_messages": [{"role": "user", "content": "Where is my order NW-88102? " * 8}],
            "output_messages": [{"role": "assistant", "content": "It left the depot and arrives Thursday. " * 13}],
            "usage": {"input_tokens": 80, "output_tokens": 120}, "outcome": {"status": "ok", "latency_ms": 900}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000, help="records per throughput setting (fsync: a tenth)")
    parser.add_argument("--window", type=int, default=100_000, help="keys remembered / records reopened")
    args = parser.parse_args()
    rows = []
    for validate, fsync in ((True, False), (False, False), (True, True), (False, True)):
        n = max(1, args.n // 10) if fsync else args.n
        with tempfile.TemporaryDirectory() as d, Recorder(d, validate=validate, fsync=fsync) as rec:
            start = time.perf_counter()
            for i in range(n):
                rec.record_interaction(interaction(i))
            took = time.perf_counter() - start
        rate = f"{n / took:,.0f} records/s ({took / n * 1e6:,.0f} µs each)"
        rows.append((f"append, validate={validate}, fsync={fsync}", rate))

    with tempfile.TemporaryDirectory() as d, Recorder(d, validate=False, fsync=False) as rec:
        tracemalloc.start()
        before = tracemalloc.get_traced_memory()[0]
        for _ in range(args.window):  # an idempotency_key and an event_id, both uuid4 hex
            rec._streams["feedback"].remember(uuid.uuid4().hex, uuid.uuid4().hex)
        grown = tracemalloc.get_traced_memory()[0] - before
        tracemalloc.stop()
    rows.append((f"memory of {args.window:,} remembered feedback keys", f"{grown / 1e6:.1f} MB"))

    with tempfile.TemporaryDirectory() as d:
        with Recorder(d, validate=False, fsync=False) as rec:
            for i in range(args.window):
                rec.record_interaction(interaction(i))
        start = time.perf_counter()
        with Recorder(d, fsync=False):
            took = time.perf_counter() - start
    rows.append((f"open a directory of {args.window:,} interactions (rebuilds the keys)", f"{took:.2f} s"))

    print(f"Machine: {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}\n")
    print("| measure | result |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")


if __name__ == "__main__":
    main()
