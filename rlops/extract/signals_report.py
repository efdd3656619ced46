"""The signals report: every record read is used, dropped (with the reason) or quarantined, and what came out.

`status_tables` decides each record's fate in SQL; `signals_report` aggregates it into signals_detail.json (the
whole report, evidence in the pull request); `key_counts` keeps the few counts of signals.json, the DVC metric
(`dvc metrics show` prints one readable row of it); `signals_markdown` renders the section of the pull request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from rlops.errors import StageFailed
from rlops.extract.params import KINDS, SIGNALS, ExtractParams
from rlops.extract.pii import TYPES
from rlops.extract.rules import SETS

# every reason a feedback event can be dropped for, in the order they are checked; all appear in signals.json
DROP_REASONS = (
    "outside_window",  # given outside data.window
    "agent_version",  # about an answer of an agent version extract.agent_versions leaves out
    "no_signal",  # a comment: kept for people, no training signal
    "signal_disabled",  # its rule is not in extract.signals
    "implicit_action_off",  # an implicit action whose weight is 0
    "user_cap",  # its user already gave extract.max_per_user events
    "trivial_edit",  # the edit changed fewer than extract.edit_min_chars characters
    "rating_superseded",  # the same interaction was rated again later
    "rating_unpaired",  # no label (a middle rating) and no other answer to the same prompt was rated
    "rating_tie_or_small_gap",  # no label, and no other rating at least extract.rating_min_gap apart
    "judge_superseded", "judge_unpaired", "judge_tie_or_small_gap",  # the same, for recorded judge scores
    "no_regeneration",  # a regenerate action, but no interaction names this one in `regenerates`
    "outcome_superseded",  # the same interaction's outcome was reported again later
    "identical_answers",  # chosen and rejected say the same thing
    "contaminated",  # the prompt overlaps an eval suite item
    "pii",  # the row holds PII and extract.pii is drop
    "duplicate",  # an earlier row has the same prompt and answers (normalised)
    "near_duplicate",  # an earlier row has nearly the same prompt and answers
    "pair_cap",  # the prompt (or task) already gave extract.max_pairs_per_prompt pairs
)
ROW_REASONS = ("identical_answers", "contaminated", "pii", "duplicate", "near_duplicate", "pair_cap")
INTERACTION_REASONS = ("agent_version", "no_feedback", "feedback_unused")
_PRIORITY = "CASE reason " + " ".join(f"WHEN '{r}' THEN {i}" for i, r in enumerate(DROP_REASONS)) + " ELSE 999 END"


def status_tables(con: Any, params: ExtractParams) -> None:
    """Tables fb_status (k, status, reason per feedback record) and ix_status, fb_status_n (counts of them)."""
    con.execute("CREATE TABLE used_eids AS SELECT DISTINCT unnest(eids) AS eid FROM rows WHERE drop IS NULL")
    con.execute("CREATE TABLE used_iids AS SELECT DISTINCT unnest(iids) AS iid FROM rows WHERE drop IS NULL")
    con.execute(f"""
    CREATE TABLE ev_reason AS SELECT eid, arg_min(reason, {_PRIORITY}) AS reason FROM (
        SELECT eid, reason FROM notes UNION ALL SELECT unnest(eids) AS eid, drop AS reason FROM rows WHERE drop IS NOT NULL)
    GROUP BY eid""")
    con.execute("""
    CREATE TABLE fb_status AS SELECT fb.k, fb.kind, fb.filename, g.version, CASE
        WHEN q.k IS NOT NULL THEN 'quarantined' WHEN u.eid IS NOT NULL THEN 'used' ELSE 'dropped' END AS status,
        CASE WHEN q.k IS NULL AND u.eid IS NULL THEN coalesce(d.reason, r.reason) END AS reason
    FROM fb LEFT JOIN (SELECT DISTINCT k FROM quarantine WHERE stream = 'feedback') q USING (k)
        LEFT JOIN used_eids u ON u.eid = fb.eid AND q.k IS NULL
        LEFT JOIN ev_drop d ON d.k = fb.k LEFT JOIN ev_reason r ON r.eid = fb.eid AND q.k IS NULL
        LEFT JOIN good_ix g ON g.iid = fb.iid""")
    versions = "FALSE"
    if params.agent_versions is not None:
        versions = "NOT list_contains([" + ", ".join("'" + v.replace("'", "''") + "'" for v in params.agent_versions) + "], ix.version)"
    # one row per (file, version, status, reason) with its count: every interaction, without a per-record table
    con.execute(f"""
    CREATE TABLE ix_status AS SELECT filename, version, status, reason, count(*) AS n FROM (
        SELECT ix.filename, CASE WHEN q.k IS NULL THEN ix.version END AS version, CASE
            WHEN q.k IS NOT NULL THEN 'quarantined' WHEN u.iid IS NOT NULL THEN 'used' ELSE 'dropped' END AS status,
            CASE WHEN q.k IS NOT NULL OR u.iid IS NOT NULL THEN NULL WHEN {versions} THEN 'agent_version'
                 WHEN NOT ix.heavy THEN 'no_feedback' ELSE 'feedback_unused' END AS reason
        FROM ix LEFT JOIN (SELECT DISTINCT k FROM quarantine WHERE stream = 'interactions') q USING (k)
            LEFT JOIN used_iids u ON u.iid = ix.iid AND q.k IS NULL AND ix.heavy)
    GROUP BY ALL""")
    con.execute("""CREATE TABLE fb_status_n AS SELECT filename, version, kind, status, reason, count(*) AS n
        FROM fb_status GROUP BY ALL""")
    lost = con.execute("SELECT count(*) FROM fb_status WHERE status = 'dropped' AND reason IS NULL").fetchone()[0]
    if lost:
        raise StageFailed(f"extract accounting is broken (a bug): {lost} feedback events neither used nor dropped with a reason")


def _counts(con: Any, sql: str) -> dict[str, int]:
    return {str(k): int(n) for k, n in con.execute(sql).fetchall()}


def _num(x: Any, digits: int = 4) -> float | None:
    return None if x is None else round(float(x), digits)


def signals_report(con: Any, params: ExtractParams, sources: Mapping[str, Any], quarantine_pii: Mapping[str, int],
                   judge: Mapping[str, Any]) -> dict[str, Any]:
    """The content of signals_detail.json; raises StageFailed if a record is unaccounted for (a bug)."""
    invariant: dict[str, Any] = {}
    for stream, table in (("interactions", "ix_status"), ("feedback", "fb_status_n")):
        n = _counts(con, f"SELECT status, sum(n) FROM {table} GROUP BY status")
        read = int(con.execute(f"SELECT coalesce(sum(n), 0) FROM {table}").fetchone()[0])
        used, dropped, quarantined = n.get("used", 0), n.get("dropped", 0), n.get("quarantined", 0)
        invariant[stream] = {"read": read, "used": used, "dropped": dropped, "quarantined": quarantined,
                             "holds": read == used + dropped + quarantined}
        if not invariant[stream]["holds"]:
            raise StageFailed(f"extract accounting is broken (a bug): {read} {stream} read, {used} used + "
                              f"{dropped} dropped + {quarantined} quarantined")
    invariant["holds"] = True
    kinds = _counts(con, "SELECT kind, sum(n) FROM fb_status_n WHERE status = 'used' GROUP BY kind")
    dropped = _counts(con, "SELECT reason, sum(n) FROM fb_status_n WHERE status = 'dropped' GROUP BY reason")
    ix_dropped = _counts(con, "SELECT reason, sum(n) FROM ix_status WHERE status = 'dropped' GROUP BY reason")
    per_kind = {}
    for kind in KINDS:
        c = _counts(con, f"SELECT status, sum(n) FROM fb_status_n WHERE kind = '{kind}' GROUP BY status")
        per_kind[kind] = {s: c.get(s, 0) for s in ("used", "dropped", "quarantined")}
    written = {s: _counts(con, f"SELECT rule, count(*) FROM rows WHERE drop IS NULL AND set = '{s}' GROUP BY rule")
               for s in SETS}
    row_drops = _counts(con, "SELECT drop, count(*) FROM rows WHERE drop IS NOT NULL GROUP BY drop")
    labels = con.execute("""SELECT count(*) FILTER (WHERE label), count(*) FILTER (WHERE NOT label)
        FROM rows WHERE drop IS NULL AND set = 'unpaired'""").fetchone()
    pair_stats = con.execute("""SELECT avg(a_chars), avg(b_chars), avg((a_chars > b_chars)::INT), count(shown_first),
        avg(shown_first::INT) FROM rows WHERE drop IS NULL AND set = 'pairs'""").fetchone()
    rewards = con.execute("SELECT count(*), avg(reward) FROM rows WHERE drop IS NULL AND set = 'rewards'").fetchone()
    pii = _pii(con, quarantine_pii, params)
    versions = {}
    for version, n_ix, n_fb, n_used in con.execute("""
        SELECT v, sum(ix), sum(fb), sum(used) FROM (
            SELECT version AS v, n AS ix, 0 AS fb, 0 AS used FROM ix_status WHERE status <> 'quarantined'
            UNION ALL SELECT version, 0, n, (status = 'used')::INT * n FROM fb_status_n WHERE status <> 'quarantined')
        WHERE v IS NOT NULL GROUP BY v ORDER BY v""").fetchall():
        versions[version] = {"interactions": int(n_ix), "feedback": int(n_fb), "feedback_used": int(n_used),
                             "included": params.agent_versions is None or version in params.agent_versions}
    return {
        "records_read": {s: invariant[s]["read"] for s in ("interactions", "feedback")},
        "quarantined": {s: invariant[s]["quarantined"] for s in ("interactions", "feedback")},
        "invariant": invariant,
        "used": {kind: kinds.get(kind, 0) for kind in KINDS},
        "dropped": {reason: dropped.get(reason, 0) for reason in DROP_REASONS},
        "dropped_interactions": {reason: ix_dropped.get(reason, 0) for reason in INTERACTION_REASONS},
        "kinds": per_kind,
        "sources": dict(sources),
        "rows": {s: sum(written[s].values()) for s in SETS},
        "rows_dropped": {reason: row_drops.get(reason, 0) for reason in ROW_REASONS},
        "pairs": {**{rule: written["pairs"].get(rule, 0) for rule in SIGNALS}, "total": sum(written["pairs"].values())},
        "unpaired": {**{rule: written["unpaired"].get(rule, 0) for rule in SIGNALS if rule in ("rating", "implicit", "judge")},
                     "label_true": int(labels[0]), "label_false": int(labels[1]), "total": sum(written["unpaired"].values())},
        "sft": {"edit": written["sft"].get("edit", 0), "total": sum(written["sft"].values())},
        "rewards": {"outcome": int(rewards[0]), "mean": _num(rewards[1])},
        "pair_stats": {"chosen_chars_mean": _num(pair_stats[0], 1), "rejected_chars_mean": _num(pair_stats[1], 1),
                       "chosen_longer_fraction": _num(pair_stats[2]), "shown_order_pairs": int(pair_stats[3]),
                       "chosen_shown_first_fraction": _num(pair_stats[4])},
        "pii": pii,
        "decontamination": _decontamination(con, params),
        "versions": versions,
        "judge": dict(judge),
        "settings": {"signals": ",".join(params.signals), "agent_versions": params.agent_versions_setting,
                     "dedup": params.dedup, "pii": params.pii, "pii_tier": params.pii_tier,
                     "window": f"{params.window.start}..{params.window.end}" if params.window else "all"},
    }


def key_counts(report: Mapping[str, Any]) -> dict[str, Any]:
    """signals.json, the stage's DVC metric: the handful of counts that `dvc metrics show` and `dvc metrics diff` print
    in one readable row. The whole report (per rule, reason, kind, version, PII type ...) is signals_detail.json."""
    inv = report["invariant"]
    return {"records_read": dict(report["records_read"]), "quarantined": dict(report["quarantined"]),
            "feedback": {"used": inv["feedback"]["used"], "dropped": inv["feedback"]["dropped"]},
            "rows": dict(report["rows"])}


def _pii(con: Any, quarantine_pii: Mapping[str, int], params: ExtractParams) -> dict[str, Any]:
    """PII found (and replaced, unless pii is drop) in what was written: kept rows' prompts and answers, quarantine."""
    cols = ", ".join(f"sum(pii_{t})" for t in TYPES)
    prompts = con.execute(f"""SELECT {cols} FROM prompts WHERE iid IN (
        SELECT prompt_iid FROM rows WHERE drop IS NULL)""").fetchone()
    answers = con.execute(f"""SELECT {cols} FROM ans WHERE ref IN (
        SELECT a FROM rows WHERE drop IS NULL UNION SELECT b FROM rows WHERE drop IS NULL)""").fetchone()
    out: dict[str, Any] = {t: int(p or 0) + int(a or 0) + int(quarantine_pii.get(t, 0)) for t, p, a in zip(TYPES, prompts, answers)}
    out["quarantine"] = int(sum(quarantine_pii.get(t, 0) for t in TYPES))
    out["rows_dropped"] = con.execute("SELECT count(*) FROM rows WHERE drop = 'pii'").fetchone()[0]
    for key, value in quarantine_pii.items():
        if key not in TYPES:
            out[key] = int(value)  # what the Presidio tier found, by entity type
    return out


def _decontamination(con: Any, params: ExtractParams) -> dict[str, Any]:
    if not params.decontaminate:
        return {"enabled": False}
    out: dict[str, Any] = {"enabled": True}
    suites = [r[0] for r in con.execute("SELECT DISTINCT suite FROM suite_grams ORDER BY suite").fetchall()]
    for suite in suites:
        items, prompts, removed = con.execute(f"""SELECT count(DISTINCT item), count(DISTINCT pkey),
            (SELECT count(*) FROM rows r JOIN ih i ON i.iid = r.prompt_iid
             WHERE r.drop = 'contaminated' AND i.pkey IN (SELECT pkey FROM contam WHERE suite = '{suite}'))
            FROM contam WHERE suite = '{suite}'""").fetchone()
        out[suite] = {"items_found": int(items), "prompts": int(prompts), "rows_removed": int(removed)}
    out["rows_removed"] = con.execute("SELECT count(*) FROM rows WHERE drop = 'contaminated'").fetchone()[0]
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def signals_markdown(report: Mapping[str, Any], params: ExtractParams) -> str:
    """The section of the pull request's report about the training data."""
    inv, pairs, stats = report["invariant"], report["pairs"], report["pair_stats"]
    window = f"{params.window.start} to {params.window.end}" if params.window else "all dates"
    lines = [
        "### Training signals",
        "",
        f"Read {inv['interactions']['read']} interactions and {inv['feedback']['read']} feedback events "
        f"(`{'`, `'.join(params.interactions)}`, `{'`, `'.join(params.feedback)}`); window: {window}; agent versions: "
        f"{params.agent_versions_setting}; rules: {', '.join(params.signals)}.",
        "",
        "| records | read | used | dropped | quarantined |",
        "|---|---:|---:|---:|---:|",
        *(f"| {s} | {inv[s]['read']} | {inv[s]['used']} | {inv[s]['dropped']} | {inv[s]['quarantined']} |"
          for s in ("interactions", "feedback")),
        "",
        "| rule | pairs | unpaired | sft | rewards |",
        "|---|---:|---:|---:|---:|",
    ]
    for rule in SIGNALS:
        row = [pairs.get(rule, 0), report["unpaired"].get(rule, 0), report["sft"].get(rule, 0),
               report["rewards"]["outcome"] if rule == "outcome" else 0]
        if rule in params.signals or any(row):
            lines.append(f"| {rule} | " + " | ".join(str(n) for n in row) + " |")
    lines.append(f"| **total** | **{pairs['total']}** | **{report['unpaired']['total']}** | "
                 f"**{report['sft']['total']}** | **{report['rewards']['outcome']}** |")
    dropped = [(r, n) for r, n in report["dropped"].items() if n]
    if dropped:
        lines += ["", "| dropped feedback | events |", "|---|---:|", *(f"| {r} | {n} |" for r, n in dropped)]
    lines += [
        "",
        f"Pairs: chosen answers average {stats['chosen_chars_mean']} characters, rejected ones "
        f"{stats['rejected_chars_mean']}; the chosen one is longer in {_pct(stats['chosen_longer_fraction'])} "
        f"(length bias). Of {stats['shown_order_pairs']} pairs with a recorded display order, the chosen answer "
        f"was shown first in {_pct(stats['chosen_shown_first_fraction'])} (position bias).",
    ]
    pii = report["pii"]
    found = ", ".join(f"{t} {pii[t]}" for t in TYPES if pii.get(t)) or "none"
    lines.append(f"PII ({params.pii}, {params.pii_tier}): {found}" +
                 (f"; {pii['rows_dropped']} rows dropped." if pii["rows_dropped"] else "."))
    decon = report["decontamination"]
    if decon.get("enabled"):
        per = ", ".join(f"{s} {v['items_found']} items / {v['rows_removed']} rows" for s, v in decon.items()
                        if isinstance(v, dict)) or "nothing found"
        lines.append(f"Decontamination (13-gram overlap with every eval suite): {per}.")
    versions = ", ".join(f"{v} {d['feedback_used']}/{d['feedback']} events used" + ("" if d["included"] else " (left out)")
                         for v, d in report["versions"].items())
    if versions:
        lines.append(f"Agent versions: {versions}.")
    if report["judge"].get("judge"):
        j = report["judge"]
        lines.append(f"Judge {j['judge']}: {j['judged']} pairs judged in both orders, {j['agreed']} agreed.")
    lines += ["", f"Quarantined (malformed, see `quarantine.jsonl`): {inv['interactions']['quarantined']} interaction "
              f"and {inv['feedback']['quarantined']} feedback records. Every record is counted once: "
              f"read = used + dropped + quarantined holds for both."]
    return "\n".join(lines) + "\n"
