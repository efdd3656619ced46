"""The rules: usable feedback events (table `ev`) become candidate training rows (table `cand`), in SQL.

A candidate row names its prompt (an interaction) and its answers by reference ('i:<interaction_id>' for an
answer as logged, 'e:<event_id>' for an edited one); the text is joined in when the row is written. Each rule
also notes, for events that made no candidate at all, why (table `notes`). Rows go to four sets:
pairs (DPO: prompt, chosen, rejected), unpaired (KTO: prompt, completion, label), sft (messages) and rewards
(prompt, completion, reward). `chars_changed` is the edit distance of the edit rule.
"""

from __future__ import annotations

from typing import Any

from rlops.extract.params import SIGNALS, ExtractParams

SETS = ("pairs", "unpaired", "sft", "rewards")
RULE_ORDER = {rule: i for i, rule in enumerate(SIGNALS)}  # also the order rows are written and deduplicated in
LEVENSHTEIN_MAX = 2000  # characters; DuckDB's levenshtein is quadratic, longer texts use the banded chars_changed


def chars_changed(a: str, b: str, cap: int) -> int:
    """Levenshtein distance between a and b, or `cap` if it is at least `cap` (banded, O(len * cap))."""
    if cap <= 0:
        return 0 if a == b else cap
    # strip what both share at the ends (binary search on slices: C speed): an edit usually touches a small part
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    a, b = a[lo:], b[lo:]
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[len(a) - mid:] == b[len(b) - mid:]:
            lo = mid
        else:
            hi = mid - 1
    a, b = a[: len(a) - lo], b[: len(b) - lo]
    if abs(len(a) - len(b)) >= cap:
        return cap
    if not a or not b:
        return max(len(a), len(b))
    big = cap  # any value >= cap means "at least cap"
    previous = [j if j < cap else big for j in range(len(b) + 1)]
    for i in range(1, len(a) + 1):
        current = [big] * (len(b) + 1)
        current[0] = i if i < cap else big
        for j in range(max(1, i - cap + 1), min(len(b), i + cap - 1) + 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] != b[j - 1]), big)
        if min(current) >= cap:
            return cap
        previous = current
    return min(previous[len(b)], cap)


CAND = """CREATE TABLE cand (set VARCHAR, rule VARCHAR, prompt_iid VARCHAR, a VARCHAR, b VARCHAR, label BOOLEAN,
    reward DOUBLE, weight DOUBLE, eids VARCHAR[], iids VARCHAR[], shown_first BOOLEAN, cap_group VARCHAR,
    cap_rank VARCHAR, judge VARCHAR)"""


def run_rules(con: Any, params: ExtractParams) -> None:
    """Fill `cand` and `notes` from `ev` with every enabled rule (the live judge runs separately, in rlaif)."""
    con.execute(CAND)
    con.execute("CREATE TABLE notes (eid VARCHAR, reason VARCHAR)")
    for rule in params.signals:
        RULES[rule](con, params)


def _edit(con: Any, params: ExtractParams) -> None:
    cap = params.edit_min_chars
    con.execute("""
    CREATE TABLE edits AS SELECT e.eid, e.iid, i.edited_text AS before, text_of(e.edit.output_messages) AS after
    FROM ev e JOIN ih i ON i.iid = e.iid WHERE e.kind = 'edit'""")
    con.execute(f"""CREATE TABLE edit_size AS SELECT eid, {cap} AS changed FROM edits
        WHERE abs(length(before) - length(after)) >= {cap}""")
    # edits the length difference does not settle: the exact distance (DuckDB's for texts of usual length)
    con.execute(f"""INSERT INTO edit_size SELECT eid, least(levenshtein(before, after), {cap}) FROM edits
        WHERE eid NOT IN (SELECT eid FROM edit_size) AND greatest(length(before), length(after)) <= {LEVENSHTEIN_MAX}""")
    long = con.execute("SELECT eid, before, after FROM edits WHERE eid NOT IN (SELECT eid FROM edit_size)").fetchall()
    if long:
        con.execute("CREATE TEMP TABLE long_edits (eid VARCHAR, changed INTEGER)")
        con.executemany("INSERT INTO long_edits VALUES (?, ?)", [(e, chars_changed(a, b, cap)) for e, a, b in long])
        con.execute("INSERT INTO edit_size SELECT * FROM long_edits")
    con.execute(f"INSERT INTO notes SELECT eid, 'trivial_edit' FROM edit_size WHERE changed < {cap}")
    kept = f"FROM ev e JOIN edit_size s USING (eid) WHERE s.changed >= {cap} AND e.kind = 'edit'"
    con.execute(f"""INSERT INTO cand SELECT 'pairs', 'edit', e.iid, 'e:' || e.eid, 'i:' || e.iid, NULL, NULL, 1.0,
        [e.eid], [e.iid], NULL, NULL, NULL, NULL {kept}""")
    if params.edit_sft:
        con.execute(f"""INSERT INTO cand SELECT 'sft', 'edit', e.iid, 'e:' || e.eid, NULL, NULL, NULL, 1.0,
            [e.eid], [e.iid], NULL, NULL, NULL, NULL {kept}""")


def _pairwise(con: Any, params: ExtractParams) -> None:
    con.execute("""INSERT INTO cand SELECT 'pairs', 'pairwise', e.iid, 'i:' || e.iid, 'i:' || e.pairwise.rejected_id,
        NULL, NULL, 1.0, [e.eid], [e.iid, e.pairwise.rejected_id],
        e.pairwise.shown_order[1] = e.iid, NULL, NULL, NULL FROM ev e WHERE e.kind = 'pairwise'""")


def _ranking(con: Any, params: ExtractParams) -> None:
    # a ranking of k answers gives its k(k-1)/2 pairs, the better-ranked one chosen
    con.execute("""INSERT INTO cand SELECT 'pairs', 'ranking', c, 'i:' || c, 'i:' || r, NULL, NULL, 1.0, [eid], [c, r],
        CASE WHEN shown IS NOT NULL THEN list_position(shown, c) < list_position(shown, r) END, NULL, NULL, NULL
    FROM (SELECT eid, ids[i] AS c, unnest(ids[i + 1:]) AS r, shown FROM (
        SELECT eid, ranking.ranked_ids AS ids, ranking.shown_order AS shown,
               unnest(generate_series(1, len(ranking.ranked_ids) - 1)) AS i FROM ev WHERE kind = 'ranking'))""")


def _scored(con: Any, params: ExtractParams, kind: str) -> None:
    """Ratings and recorded judge scores: KTO labels by the declared thresholds, pairs by the declared gap."""
    if kind == "rating":
        value, scale, group, gap = "rating.value", "rating.scale", "''", f"greatest({params.rating_min_gap}, 0)"
        diff = "abs(x.v - y.v)"
    else:
        value, scale, group = "judge.score", "coalesce(judge.scale, [0.0, 1.0])", "judge.model || '/' || judge.rubric"
        gap, diff = f"{params.judge.min_gap}", "abs(x.nv - y.nv)"
    width = params.max_pairs_per_prompt
    con.execute(f"""
    CREATE TABLE scored AS SELECT * FROM (
        SELECT e.eid, e.iid, e.ts, {value} AS v, {scale} AS sc, ({value} - {scale}[1]) / ({scale}[2] - {scale}[1]) AS nv,
               {group} AS grp, i.pkey,
               row_number() OVER (PARTITION BY e.iid, {group} ORDER BY e.ts DESC, e.eid DESC) AS latest
        FROM ev e JOIN ih i ON i.iid = e.iid WHERE e.kind = '{kind}')""")
    con.execute(f"INSERT INTO notes SELECT eid, '{kind}_superseded' FROM scored WHERE latest > 1")
    con.execute("DELETE FROM scored WHERE latest > 1")
    con.execute(f"""INSERT INTO cand SELECT 'unpaired', '{kind}', iid, 'i:' || iid, NULL, nv >= {params.rating_good_min},
        NULL, 1.0, [eid], [iid], NULL, NULL, NULL, NULL FROM scored
        WHERE nv >= {params.rating_good_min} OR nv <= {params.rating_bad_max}""")
    # answers to one prompt in a fixed pseudo-random order; each is compared with the next `width` of them
    con.execute("""
    CREATE TABLE ranked AS SELECT *, pkey || '/' || grp || '/' || sc::VARCHAR AS g,
        row_number() OVER (PARTITION BY pkey, grp, sc::VARCHAR ORDER BY md5(eid), eid) AS pos FROM scored""")
    con.execute(f"""
    CREATE TABLE couples AS SELECT x.eid AS ex, y.eid AS ey, x.iid AS ix, y.iid AS iy, x.v > y.v AS x_better, x.g AS grp
    FROM (SELECT *, unnest(generate_series(pos + 1, pos + {width})) AS other FROM ranked) x
    JOIN ranked y ON y.g = x.g AND y.pos = x.other
    WHERE {diff} > 0 AND {diff} >= {gap}""")
    con.execute(f"""INSERT INTO cand SELECT 'pairs', '{kind}',
        CASE WHEN x_better THEN ix ELSE iy END, 'i:' || CASE WHEN x_better THEN ix ELSE iy END,
        'i:' || CASE WHEN x_better THEN iy ELSE ix END, NULL, NULL, 1.0,
        CASE WHEN x_better THEN [ex, ey] ELSE [ey, ex] END, CASE WHEN x_better THEN [ix, iy] ELSE [iy, ix] END,
        NULL, '{kind}/' || grp, md5(ex || '/' || ey), NULL FROM couples""")
    con.execute(f"""INSERT INTO notes SELECT eid, CASE WHEN n = 1 THEN '{kind}_unpaired' ELSE '{kind}_tie_or_small_gap' END
    FROM (SELECT eid, count(*) OVER (PARTITION BY g) AS n FROM ranked)
    WHERE eid NOT IN (SELECT unnest(eids) FROM cand WHERE rule = '{kind}')""")
    con.execute("DROP TABLE scored; DROP TABLE ranked; DROP TABLE couples")


def _rating(con: Any, params: ExtractParams) -> None:
    _scored(con, params, "rating")


def _implicit(con: Any, params: ExtractParams) -> None:
    w = params.implicit_weights
    # the regenerated answer (it names the replaced one in `regenerates`) is weakly better than the replaced one
    con.execute(f"""INSERT INTO cand SELECT 'pairs', 'implicit', n.iid, 'i:' || n.iid, 'i:' || e.iid, NULL, NULL,
        {w['regenerate']}, [e.eid], [n.iid, e.iid], NULL, NULL, NULL, NULL
    FROM ev e JOIN ih o ON o.iid = e.iid JOIN ih n ON n.regenerates = e.iid AND n.pkey = o.pkey
    WHERE e.kind = 'implicit' AND e.implicit.action = 'regenerate'""")
    con.execute("""INSERT INTO notes SELECT eid, 'no_regeneration' FROM ev
    WHERE kind = 'implicit' AND implicit.action = 'regenerate' AND eid NOT IN (SELECT unnest(eids) FROM cand WHERE rule = 'implicit')""")
    con.execute(f"""INSERT INTO cand SELECT 'unpaired', 'implicit', iid, 'i:' || iid, NULL, implicit.action = 'copy', NULL,
        CASE implicit.action WHEN 'copy' THEN {w['copy']} ELSE {w['abandon']} END, [eid], [iid], NULL, NULL, NULL, NULL
    FROM ev WHERE kind = 'implicit' AND implicit.action IN ('copy', 'abandon')""")


def _outcome(con: Any, params: ExtractParams) -> None:
    width = params.max_pairs_per_prompt
    con.execute("""
    CREATE TABLE outcomes AS SELECT * FROM (
        SELECT e.eid, e.iid, outcome.success AS ok, coalesce(outcome.reward, outcome.success::INT::DOUBLE) AS reward,
               coalesce('task:' || outcome.task, 'prompt:' || i.pkey) AS cluster,
               row_number() OVER (PARTITION BY e.iid ORDER BY e.ts DESC, e.eid DESC) AS latest
        FROM ev e JOIN ih i ON i.iid = e.iid WHERE e.kind = 'outcome')""")
    con.execute("INSERT INTO notes SELECT eid, 'outcome_superseded' FROM outcomes WHERE latest > 1")
    con.execute("DELETE FROM outcomes WHERE latest > 1")
    con.execute("""INSERT INTO cand SELECT 'rewards', 'outcome', iid, 'i:' || iid, NULL, NULL, reward, 1.0, [eid], [iid],
        NULL, NULL, NULL, NULL FROM outcomes""")
    # success over failure in one task cluster; each success meets `width` failures (the pair uses its prompt)
    con.execute(f"""INSERT INTO cand SELECT 'pairs', 'outcome', s.iid, 'i:' || s.iid, 'i:' || f.iid, NULL, NULL, 1.0,
        [s.eid, f.eid], [s.iid, f.iid], NULL, 'outcome/' || s.cluster, md5(s.eid || '/' || f.eid), NULL
    FROM (SELECT s.*, unnest(generate_series(0, least(n.n, {width}) - 1)) AS off, n.n
          FROM (SELECT *, row_number() OVER (PARTITION BY cluster ORDER BY md5(eid), eid) - 1 AS pos FROM outcomes WHERE ok) s
          JOIN (SELECT cluster, count(*) AS n FROM outcomes WHERE NOT ok GROUP BY cluster) n USING (cluster)) s
    JOIN (SELECT *, row_number() OVER (PARTITION BY cluster ORDER BY md5(eid), eid) - 1 AS pos FROM outcomes WHERE NOT ok) f
      ON f.cluster = s.cluster AND f.pos = (s.pos + s.off) % s.n""")
    con.execute("DROP TABLE outcomes")


def _judge(con: Any, params: ExtractParams) -> None:
    _scored(con, params, "judge")  # recorded verdicts; the live judge (rlaif) adds its rows later


RULES = {"edit": _edit, "pairwise": _pairwise, "ranking": _ranking, "rating": _rating, "implicit": _implicit,
         "outcome": _outcome, "judge": _judge}
