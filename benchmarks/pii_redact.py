"""PII redaction cost per text: the SQL macro `pii_redact` (RE2 gate, then Python `redact_json` on flagged texts)
and `redact_json` alone, on synthetic chat messages (JSON text) of which a share holds an e-mail, phone or card.

    .venv/bin/python benchmarks/pii_redact.py                 # 50,000 texts, 3/7 of them with PII
    .venv/bin/python benchmarks/pii_redact.py --texts 200000
    PYTHONPATH=OLD_CHECKOUT .venv/bin/python benchmarks/pii_redact.py  # an older rlops/extract/pii.py, to compare
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time

import duckdb

from rlops.extract import pii


def texts(n: int) -> list[str]:
    rng = random.Random(1)
    out = []
    for i in range(n):
        extra = rng.choice(["", "", "", "", f" mail me at jane{i}@example.com", f" call +44 20 7946 {i % 10000:04d}",
                            " card 4111 1111 1111 1111"])
        out.append(json.dumps([{"role": "user", "content": f"Order NW-{i} arrived broken, what now?\n{extra}"},
                               {"role": "assistant", "content": "Sorry! I can send a replacement.", "tool_calls": None}]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--texts", type=int, default=50_000)
    args = ap.parse_args()
    docs = texts(args.texts)
    con = duckdb.connect()
    pii.create_macros(con)
    con.execute("CREATE TABLE t AS SELECT unnest(?) AS j", [docs])
    (flagged,) = con.execute(f"SELECT count(*) FROM t WHERE regexp_matches(j, {pii.sql_literal(pii.GATE)})").fetchone()
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        con.execute("SELECT sum(length(pii_redact(j))) FROM t").fetchone()
        best = min(best, time.perf_counter() - start)
    start = time.perf_counter()
    redact = getattr(pii, "redact_json", getattr(pii, "redact_text", None))  # older rlops: the encoded-text pass
    for doc in docs:
        redact(doc)
    python = time.perf_counter() - start
    print(f"load average {os.getloadavg()[0]:.1f}; {len(docs)} texts, {flagged} flagged by the gate")
    print(f"SQL pii_redact: {best:.3f} s best of 3 ({best / len(docs) * 1e6:.1f} us a text)")
    print(f"Python redact_json: {python:.3f} s ({python / len(docs) * 1e6:.1f} us a text)")


if __name__ == "__main__":
    main()
