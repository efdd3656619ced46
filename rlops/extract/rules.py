"""The rules: usable feedback events (table `ev`) become candidate training rows (table `cand`), in SQL.

A candidate row names its prompt (an interaction) and its answers by reference ('i:<interaction_id>' for an
answer as logged, 'e:<event_id>' for an edited one); the text is joined in when the row is written. Each rule
also notes, for events that made no candidate at all, why (table `notes`). Rows go to four sets:
pairs (DPO: prompt, chosen, rejected), unpaired (KTO: prompt, completion, label), sft (messages) and rewards
(prompt, completion, reward). `chars_changed` is the edit distance of the edit rule.

Each rule is a component, registered by name (the name `extract.signals` lists) with what it reads and writes, in
the shape of rlops.components: adding a rule is one function and one `register` line. Rules add rows with
`INSERT INTO cand BY NAME`: each value names its column, the ones a rule leaves out are NULL.

| rule       | reads    | writes       | rows                                                            |
|------------|----------|--------------|-----------------------------------------------------------------|
| `edit`     | ev, ih   | cand, notes  | pairs (edited over logged answer), sft with extract.edit_sft    |
| `pairwise` | ev       | cand         | pairs (chosen over rejected)                                    |
| `ranking`  | ev       | cand         | pairs (each better-ranked over each worse-ranked)               |
| `rating`   | ev, ih   | cand, notes  | unpaired (by thresholds), pairs (by gap, within a prompt)       |
| `implicit` | ev, ih   | cand, notes  | pairs (regenerated over replaced), unpaired (copy / abandon)    |
| `outcome`  | ev, ih   | cand, notes  | rewards, pairs (success over failure in a task cluster)         |
| `judge`    | ev, ih   | cand, notes  | as rating, from recorded judge scores (the live judge: rlaif)   |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rlops import layout
from rlops.errors import StageFailed
from rlops.extract.params import SIGNALS, ExtractParams

SETS = layout.SETS
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


NOTES = "CREATE TABLE notes (eid VARCHAR, reason VARCHAR)"


@dataclass(frozen=True)
class Rule:
    """An extraction rule: feedback events of one kind in, candidate rows out (rlops.components' shape)."""

    name: str  # what extract.signals lists
    description: str  # one line
    reads: tuple[str, ...]  # the tables it reads (made by earlier steps)
    writes: tuple[str, ...]  # the tables it inserts into
    function: Callable[[Any, ExtractParams], None]


RULES: dict[str, Rule] = {}


def register(name: str, description: str, reads: tuple[str, ...], writes: tuple[str, ...]):
    """Decorator: register the function as rule `name`."""
    def add(function: Callable[[Any, ExtractParams], None]) -> Callable[[Any, ExtractParams], None]:
        RULES[name] = Rule(name, description, reads, writes, function)
        return function
    return add


def run_rules(con: Any, params: ExtractParams) -> None:
    """Fill `cand` and `notes` from `ev` with every enabled rule (the live judge runs separately, in rlaif)."""
    con.execute(CAND)
    con.execute(NOTES)
    tables = {name for (name,) in con.execute(
        "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
    ).fetchall()}
    for name in params.signals:
        rule = RULES[name]
        missing = [t for t in rule.reads + rule.writes if t not in tables]
        if missing:  # a rule declared tables no earlier step makes: a bug in the rule, not in the logs
            raise StageFailed(f"extract rule {name!r} reads or writes {', '.join(missing)}, which no step makes",
                              hint="declare the tables the rule uses in its register(...) line")
        rule.function(con, params)


@register("edit", "an edited answer is preferred to the logged one", reads=("ev", "ih"), writes=("cand", "notes"))
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
    con.execute(f"INSERT INTO notes BY NAME SELECT eid, 'trivial_edit' AS reason FROM edit_size WHERE changed < {cap}")
    kept = f"FROM ev e JOIN edit_size s USING (eid) WHERE s.changed >= {cap} AND e.kind = 'edit'"
    con.execute(f"""INSERT INTO cand BY NAME SELECT 'pairs' AS set, 'edit' AS rule, e.iid AS prompt_iid,
        'e:' || e.eid AS a, 'i:' || e.iid AS b, 1.0 AS weight, [e.eid] AS eids, [e.iid] AS iids {kept}""")
    if params.edit_sft:
        con.execute(f"""INSERT INTO cand BY NAME SELECT 'sft' AS set, 'edit' AS rule, e.iid AS prompt_iid,
            'e:' || e.eid AS a, 1.0 AS weight, [e.eid] AS eids, [e.iid] AS iids {kept}""")


@register("pairwise", "the chosen answer over the rejected one", reads=("ev",), writes=("cand",))
def _pairwise(con: Any, params: ExtractParams) -> None:
    con.execute("""INSERT INTO cand BY NAME SELECT 'pairs' AS set, 'pairwise' AS rule, e.iid AS prompt_iid,
        'i:' || e.iid AS a, 'i:' || e.pairwise.rejected_id AS b, 1.0 AS weight, [e.eid] AS eids,
        [e.iid, e.pairwise.rejected_id] AS iids, e.pairwise.shown_order[1] = e.iid AS shown_first
        FROM ev e WHERE e.kind = 'pairwise'""")


@register("ranking", "every better-ranked answer over every worse-ranked one", reads=("ev",), writes=("cand",))
def _ranking(con: Any, params: ExtractParams) -> None:
    # a ranking of k answers gives its k(k-1)/2 pairs, the better-ranked one chosen
    con.execute("""INSERT INTO cand BY NAME SELECT 'pairs' AS set, 'ranking' AS rule, c AS prompt_iid, 'i:' || c AS a,
        'i:' || r AS b, 1.0 AS weight, [eid] AS eids, [c, r] AS iids,
        CASE WHEN shown IS NOT NULL THEN list_position(shown, c) < list_position(shown, r) END AS shown_first
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
    con.execute(f"INSERT INTO notes BY NAME SELECT eid, '{kind}_superseded' AS reason FROM scored WHERE latest > 1")
    con.execute("DELETE FROM scored WHERE latest > 1")
    con.execute(f"""INSERT INTO cand BY NAME SELECT 'unpaired' AS set, '{kind}' AS rule, iid AS prompt_iid, 'i:' || iid AS a,
        nv >= {params.rating_good_min} AS label, 1.0 AS weight, [eid] AS eids, [iid] AS iids FROM scored
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
    con.execute(f"""INSERT INTO cand BY NAME SELECT 'pairs' AS set, '{kind}' AS rule,
        CASE WHEN x_better THEN ix ELSE iy END AS prompt_iid, 'i:' || CASE WHEN x_better THEN ix ELSE iy END AS a,
        'i:' || CASE WHEN x_better THEN iy ELSE ix END AS b, 1.0 AS weight,
        CASE WHEN x_better THEN [ex, ey] ELSE [ey, ex] END AS eids, CASE WHEN x_better THEN [ix, iy] ELSE [iy, ix] END AS iids,
        '{kind}/' || grp AS cap_group, md5(ex || '/' || ey) AS cap_rank FROM couples""")
    con.execute(f"""INSERT INTO notes BY NAME SELECT eid,
        CASE WHEN n = 1 THEN '{kind}_unpaired' ELSE '{kind}_tie_or_small_gap' END AS reason
    FROM (SELECT eid, count(*) OVER (PARTITION BY g) AS n FROM ranked)
    WHERE eid NOT IN (SELECT unnest(eids) FROM cand WHERE rule = '{kind}')""")
    con.execute("DROP TABLE scored; DROP TABLE ranked; DROP TABLE couples")


@register("rating", "ratings: KTO labels by threshold, pairs by gap within a prompt",
          reads=("ev", "ih"), writes=("cand", "notes"))
def _rating(con: Any, params: ExtractParams) -> None:
    _scored(con, params, "rating")


@register("implicit", "regenerations, copies and abandons as weak signals",
          reads=("ev", "ih"), writes=("cand", "notes"))
def _implicit(con: Any, params: ExtractParams) -> None:
    w = params.implicit_weights
    # the regenerated answer (it names the replaced one in `regenerates`) is weakly better than the replaced one
    con.execute(f"""INSERT INTO cand BY NAME SELECT 'pairs' AS set, 'implicit' AS rule, n.iid AS prompt_iid,
        'i:' || n.iid AS a, 'i:' || e.iid AS b, {w['regenerate']} AS weight, [e.eid] AS eids, [n.iid, e.iid] AS iids
    FROM ev e JOIN ih o ON o.iid = e.iid JOIN ih n ON n.regenerates = e.iid AND n.pkey = o.pkey
    WHERE e.kind = 'implicit' AND e.implicit.action = 'regenerate'""")
    con.execute("""INSERT INTO notes BY NAME SELECT eid, 'no_regeneration' AS reason FROM ev
    WHERE kind = 'implicit' AND implicit.action = 'regenerate' AND eid NOT IN (SELECT unnest(eids) FROM cand WHERE rule = 'implicit')""")
    con.execute(f"""INSERT INTO cand BY NAME SELECT 'unpaired' AS set, 'implicit' AS rule, iid AS prompt_iid,
        'i:' || iid AS a, implicit.action = 'copy' AS label,
        CASE implicit.action WHEN 'copy' THEN {w['copy']} ELSE {w['abandon']} END AS weight, [eid] AS eids, [iid] AS iids
    FROM ev WHERE kind = 'implicit' AND implicit.action IN ('copy', 'abandon')""")


@register("outcome", "task outcomes as rewards, and success over failure pairs",
          reads=("ev", "ih"), writes=("cand", "notes"))
def _outcome(con: Any, params: ExtractParams) -> None:
    width = params.max_pairs_per_prompt
    con.execute("""
    CREATE TABLE outcomes AS SELECT * FROM (
        SELECT e.eid, e.iid, outcome.success AS ok, coalesce(outcome.reward, outcome.success::INT::DOUBLE) AS reward,
               coalesce('task:' || outcome.task, 'prompt:' || i.pkey) AS cluster,
               row_number() OVER (PARTITION BY e.iid ORDER BY e.ts DESC, e.eid DESC) AS latest
        FROM ev e JOIN ih i ON i.iid = e.iid WHERE e.kind = 'outcome')""")
    con.execute("INSERT INTO notes BY NAME SELECT eid, 'outcome_superseded' AS reason FROM outcomes WHERE latest > 1")
    con.execute("DELETE FROM outcomes WHERE latest > 1")
    con.execute("""INSERT INTO cand BY NAME SELECT 'rewards' AS set, 'outcome' AS rule, iid AS prompt_iid, 'i:' || iid AS a,
        reward, 1.0 AS weight, [eid] AS eids, [iid] AS iids FROM outcomes""")
    # success over failure in one task cluster; each success meets `width` failures (the pair uses its prompt)
    con.execute(f"""INSERT INTO cand BY NAME SELECT 'pairs' AS set, 'outcome' AS rule, s.iid AS prompt_iid,
        'i:' || s.iid AS a, 'i:' || f.iid AS b, 1.0 AS weight, [s.eid, f.eid] AS eids, [s.iid, f.iid] AS iids,
        'outcome/' || s.cluster AS cap_group, md5(s.eid || '/' || f.eid) AS cap_rank
    FROM (SELECT s.*, unnest(generate_series(0, least(n.n, {width}) - 1)) AS off, n.n
          FROM (SELECT *, row_number() OVER (PARTITION BY cluster ORDER BY md5(eid), eid) - 1 AS pos FROM outcomes WHERE ok) s
          JOIN (SELECT cluster, count(*) AS n FROM outcomes WHERE NOT ok GROUP BY cluster) n USING (cluster)) s
    JOIN (SELECT *, row_number() OVER (PARTITION BY cluster ORDER BY md5(eid), eid) - 1 AS pos FROM outcomes WHERE NOT ok) f
      ON f.cluster = s.cluster AND f.pos = (s.pos + s.off) % s.n""")
    con.execute("DROP TABLE outcomes")


@register("judge", "recorded judge scores, used like ratings", reads=("ev", "ih"), writes=("cand", "notes"))
def _judge(con: Any, params: ExtractParams) -> None:
    _scored(con, params, "judge")  # recorded verdicts; the live judge (rlaif) adds its rows later
