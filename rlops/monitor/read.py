"""Read production logs for monitoring: one row per interaction, with its feedback folded in, from DuckDB.

DuckDB scans the logs with explicit columns (the project's engine for logs, rlops/extract/engine.py: files,
folders such as a Recorder's `DIR/interactions/`, JSONL or Parquet) and joins the feedback per interaction; only
the light columns and the final answer text reach Python, which grades refusals with the evaluation's metric.
A record without an id, a timestamp or an agent version cannot be placed and is counted as skipped (`rlops
validate FILE` names its line); a record without `agent.stage` (written before stages existed) counts as production.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

IX_COLUMNS = {
    "interaction_id": "VARCHAR", "timestamp": "VARCHAR", "user": "VARCHAR",
    "agent": "STRUCT(name VARCHAR, version VARCHAR, stage VARCHAR)",
    "output_messages": "JSON", "steps": "JSON", "outcome": "STRUCT(status VARCHAR, latency_ms DOUBLE)",
}
FB_COLUMNS = {
    "interaction_id": "VARCHAR", "timestamp": "VARCHAR", "kind": "VARCHAR",
    "rating": "STRUCT(value DOUBLE, scale DOUBLE[])", "edit": "STRUCT(output_messages JSON)",
}
BUCKETS = {"day": "day", "week": "week"}  # DuckDB date_trunc parts; a week starts on Monday (ISO)

MACROS = """
CREATE OR REPLACE MACRO ts_of(x) AS coalesce(TRY_CAST(x AS TIMESTAMPTZ), TRY_CAST(upper(x) AS TIMESTAMPTZ));
-- the answer: the last assistant message with text (tool-call messages carry none)
CREATE OR REPLACE MACRO answer_of(m) AS list_filter(json_extract(m, '$[*]'), lambda e: (e->>'$.role') = 'assistant'
    AND json_type(e, '$.content') = 'VARCHAR')[-1]->>'$.content';
CREATE OR REPLACE MACRO has_error(x) AS json_type(x, '$.error') IS NOT NULL AND json_type(x, '$.error') <> 'NULL';
-- a tool failed: a step with an error, or a tool message whose JSON content has an `error` key
CREATE OR REPLACE MACRO tool_error(m, s) AS
    coalesce(len(list_filter(json_extract(s, '$[*]'), lambda x: has_error(x))) > 0, false)
    OR coalesce(len(list_filter(json_extract(m, '$[*]'), lambda e: (e->>'$.role') = 'tool'
        AND CASE WHEN json_valid(e->>'$.content') THEN has_error(e->>'$.content') ELSE false END)) > 0, false);
"""


@dataclass(frozen=True)
class Row:
    """One interaction as the monitor sees it."""

    version: str
    stage: str
    bucket: str  # the day (or Monday of the week) it was answered, YYYY-MM-DD, UTC
    ts: float  # epoch seconds
    user: str  # the end user, or the interaction itself when the record names none
    latency_ms: float | None
    tool_error: bool
    answer: str
    feedback: int  # feedback events that point at it
    rating: float | None  # mean rating, scaled to [0, 1]
    edited: bool
    edit_answer: str | None  # the last edit's answer


@dataclass(frozen=True)
class Spans:
    """When each canary version served: version -> (first, last) answer time, epoch seconds."""

    canary: dict[str, tuple[float, float]]


def scan(root: Path, interactions: list[str], feedback: list[str], bucket: str = "day",
         batch: int = 10_000) -> Iterator[Spans | Row | int]:
    """First the canaries' Spans, then every interaction as a Row in time order, last the number of records skipped
    (the spans come first so that a caller can pick production's rows of a canary's days in the same pass)."""
    from rlops.extract import engine

    part = BUCKETS[bucket]
    with tempfile.TemporaryDirectory(prefix=".monitor-") as scratch:
        con = engine.connect("2GB", None, Path(scratch))
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute(MACROS)
            ix = _union(con, root, interactions, IX_COLUMNS, "interactions")
            fb = _union(con, root, feedback, FB_COLUMNS, "feedback") if feedback else None
            con.execute(f"""CREATE TEMP TABLE ix AS SELECT interaction_id AS iid, ts_of("timestamp") AS ts,
                agent.version AS version, coalesce(agent.stage, 'production') AS stage,
                coalesce("user", 'interaction:' || interaction_id) AS uid, outcome.latency_ms AS latency,
                tool_error(output_messages, steps) AS tool_error, coalesce(answer_of(output_messages), '') AS answer
                FROM {ix}""")
            if fb is None:
                con.execute("CREATE TEMP TABLE fa (iid VARCHAR, n BIGINT, rating DOUBLE, edited BOOLEAN, "
                            "edit_answer VARCHAR)")
            else:
                con.execute(f"""CREATE TEMP TABLE fa AS SELECT interaction_id AS iid, count(*) AS n,
                    avg(CASE WHEN kind = 'rating' AND rating.scale[2] > rating.scale[1]
                        THEN (rating.value - rating.scale[1]) / (rating.scale[2] - rating.scale[1]) END) AS rating,
                    bool_or(kind = 'edit') AS edited,
                    max_by(answer_of(edit.output_messages), ts_of("timestamp")) FILTER (WHERE kind = 'edit') AS edit_answer
                    FROM {fb} WHERE interaction_id IS NOT NULL GROUP BY interaction_id""")
            yield Spans({v: (float(a), float(b)) for v, a, b in con.execute(
                "SELECT version, epoch(min(ts)), epoch(max(ts)) FROM ix WHERE stage = 'canary' AND iid IS NOT NULL "
                "AND ts IS NOT NULL AND version IS NOT NULL GROUP BY version ORDER BY version").fetchall()})
            skipped = con.execute("SELECT count(*) FROM ix WHERE iid IS NULL OR ts IS NULL OR version IS NULL "
                                  "OR stage NOT IN ('production', 'canary', 'shadow')").fetchone()[0]
            cur = con.execute(f"""SELECT ix.version, ix.stage, strftime(date_trunc('{part}', ix.ts), '%Y-%m-%d'),
                epoch(ix.ts), ix.uid, ix.latency, ix.tool_error, ix.answer, coalesce(fa.n, 0), fa.rating,
                coalesce(fa.edited, false), fa.edit_answer
                FROM ix LEFT JOIN fa USING (iid)
                WHERE ix.iid IS NOT NULL AND ix.ts IS NOT NULL AND ix.version IS NOT NULL
                  AND ix.stage IN ('production', 'canary', 'shadow')
                ORDER BY ix.ts, ix.iid""")
            while True:
                rows = cur.fetchmany(batch)
                if not rows:
                    break
                for r in rows:
                    yield Row(*r[:3], float(r[3]), *r[4:8], int(r[8]), r[9], bool(r[10]), r[11])
            yield int(skipped)
        finally:
            con.close()


def _union(con: Any, root: Path, paths: list[str], columns: dict[str, str], what: str) -> str:
    from rlops.extract import engine

    scans = [engine.reader(con, engine.resolve(root, p, f"--{what}"), columns) for p in paths]
    return "(" + " UNION ALL ".join(f"SELECT * EXCLUDE (filename) FROM {s}" for s in scans) + ")"
