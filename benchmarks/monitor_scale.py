"""`rlops monitor` on large logs: N interactions (default 100,000) of two versions, production and a sticky 20 %
canary, about 0.6 feedback events per interaction. Prints where the time goes: a bare DuckDB scan of the same
columns (the floor), the monitor's scan and join, the Python pass (refusal grader, tallies), and the canary
comparison (bootstrap), with peak RSS.

    .venv/bin/python benchmarks/monitor_scale.py [N] [--users U]
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rlops import monitor  # noqa: E402
from rlops.monitor import read  # noqa: E402


def generate(root: Path, n: int, users: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    (root / "logs").mkdir(parents=True)
    with open(root / "logs/interactions.jsonl", "w") as ix, open(root / "logs/feedback.jsonl", "w") as fb:
        for i in range(n):
            u = rng.randrange(users)
            stage = "canary" if u % 5 == 0 else "production"
            ts = f"2026-11-{1 + i * 28 // n:02d}T{rng.randrange(24):02d}:{rng.randrange(60):02d}:{rng.randrange(60):02d}Z"
            refuse = rng.random() < 0.05
            answer = "I'm sorry, but I can't help with that." if refuse else \
                "Thanks for telling us. A replacement for order NW-%05d ships today; keep the damaged one." % i
            iid = f"i-{i:07d}"
            ix.write(json.dumps({
                "schema": "rlops.interaction/v1", "interaction_id": iid, "timestamp": ts, "user": f"u-{u}",
                "agent": {"name": "support-agent", "version": "v2" if stage == "canary" else "v1", "stage": stage},
                "input_messages": [{"role": "system", "content": "You are the support agent of Northwind."},
                                   {"role": "user", "content": "My order NW-%05d arrived damaged, what now?" % i}],
                "output_messages": [{"role": "assistant", "content": answer}],
                "steps": [{"type": "tool_call", "name": "lookup_order", "error": "timeout"}] if rng.random() < 0.03
                else [{"type": "tool_call", "name": "lookup_order", "result": {"status": "delivered"}}],
                "usage": {"input_tokens": 80, "output_tokens": 30},
                "outcome": {"status": "ok", "latency_ms": round(rng.gauss(700, 120), 1)}}) + "\n")
            if rng.random() < 0.5:
                fb.write(json.dumps({"schema": "rlops.feedback/v1", "event_id": f"r-{i:07d}", "interaction_id": iid,
                                     "timestamp": ts, "actor": f"customer:u-{u}", "kind": "rating",
                                     "rating": {"value": rng.choice([1, 2, 4, 5, 5]), "scale": [1, 5]}}) + "\n")
            if rng.random() < 0.1:
                fb.write(json.dumps({"schema": "rlops.feedback/v1", "event_id": f"e-{i:07d}", "interaction_id": iid,
                                     "timestamp": ts, "actor": "staff:alice", "kind": "edit",
                                     "edit": {"output_messages": [{"role": "assistant", "content": "Edited."}]}}) + "\n")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("n", nargs="?", type=int, default=100_000)
    ap.add_argument("--users", type=int, default=20_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        generate(root, args.n, args.users)
        size = sum(p.stat().st_size for p in (root / "logs").iterdir())
        print(f"generated {args.n} interactions, {size / 1e6:.1f} MB, in {time.perf_counter() - t:.1f} s")
        from rlops.extract import engine

        t = time.perf_counter()
        with tempfile.TemporaryDirectory() as scratch:
            con = engine.connect("2GB", None, Path(scratch))
            src = engine.resolve(root, "logs/interactions.jsonl", "x")
            con.execute(f"SELECT count(*) FROM {engine.json_reader(src, read.IX_COLUMNS)}").fetchone()
            con.close()
        bare = time.perf_counter() - t
        t = time.perf_counter()
        rows = sum(1 for r in read.scan(root, ["logs/interactions.jsonl"], ["logs/feedback.jsonl"]) if not isinstance(r, int))
        scan = time.perf_counter() - t
        options = monitor.Options(["logs/interactions.jsonl"], ["logs/feedback.jsonl"])
        t = time.perf_counter()
        doc = monitor.collect(root, options)
        total = time.perf_counter() - t
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"bare DuckDB scan of the interaction columns: {bare:.2f} s")
        print(f"monitor scan + join, rows into Python ({rows} rows): {scan:.2f} s")
        print(f"rlops monitor collect (scan, grading, tallies, canary bootstrap): {total:.2f} s "
              f"({args.n / total:,.0f} interactions/s)")
        print(f"peak RSS {peak:.0f} MiB; canary flagged: {doc['flagged']}")


if __name__ == "__main__":
    main()
