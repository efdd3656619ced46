"""The live judge (RLAIF): two answers to one prompt that no person compared go to `extract.judge`.

Candidates are the regenerations first (an answer and the one that replaced it), then other couples of answers
to the same prompt, in a fixed pseudo-random order; at most `extract.judge.max_pairs` are judged. Each is asked
in both orders (`judges.judge_pair`) and only an agreeing verdict becomes a pair (rule `judge`, no event ids).
The judge sees the prompt and answers as they will be written: PII already redacted.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rlops.extract.engine import quote
from rlops.extract.params import ExtractParams


def judge_rows(con: Any, params: ExtractParams, root: Path) -> dict[str, Any]:
    """Add the live judge's pairs to `cand`; return what it did, for the signals report."""
    stats = {"judge": None, "candidates": 0, "judged": 0, "agreed": 0, "disagreed": 0}
    settings = params.judge
    if "judge" not in params.signals or settings.config is None or settings.max_pairs == 0:
        return stats
    from rlops.extract.judges import build_judge, judge_pair

    judge = build_judge(settings.config, root)
    stats["judge"] = judge.name
    width = params.max_pairs_per_prompt
    # couples of usable answers to one prompt that no pairwise or ranking event already compares
    allowed = "TRUE"
    if params.agent_versions is not None:
        allowed = "list_contains([" + ", ".join(quote(v) for v in params.agent_versions) + "], version)"
    con.execute(f"""CREATE TABLE judge_pool AS SELECT iid, pkey, regenerates,
        row_number() OVER (PARTITION BY pkey ORDER BY md5(iid), iid) AS pos FROM ih WHERE {allowed}""")
    con.execute(f"""
    CREATE TABLE judge_cand AS SELECT x.iid AS ia, y.iid AS ib, (y.regenerates = x.iid OR x.regenerates = y.iid) AS regen,
        md5(x.iid || '/' || y.iid) AS r
    FROM (SELECT *, unnest(generate_series(pos + 1, pos + {width})) AS other FROM judge_pool) x
    JOIN judge_pool y ON y.pkey = x.pkey AND y.pos = x.other""")
    con.execute("""DELETE FROM judge_cand WHERE (ia, ib) IN (
        SELECT (c.iids[1], c.iids[2]) FROM cand c WHERE c.rule IN ('pairwise', 'ranking')
        UNION SELECT (c.iids[2], c.iids[1]) FROM cand c WHERE c.rule IN ('pairwise', 'ranking'))""")
    stats["candidates"] = con.execute("SELECT count(*) FROM judge_cand").fetchone()[0]
    chosen = con.execute(f"""
    SELECT c.ia, c.ib, p.prompt_js, a.out_js, b.out_js FROM judge_cand c JOIN ih p ON p.iid = c.ia
        JOIN ih a ON a.iid = c.ia JOIN ih b ON b.iid = c.ib
    ORDER BY c.regen DESC, c.r LIMIT {settings.max_pairs}""").fetchall()
    rows = []
    for ia, ib, prompt, a, b in chosen:
        verdict = judge_pair(judge, json.loads(prompt), json.loads(a), json.loads(b))
        stats["judged"] += 1
        if verdict.winner is None:
            stats["disagreed"] += 1
            continue
        stats["agreed"] += 1
        win, lose = (ia, ib) if verdict.winner == "a" else (ib, ia)
        rows.append((win, f"i:{win}", f"i:{lose}", [win, lose], judge.name))
    if rows:
        con.executemany("""INSERT INTO cand (set, rule, prompt_iid, a, b, weight, eids, iids, judge)
                        VALUES ('pairs', 'judge', ?, ?, ?, 1.0, [], ?, ?)""",
                        rows)
    con.execute("DROP TABLE judge_cand; DROP TABLE judge_pool")
    return stats
