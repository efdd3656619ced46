"""Filters, in SQL: which events reach the rules, what text may be written, and which rows are kept.

Before the rules: the time window, the agent versions, the enabled signals and a per-user cap (table `ev`).
On the text (tables `prompts` and `ans`): PII redaction and decontamination against every eval suite.
On the rows (table `rows`): identical answers, contaminated prompts, PII (when dropping), exact and near
duplicates, and the per-prompt cap; each dropped row keeps the first reason that applied.
"""

from __future__ import annotations

import json
import re
import string
from pathlib import Path
from typing import Any

from rlops.errors import InvalidInput, Problem, StageFailed
from rlops.extract.engine import quote
from rlops.extract.load import SEPARATORS, pii_counts
from rlops.extract.params import ExtractParams
from rlops.extract.pii import TYPES
from rlops.extract.rules import RULE_ORDER

NGRAM = 13  # words; a suite item shorter than this is matched as a whole
KIND_RULE = {"rating": "rating", "pairwise": "pairwise", "ranking": "ranking", "edit": "edit", "implicit": "implicit",
             "outcome": "outcome", "judge": "judge"}  # comment has no rule
_SEPARATORS = str.maketrans(dict.fromkeys(string.punctuation + " \t\n\r\x0b\x0c", " "))  # as SQL's norm()


def normalise(text: str) -> str:
    """Lowercase, ASCII punctuation and whitespace a space, spaces collapsed: 'Where is  my order?!' -> 'where is my order'."""
    return " ".join(w for w in text.lower().translate(_SEPARATORS).split(" ") if w)


def filter_events(con: Any, params: ExtractParams) -> None:
    """Table `ev`: the events that reach the rules; `ev_drop` (k, reason) for the others."""
    window = "FALSE"
    if params.window is not None:
        window = f"NOT (CAST(f.ts AS DATE) BETWEEN DATE '{params.window.start}' AND DATE '{params.window.end}')"
    versions = "FALSE"
    if params.agent_versions is not None:
        versions = f"NOT list_contains([{', '.join(quote(v) for v in params.agent_versions)}], g.version)"
    rules = ", ".join(quote(k) for k, r in KIND_RULE.items() if r in params.signals) or "NULL"
    off = [a for a, w in params.implicit_weights.items() if w == 0]
    off_sql = f"f.kind = 'implicit' AND list_contains([{', '.join(quote(a) for a in off)}], f.implicit.action)" if off else "FALSE"
    con.execute(f"""
    CREATE TABLE ev_all AS SELECT f.k, f.actor, g.version, coalesce(g.usr, f.actor) AS usr_or_actor, CASE
        WHEN {window} THEN 'outside_window'
        WHEN {versions} THEN 'agent_version'
        WHEN f.kind = 'comment' THEN 'no_signal'
        WHEN f.kind NOT IN ({rules}) THEN 'signal_disabled'
        WHEN {off_sql} THEN 'implicit_action_off' END AS reason
    FROM good_fb f JOIN good_ix g ON g.iid = f.iid""")
    if params.max_per_user is not None:
        key = "ev_all.actor" if params.cap_by == "actor" else "ev_all.usr_or_actor"
        con.execute(f"""UPDATE ev_all SET reason = 'user_cap' WHERE k IN (SELECT k FROM (
            SELECT k, row_number() OVER (PARTITION BY {key} ORDER BY md5(eid), eid) AS n
            FROM ev_all JOIN fb USING (k) WHERE reason IS NULL) WHERE n > {params.max_per_user})""")
    # the events the rules see: the feedback record with its interaction's version (a view: no copy)
    con.execute("CREATE VIEW ev AS SELECT fb.*, a.version FROM fb JOIN ev_all a USING (k) WHERE a.reason IS NULL")
    con.execute("CREATE TABLE ev_drop AS SELECT k, reason FROM ev_all WHERE reason IS NOT NULL")


def suite_items(root: Path, suites_dir: str) -> list[tuple[str, str, str]]:
    """(suite, item id, normalised prompt) for every row of every `<suite>/prompts.jsonl` under suites_dir."""
    folder = root / suites_dir
    if not folder.is_dir():
        raise StageFailed(f"{suites_dir}: no such folder (extract.suites_dir)", hint="set extract.decontaminate: false to skip")
    files = sorted(folder.glob("*/prompts.jsonl"))
    if not files:
        raise StageFailed(f"{suites_dir}: no <suite>/prompts.jsonl found", hint="set extract.decontaminate: false to skip")
    items: list[tuple[str, str, str]] = []
    problems: list[Problem] = []
    for path in files:
        shown = f"{suites_dir}/{path.relative_to(folder).as_posix()}"
        for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                row = json.loads(raw)
            except json.JSONDecodeError as e:
                problems.append(Problem(shown, number, "", f"not JSON: {e.msg}"))
                continue
            if not isinstance(row, dict) or not isinstance(row.get("prompt"), str):
                problems.append(Problem(shown, number, "prompt", "missing or not a string"))
                continue
            text = normalise(row["prompt"])
            if text:
                items.append((path.parent.name, str(row.get("id", number)), text))
    if problems:
        raise InvalidInput(problems, hint="the eval suites are read to keep their prompts out of training data")
    return items


def text_tables(con: Any, params: ExtractParams, root: Path) -> None:
    """Tables `prompts` (per interaction) and `ans` (per answer: 'i:<interaction_id>' or 'e:<edit event_id>') with
    what the filters need, and the view `texts` (ref -> the answer's JSON as it will be written, redacted)."""
    redact = "pii_redact({})" if params.pii != "off" else "{}::VARCHAR"
    pii = ", ".join(f"{{p}}_{t} AS pii_{t}" for t in TYPES) + ", {p}_n AS pii_n"
    con.execute(f"CREATE TABLE prompts AS SELECT iid, pkey, near_user, {pii.format(p='pp')} FROM ih")
    con.execute(f"""CREATE TABLE edit_ans AS SELECT *, {pii_counts("raw", "js", "po")} FROM (
        SELECT *, {redact.format("raw")} AS js, length(txt) AS chars, exact_key(txt) AS exact, near(txt) AS near FROM (
            SELECT 'e:' || eid AS ref, edit.output_messages::VARCHAR AS raw, text_of(edit.output_messages) AS txt
            FROM ev WHERE kind = 'edit'))""")
    con.execute(f"""CREATE TABLE ans AS SELECT 'i:' || iid AS ref, chars, exact, near, {pii.format(p='po')} FROM ih
        UNION ALL SELECT ref, chars, exact, near, {pii.format(p='po')} FROM edit_ans""")
    con.execute("CREATE VIEW texts AS SELECT 'i:' || iid AS ref, out_js AS js FROM ih UNION ALL SELECT ref, js FROM edit_ans")
    con.execute("CREATE TABLE contam (pkey VARCHAR, suite VARCHAR, item VARCHAR)")
    if params.decontaminate:
        _decontaminate(con, suite_items(root, params.suites_dir))


def _decontaminate(con: Any, items: list[tuple[str, str, str]]) -> None:
    """Table `contam`: a prompt is contaminated by a suite item when its user text contains one of the item's
    13-word windows (normalised), or the whole item when it is shorter than 13 words.

    A cheap test first keeps the work small: a text can only contain a window if it contains the window's
    longest pair of adjacent words (one regular expression over all of them, i.e. a DFA); only those texts are
    normalised and cut into 13-grams."""
    windows: list[tuple[list[str], str, str]] = []
    con.execute("CREATE TABLE suite_grams (gram VARCHAR, n INTEGER, suite VARCHAR, item VARCHAR)")
    for suite, item, text in items:
        words = text.split()
        spans = [words[i : i + NGRAM] for i in range(len(words) - NGRAM + 1)] if len(words) >= NGRAM else [words]
        windows += [(span, suite, item) for span in spans]
    if not windows:
        return
    con.executemany("INSERT INTO suite_grams VALUES (?, ?, ?, ?)", [(" ".join(w), len(w), s, i) for w, s, i in windows])
    sep = "[" + "".join("\\" + c if c in "\\]^-[" else c for c in SEPARATORS) + "]+"
    anchors = set()
    for span, _, _ in windows:
        pairs = list(zip(span, span[1:])) or [(span[0], "")]
        a, b = max(pairs, key=lambda p: (len(p[0]) + len(p[1]), p))
        anchors.add(re.escape(a) + (sep + re.escape(b) if b else ""))
    test = quote("|".join(sorted(anchors)))
    con.execute(f"""CREATE TABLE ptext AS SELECT pkey, list_filter(string_split(norm(user_text), ' '), lambda x: x <> '') AS w
        FROM (SELECT pkey, any_value(user_text) AS user_text FROM ih WHERE regexp_matches(lower(user_text), {test}) GROUP BY pkey)""")
    con.execute(f"""INSERT INTO contam SELECT DISTINCT p.pkey, g.suite, g.item FROM (
        SELECT pkey, array_to_string(w[i : i + {NGRAM - 1}], ' ') AS gram FROM (
            SELECT pkey, w, unnest(generate_series(1, len(w) - {NGRAM - 1})) AS i FROM ptext WHERE len(w) >= {NGRAM}))
        p JOIN suite_grams g ON g.gram = p.gram AND g.n = {NGRAM}""")
    short = sorted({" ".join(w) for w, _, _ in windows if len(w) < NGRAM}, key=lambda t: (-len(t), t))
    if short:  # items shorter than a window: the whole item, found by one regular expression over all of them
        pattern = quote(" (" + "|".join(re.escape(t) for t in short) + ") ")
        con.execute(f"""INSERT INTO contam SELECT DISTINCT p.pkey, g.suite, g.item FROM (
            SELECT pkey, unnest(regexp_extract_all(t, {pattern}, 1)) AS gram FROM (
                SELECT pkey, ' ' || array_to_string(w, ' ') || ' ' AS t FROM ptext) WHERE regexp_matches(t, {pattern})) p
            JOIN suite_grams g ON g.gram = p.gram AND g.n < {NGRAM}""")
    con.execute("DROP TABLE ptext")


def filter_rows(con: Any, params: ExtractParams) -> None:
    """Table `rows`: every candidate with its sort key, dedup keys and `drop` (NULL when kept)."""
    rule_order = "CASE rule " + " ".join(f"WHEN '{r}' THEN {i}" for r, i in RULE_ORDER.items()) + " END"
    pii_drop = "p.pii_n + a.pii_n + coalesce(b.pii_n, 0) > 0" if params.pii == "drop" else "FALSE"
    exact = "hash(c.set, p.pkey, a.exact, b.exact, c.label)"
    near = "hash(c.set, p.near_user, a.near, b.near, c.label)"
    dedup = {"off": "NULL", "exact": exact, "near": near}[params.dedup]  # near equality implies exact equality
    # one pass: of rows with one dedup key, the first in write order stays; a later one is an exact duplicate
    # when it equals that first row up to case and whitespace, else a near duplicate (near keys are coarser)
    later = "row_number() OVER (PARTITION BY drop IS NULL, dedup_key ORDER BY sort_key) > 1"
    same = "first_value(exact_key) OVER (PARTITION BY drop IS NULL, dedup_key ORDER BY sort_key) = exact_key"
    dup = "'duplicate'" if params.dedup == "exact" else f"CASE WHEN {same} THEN 'duplicate' ELSE 'near_duplicate' END"
    dedup_step = f"CASE WHEN drop IS NULL AND {later} THEN {dup} ELSE drop END" if params.dedup != "off" else "drop"
    capped = (f"cap_group IS NOT NULL AND row_number() OVER (PARTITION BY drop IS NULL, cap_group "
              f"ORDER BY cap_rank, sort_key) > {params.max_pairs_per_prompt}")
    con.execute(f"""
    CREATE TABLE rows AS SELECT c.*, {rule_order} AS rule_order,
        printf('%s/%02d/%s/%s/%s/%s', c.set, {rule_order}, coalesce(array_to_string(c.eids, ','), ''),
               array_to_string(c.iids, ','), c.a, coalesce(c.b, '')) AS sort_key,
        {exact} AS exact_key, {dedup} AS dedup_key, a.chars AS a_chars, b.chars AS b_chars,
        CASE WHEN c.b IS NOT NULL AND a.exact = b.exact THEN 'identical_answers'
             WHEN p.pkey IN (SELECT pkey FROM contam) THEN 'contaminated'
             WHEN {pii_drop} THEN 'pii' END AS drop
    FROM cand c JOIN prompts p ON p.iid = c.prompt_iid JOIN ans a ON a.ref = c.a LEFT JOIN ans b ON b.ref = c.b""")
    # the windows sort only the columns they need (sorting whole rows costs several times more); the few rows
    # they drop are then updated in place
    con.execute(f"""
    CREATE TEMP TABLE rows_drop AS SELECT rid, drop FROM (
    SELECT rid, old, CASE WHEN drop IS NULL AND {capped} THEN 'pair_cap' ELSE drop END AS drop FROM (
    SELECT * REPLACE ({dedup_step} AS drop) FROM (
    SELECT rowid AS rid, drop AS old, drop, dedup_key, sort_key, exact_key, cap_group, cap_rank FROM rows)))
    WHERE drop IS DISTINCT FROM old""")
    con.execute("UPDATE rows SET drop = d.drop FROM rows_drop d WHERE rows.rowid = d.rid")
    con.execute("DROP TABLE rows_drop")
