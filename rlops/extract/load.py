"""Load the logs into DuckDB tables and sort every record into usable or quarantined, with the reason.

Tables made here (one row per record read; `k` is its ordinal in its stream, which `engine.locate` maps to a line;
`fb` and `ix` are views numbering the rows of the tables fb_rows and ix_rows, see `number_rows`):
  fb          every feedback record, with its own problem if any (schema essentials); fb_dup: repeated ids
  ix          every interaction, light columns (ids, time, version, user, regenerates) and its problem; the raw
              messages only of those feedback refers to (`heavy`)
  ih          the interactions feedback refers to, with their prompt and answer as JSON text, PII-redacted, and
              what the rules and filters need (prompt key, lengths, dedup keys, PII counts)
  quarantine  (stream, k, reason, ref_k) for every record that cannot be used
Only referenced interactions (raw in `ix`, prepared in `ih`) and the edits in `fb` carry message text, so memory
follows the feedback, not the size of the log.
Cheap checks run on every record; the exact reason is spelled out only for the few that fail them.
"""

from __future__ import annotations

import json
import string
from typing import Any

from rlops import records
from rlops.extract.engine import Source, quote, reader
from rlops.extract.params import ExtractParams
from rlops.extract.pii import TOKENS, TYPES

ID_PATTERN = records.ID_PATTERN
ROLES = records.ROLES
WHITESPACE = " \t\n\r\x0b\x0c"
SEPARATORS = string.punctuation + WHITESPACE  # normalised text: lowercase, these become spaces (filters.normalise)
MESSAGES = '[{"role":"VARCHAR","content":"VARCHAR","tool_calls":"JSON"}]'  # what the checks and texts need
IX_COLUMNS = {
    "interaction_id": "VARCHAR", "timestamp": "VARCHAR", "agent": "STRUCT(name VARCHAR, version VARCHAR)",
    "user": "VARCHAR", "regenerates": "VARCHAR", "system_instructions": "JSON",
    "input_messages": "JSON", "output_messages": "JSON",
}
FB_COLUMNS = {
    "event_id": "VARCHAR", "interaction_id": "VARCHAR", "timestamp": "VARCHAR", "actor": "VARCHAR", "kind": "VARCHAR",
    "idempotency_key": "VARCHAR",
    "rating": "STRUCT(value DOUBLE, scale DOUBLE[])",
    "pairwise": "STRUCT(chosen_id VARCHAR, rejected_id VARCHAR, shown_order VARCHAR[])",
    "ranking": "STRUCT(ranked_ids VARCHAR[], shown_order VARCHAR[])",
    "edit": "STRUCT(output_messages JSON)",
    "implicit": "STRUCT(action VARCHAR)",
    "outcome": "STRUCT(success BOOLEAN, reward DOUBLE, task VARCHAR)",
    "judge": "STRUCT(model VARCHAR, rubric VARCHAR, score DOUBLE, scale DOUBLE[])",
    "comment": "STRUCT(text VARCHAR)",
}


def sql_list(items: tuple[str, ...] | list[str]) -> str:
    """A SQL list literal of strings."""
    return "[" + ", ".join(quote(i) for i in items) + "]"


def create_macros(con: Any) -> None:
    """The record checks, as SQL macros that return the problem as text (NULL when there is none)."""
    # one translate() pass: digits become 0, whitespace goes (as squeeze() followed by nine replace() calls)
    near = "translate(lower(left(t, 300)), '123456789 ' || chr(10) || chr(9) || chr(13), '000000000')"
    roles = ", ".join(quote(r) for r in ROLES)
    shown_roles = "[" + ", ".join(f"''{r}''" for r in ROLES) + "]"
    con.execute(f"""
    CREATE OR REPLACE MACRO is_id(x) AS x IS NOT NULL AND length(x) <= {records.ID_MAX} AND regexp_full_match(x, {quote(ID_PATTERN)});
    CREATE OR REPLACE MACRO shown(x) AS '''' || left(x, 80) || '''';
    CREATE OR REPLACE MACRO num(x) AS CASE WHEN x = round(x) AND abs(x) < 1e15 THEN x::BIGINT::VARCHAR ELSE x::VARCHAR END;
    CREATE OR REPLACE MACRO nums(xs) AS '[' || array_to_string(list_transform(xs, lambda x: num(x)), ', ') || ']';
    CREATE OR REPLACE MACRO id_problem(x, f) AS CASE WHEN x IS NULL THEN f || ': missing'
        WHEN NOT is_id(x) THEN f || ': ' || shown(x) || ' is not an id ({records.ID_RULE})' END;
    -- DuckDB reads only T and Z (upper case): the second cast runs only for the rare lower-case stamp
    CREATE OR REPLACE MACRO ts_of(x) AS coalesce(TRY_CAST(x AS TIMESTAMPTZ), TRY_CAST(upper(x) AS TIMESTAMPTZ));
    CREATE OR REPLACE MACRO ts_problem(x, f) AS CASE WHEN x IS NULL THEN f || ': missing'
        WHEN NOT regexp_full_match(x, {quote(records.TIMESTAMP_PATTERN)}) OR ts_of(x) IS NULL
        THEN f || ': ' || shown(x) || ' is not {records.TIMESTAMP_RULE}' END;
    CREATE OR REPLACE MACRO msgs_envelope(m, f) AS CASE WHEN m IS NULL THEN f || ': missing'
        WHEN NOT starts_with(m, '[') THEN f || ': must be a list of messages'
        WHEN m = '[]' THEN f || ': must hold at least one message' END;
    CREATE OR REPLACE MACRO msg_problem(e, f) AS CASE
        WHEN json_type(e) <> 'OBJECT' THEN f || ': must be a message object'
        WHEN json_type(e, '$.role') IS NULL THEN f || '.role: missing'
        WHEN json_type(e, '$.role') <> 'VARCHAR' OR (e->>'$.role') NOT IN ({roles})
        THEN f || '.role: ' || shown(e->>'$.role') || ' is not one of {shown_roles}'
        WHEN json_type(e, '$.content') IS NULL THEN f || '.content: missing'
        WHEN json_type(e, '$.content') = 'NULL' AND NOT ((e->>'$.role') = 'assistant' AND json_type(e, '$.tool_calls') = 'ARRAY')
        THEN f || '.content: may be null only in an assistant message with tool_calls'
        WHEN json_type(e, '$.content') NOT IN ('VARCHAR', 'NULL') THEN f || '.content: must be a string' END;
    CREATE OR REPLACE MACRO msgs_problem(m, f) AS coalesce(msgs_envelope(m, f), list_filter(
        list_transform(json_extract(m, '$[*]'), lambda e, i: msg_problem(e, f || '[' || (i - 1) || ']')),
        lambda p: p IS NOT NULL)[1]);
    CREATE OR REPLACE MACRO msgs_ok(ms) AS len(ms) > 0 AND list_bool_and([m.role IN ({roles})
        AND (m.content IS NOT NULL OR (m.role = 'assistant' AND m.tool_calls IS NOT NULL)) FOR m IN ms]);
    CREATE OR REPLACE MACRO text_of(m) AS array_to_string(list_filter(json_extract_string(m, '$[*].content'),
        lambda c: c IS NOT NULL), chr(10));
    CREATE OR REPLACE MACRO norm(t) AS translate(lower(t), {quote(SEPARATORS)}, {quote(" " * len(SEPARATORS))});
    CREATE OR REPLACE MACRO squeeze(t) AS translate(t, ' ' || chr(10) || chr(9) || chr(13), '');
    CREATE OR REPLACE MACRO exact_key(t) AS hash(squeeze(lower(t)));
    CREATE OR REPLACE MACRO near(t) AS hash(left({near}, 200));
    CREATE OR REPLACE MACRO same_ids(a, b) AS list_sort(a) = list_sort(b);
    """)


def load_feedback(con: Any, source: Source, params: ExtractParams) -> None:
    """Table fb: one row per feedback record with its own problem (those needing the interactions come later)."""
    kinds = sql_list(records.KINDS)
    actions = sql_list(records.IMPLICIT_ACTIONS)
    scan = f"""(SELECT filename, event_id AS eid, interaction_id AS iid,
        "timestamp" AS ts_raw, actor, kind, idempotency_key AS ikey, rating, pairwise, ranking, edit, implicit,
        outcome, judge, comment FROM {reader(con, source, FB_COLUMNS)})"""
    con.execute(f"""
    CREATE TABLE fb_rows AS SELECT *, ts_of(ts_raw) AS ts, NULLIF(concat_ws('; ',
        id_problem(eid, 'event_id'), id_problem(iid, 'interaction_id'), ts_problem(ts_raw, 'timestamp'),
        CASE WHEN actor IS NULL THEN 'actor: missing' WHEN NOT regexp_full_match(actor, {quote(records.ACTOR_PATTERN)})
             THEN 'actor: ' || shown(actor) || ' must look like kind:name, e.g. staff:alice' END,
        CASE WHEN kind IS NULL THEN 'kind: missing'
             WHEN NOT list_contains({kinds}, kind) THEN 'kind: ' || shown(kind) || ' is not one of {kinds.replace("'", "''")}'
             ELSE details_problem END), '') AS problem
    FROM (SELECT *, CASE kind
        WHEN 'rating' THEN CASE WHEN rating IS NULL THEN 'rating: missing'
            WHEN rating.value IS NULL OR NOT isfinite(rating.value) THEN 'rating.value: missing or not a number'
            WHEN rating.scale IS NULL OR len(rating.scale) <> 2 OR list_has(rating.scale, NULL)
            THEN 'rating.scale: must be [lowest, highest]'
            WHEN NOT rating.scale[1] < rating.scale[2] THEN 'rating.scale: ' || nums(rating.scale) || ' is not [lowest, highest]'
            WHEN NOT rating.value BETWEEN rating.scale[1] AND rating.scale[2]
            THEN 'rating.value: ' || num(rating.value) || ' is outside the scale ' || nums(rating.scale) END
        WHEN 'pairwise' THEN CASE WHEN pairwise IS NULL THEN 'pairwise: missing'
            WHEN pairwise.chosen_id IS NULL THEN 'pairwise.chosen_id: missing'
            WHEN pairwise.rejected_id IS NULL THEN 'pairwise.rejected_id: missing'
            WHEN pairwise.chosen_id <> iid THEN 'pairwise.chosen_id: ' || pairwise.chosen_id || ' differs from interaction_id ' || iid
            WHEN pairwise.rejected_id = pairwise.chosen_id THEN 'pairwise.rejected_id: ' || pairwise.rejected_id || ' is also the chosen interaction'
            WHEN pairwise.shown_order IS NOT NULL AND NOT same_ids(pairwise.shown_order, [pairwise.chosen_id, pairwise.rejected_id])
            THEN 'pairwise.shown_order: ' || pairwise.shown_order::VARCHAR || ' is not the chosen and rejected ids' END
        WHEN 'ranking' THEN CASE WHEN ranking IS NULL THEN 'ranking: missing'
            WHEN ranking.ranked_ids IS NULL OR len(ranking.ranked_ids) < 2 OR list_has(ranking.ranked_ids, NULL)
            THEN 'ranking.ranked_ids: must list at least two interaction ids'
            WHEN len(list_distinct(ranking.ranked_ids)) <> len(ranking.ranked_ids) THEN 'ranking.ranked_ids: lists an id twice'
            WHEN NOT list_contains(ranking.ranked_ids, iid) THEN 'ranking.ranked_ids: does not contain interaction_id ' || iid
            WHEN ranking.shown_order IS NOT NULL AND NOT same_ids(ranking.shown_order, ranking.ranked_ids)
            THEN 'ranking.shown_order: ' || ranking.shown_order::VARCHAR || ' is not the ranked ids' END
        WHEN 'edit' THEN CASE WHEN edit IS NULL THEN 'edit: missing'
            ELSE msgs_problem(edit.output_messages, 'edit.output_messages') END
        WHEN 'implicit' THEN CASE WHEN implicit IS NULL THEN 'implicit: missing'
            WHEN implicit.action IS NULL OR NOT list_contains({actions}, implicit.action)
            THEN 'implicit.action: must be one of {actions.replace("'", "''")}' END
        WHEN 'outcome' THEN CASE WHEN outcome IS NULL THEN 'outcome: missing'
            WHEN outcome.success IS NULL THEN 'outcome.success: missing or not true/false'
            WHEN outcome.reward IS NOT NULL AND NOT isfinite(outcome.reward) THEN 'outcome.reward: not a number' END
        WHEN 'judge' THEN CASE WHEN judge IS NULL THEN 'judge: missing'
            WHEN judge.model IS NULL THEN 'judge.model: missing' WHEN judge.rubric IS NULL THEN 'judge.rubric: missing'
            WHEN judge.score IS NULL OR NOT isfinite(judge.score) THEN 'judge.score: missing or not a number'
            WHEN judge.scale IS NOT NULL AND (len(judge.scale) <> 2 OR NOT judge.scale[1] < judge.scale[2])
            THEN 'judge.scale: must be [lowest, highest]'
            WHEN NOT judge.score BETWEEN coalesce(judge.scale[1], 0) AND coalesce(judge.scale[2], 1)
            THEN 'judge.score: ' || num(judge.score) || ' is outside the scale ' || nums(coalesce(judge.scale, [0, 1])) END
        WHEN 'comment' THEN CASE WHEN comment IS NULL OR comment.text IS NULL THEN 'comment.text: missing' END
        END AS details_problem FROM {scan})""")
    number_rows(con, "fb_rows", "fb")
    # the first of two events with one id (or idempotency key) counts; later ones are quarantined
    con.execute("""
    CREATE TABLE fb_dup AS
    SELECT k, first_k, 'event_id' AS field FROM (SELECT k, min(k) OVER (PARTITION BY eid) AS first_k FROM fb
        WHERE problem IS NULL AND eid IN (SELECT eid FROM fb WHERE problem IS NULL GROUP BY eid HAVING count(*) > 1))
    WHERE k <> first_k
    UNION ALL
    SELECT k, first_k, 'idempotency_key' FROM (SELECT k, min(k) OVER (PARTITION BY ikey) AS first_k FROM fb
        WHERE problem IS NULL AND ikey IN (SELECT ikey FROM fb WHERE problem IS NULL AND ikey IS NOT NULL
                                            GROUP BY ikey HAVING count(*) > 1))
    WHERE k <> first_k""")


def number_rows(con: Any, table: str, view: str) -> None:
    """The view `view`: `table` with each row's ordinal in its stream as `k`.

    DuckDB keeps a scan's order in a table made by CREATE TABLE AS when only projections stand between the two
    (no join, no window), and once committed a table's rowids are its row positions (inside a transaction they
    are provisional). `run._reason` stops the stage if a quarantined line ever disagrees with its row."""
    con.execute("COMMIT")
    con.execute("BEGIN TRANSACTION")
    con.execute(f"CREATE VIEW {view} AS SELECT rowid + 1 AS k, * FROM {table}")


def load_interactions(con: Any, source: Source, params: ExtractParams) -> None:
    """Table ix (every interaction, light) and ih (the ones feedback refers to, with text)."""
    implicit = "implicit" in params.signals
    # the interactions any well-formed event names; a regeneration of one of them is needed too
    con.execute("""
    CREATE TABLE refs AS SELECT DISTINCT id FROM (
        SELECT iid AS id FROM fb WHERE problem IS NULL
        UNION ALL SELECT pairwise.rejected_id FROM fb WHERE problem IS NULL AND kind = 'pairwise'
        UNION ALL SELECT unnest(ranking.ranked_ids) FROM fb WHERE problem IS NULL AND kind = 'ranking')""")
    con.execute(f"""CREATE TABLE regen_refs AS SELECT DISTINCT iid AS id FROM fb
        WHERE problem IS NULL AND kind = 'implicit' AND implicit.action = 'regenerate' AND {implicit}""")
    # A join would let DuckDB reorder the scan (see number_rows), so "does feedback refer to it?" is asked of a
    # Bloom filter of the referenced ids (a bit string); its few false positives are cleared exactly afterwards.
    (n,) = con.execute("SELECT count(*) FROM (SELECT id FROM refs UNION ALL SELECT id FROM regen_refs)").fetchone()
    bits = min(max(1 << (32 * n).bit_length(), 1 << 16), 1 << 28)
    con.execute(f"""SET VARIABLE rlops_refs = (SELECT bitstring_agg((hash(id) % {bits})::INTEGER, 0, {bits - 1})
        FROM (SELECT id FROM refs UNION ALL SELECT id FROM regen_refs))""")
    bloom = f"coalesce(get_bit(getvariable('rlops_refs'), (hash({{}}) % {bits})::INTEGER) = 1, FALSE)"
    con.execute(f"""
    CREATE TABLE ix_rows AS SELECT filename, iid, version, usr, regenerates, heavy,
        NULLIF(concat_ws('; ', id_problem(iid, 'interaction_id'), ts_problem(ts_raw, 'timestamp'),
            CASE WHEN agent IS NULL THEN 'agent: missing'
                 WHEN version IS NULL OR version = '' THEN 'agent.version: missing' END,
            msgs_envelope(input_messages, 'input_messages'), msgs_envelope(output_messages, 'output_messages'),
            CASE WHEN regenerates IS NOT NULL THEN id_problem(regenerates, 'regenerates') END,
            CASE WHEN system_instructions IS NOT NULL AND NOT starts_with(system_instructions, '"')
                 THEN 'system_instructions: must be a string' END), '') AS problem,
        CASE WHEN heavy THEN system_instructions END AS si,
        CASE WHEN heavy THEN input_messages END AS inputs,
        CASE WHEN heavy THEN output_messages END AS outputs
    FROM (SELECT *, ({bloom.format("iid")} OR (regenerates IS NOT NULL AND {bloom.format("regenerates")})) AS heavy
          FROM (SELECT filename, interaction_id AS iid, "timestamp" AS ts_raw, agent, agent.version AS version,
                       "user" AS usr, regenerates, system_instructions, input_messages, output_messages
                FROM {reader(con, source, IX_COLUMNS)}))""")
    con.execute("""UPDATE ix_rows SET heavy = FALSE, si = NULL, inputs = NULL, outputs = NULL
        WHERE heavy AND NOT coalesce(iid IN (SELECT id FROM refs), FALSE)
                    AND NOT coalesce(regenerates IN (SELECT id FROM regen_refs), FALSE)""")
    number_rows(con, "ix_rows", "ix")
    con.execute("""
    CREATE TABLE ix_dup AS SELECT k, first_k FROM (
        SELECT k, min(k) OVER (PARTITION BY iid) AS first_k FROM ix
        WHERE problem IS NULL AND iid IN (SELECT iid FROM ix WHERE problem IS NULL GROUP BY iid HAVING count(*) > 1))
    WHERE k <> first_k""")
    system = quote(json.dumps(params.system_prompt, ensure_ascii=False))
    # one pass over the text: messages checked (cheaply; the reason is spelled out later for the few that fail),
    # the prompt built (system message first), PII redacted, and what the filters and rules need computed
    redact = "pii_redact({})" if params.pii != "off" else "{}::VARCHAR"
    con.execute(f"""
    CREATE TABLE ih AS SELECT k, iid, version, usr, regenerates, problem, bad_inputs,
        CASE WHEN problem IS NOT NULL THEN outputs END AS bad_outputs, prompt_js, out_js, pkey,
        chars, exact, near, near_user, user_text,
        CASE WHEN iid IN (SELECT iid FROM fb WHERE kind = 'edit' AND problem IS NULL) THEN out_text END AS edited_text,
        {pii_counts("prompt", "prompt_js", "pp")}, {pii_counts("outputs", "out_js", "po")}
    FROM (SELECT *, {redact.format("prompt")} AS prompt_js, {redact.format("outputs")} AS out_js,
        md5(replace(replace(replace(replace(lower(prompt), ' ', ''), '\\n', ''), '\\t', ''), '\\r', '')) AS pkey,
        length(out_text) AS chars, exact_key(out_text) AS exact, near(out_text) AS near, near(last_user) AS near_user
    FROM (SELECT k, iid, version, usr, regenerates,
        CASE WHEN NOT (msgs_ok(mi) AND msgs_ok(mo)) THEN inputs END AS bad_inputs,  -- kept only to explain it
        outputs::VARCHAR AS outputs,
        CASE WHEN NOT (msgs_ok(mi) AND msgs_ok(mo)) THEN 'messages' END AS problem,
        CASE WHEN mi[1].role = 'system' THEN inputs::VARCHAR
             ELSE '[{{"role":"system","content":' || coalesce(si, {system}) || '}},' || inputs[2:] END AS prompt,
        array_to_string([m.content FOR m IN mi IF m.role = 'user' AND m.content IS NOT NULL], chr(10)) AS user_text,
        [m.content FOR m IN mi IF m.role = 'user' AND m.content IS NOT NULL][-1] AS last_user,
        array_to_string([m.content FOR m IN mo IF m.content IS NOT NULL], chr(10)) AS out_text
    FROM (SELECT *, json_transform(inputs, '{MESSAGES}') AS mi, json_transform(outputs, '{MESSAGES}') AS mo
          FROM ix WHERE heavy AND problem IS NULL AND k NOT IN (SELECT k FROM ix_dup))))""")
    con.execute("""UPDATE ih SET problem = NULLIF(concat_ws('; ', msgs_problem(bad_inputs, 'input_messages'),
        msgs_problem(bad_outputs, 'output_messages')), '') WHERE problem IS NOT NULL""")
    # from here on only ix's light columns are read; its text columns stay on disk (the database is a file)


def pii_counts(raw: str, red: str, prefix: str) -> str:
    """SQL columns <prefix>_<type> (how many of each PII type redaction replaced) and <prefix>_n (all of them)."""
    each = {t: f"pii_found({raw}, {red}, {quote(TOKENS[t])})" for t in TYPES}
    cols = [f"CASE WHEN {red} = {raw} THEN 0 ELSE {e} END AS {prefix}_{t}" for t, e in each.items()]
    return ", ".join([*cols, f"CASE WHEN {red} = {raw} THEN 0 ELSE {' + '.join(each.values())} END AS {prefix}_n"])


def quarantine_table(con: Any) -> None:
    """(stream, k, reason, ref_k): ref_k is the row whose line the reason names (a first occurrence)."""
    con.execute("""
    CREATE TABLE quarantine AS
    SELECT 'interactions' AS stream, k, problem AS reason, NULL::BIGINT AS ref_k FROM ix WHERE problem IS NOT NULL
    UNION ALL SELECT 'interactions', d.k, 'interaction_id: ' || ix.iid || ' repeats the record on line {line}', d.first_k
        FROM ix_dup d JOIN ix USING (k)
    UNION ALL SELECT 'interactions', k, problem, NULL FROM ih WHERE problem IS NOT NULL
    UNION ALL SELECT 'feedback', k, problem, NULL FROM fb WHERE problem IS NOT NULL
    UNION ALL SELECT 'feedback', d.k, d.field || ': ' || (CASE WHEN d.field = 'event_id' THEN fb.eid ELSE fb.ikey END)
        || ' repeats the event on line {line}', d.first_k
        FROM fb_dup d JOIN fb USING (k)""")


def check_references(con: Any) -> None:
    """Quarantine events about interactions that are unknown, quarantined, or (A/B, ranking) answer other inputs."""
    con.execute("""
    CREATE TABLE good_ix AS SELECT iid, k, version, usr, regenerates, heavy FROM ix
    WHERE heavy AND problem IS NULL AND k NOT IN (SELECT k FROM ix_dup) AND k NOT IN (SELECT k FROM ih WHERE problem IS NOT NULL)""")
    con.execute("""
    CREATE TABLE bad_ix AS SELECT iid, min(k) AS k FROM ix
    WHERE iid IN (SELECT id FROM refs) AND iid NOT IN (SELECT iid FROM good_ix) GROUP BY iid""")
    con.execute("""
    CREATE TABLE fb_ids AS
    SELECT k, iid AS id, 'interaction_id' AS field, 0 AS pos FROM fb WHERE problem IS NULL
    UNION ALL SELECT k, pairwise.rejected_id, 'pairwise.rejected_id', 1 FROM fb WHERE problem IS NULL AND kind = 'pairwise'
    UNION ALL SELECT k, unnest(ranking.ranked_ids), 'ranking.ranked_ids', generate_subscripts(ranking.ranked_ids, 1)
        FROM fb WHERE problem IS NULL AND kind = 'ranking'""")
    con.execute("""
    CREATE TABLE fb_ref AS SELECT k, arg_min(problem, pos) AS problem FROM (
        SELECT i.k, i.pos, CASE WHEN g.iid IS NOT NULL THEN NULL
            WHEN b.iid IS NOT NULL THEN i.field || ': ' || i.id || ' is a quarantined interaction (line {ixline:' || b.k || '})'
            ELSE i.field || ': no interaction ' || i.id || ' in the interaction log' END AS problem
        FROM fb_ids i LEFT JOIN good_ix g ON g.iid = i.id LEFT JOIN bad_ix b ON b.iid = i.id)
    WHERE problem IS NOT NULL AND k NOT IN (SELECT k FROM fb_dup) GROUP BY k""")
    con.execute("DELETE FROM ih WHERE problem IS NOT NULL")
    con.execute("""
    INSERT INTO fb_ref SELECT k, CASE any_value(fb.kind)
        WHEN 'pairwise' THEN 'pairwise: ' || any_value(fb.pairwise.chosen_id) || ' and ' || any_value(fb.pairwise.rejected_id)
            || ' answer different inputs; an A/B choice needs the same input'
        ELSE 'ranking: ' || array_to_string(any_value(fb.ranking.ranked_ids), ', ')
            || ' answer different inputs; a ranking needs the same input' END
    FROM fb_ids i JOIN fb USING (k) JOIN ih ON ih.iid = i.id
    WHERE fb.kind IN ('pairwise', 'ranking') AND k NOT IN (SELECT k FROM fb_ref) AND k NOT IN (SELECT k FROM fb_dup)
    GROUP BY k HAVING count(DISTINCT ih.pkey) > 1""")
    con.execute("INSERT INTO quarantine SELECT 'feedback', k, problem, NULL FROM fb_ref")
    con.execute("""
    CREATE VIEW good_fb AS SELECT fb.* FROM fb WHERE problem IS NULL
        AND k NOT IN (SELECT k FROM quarantine WHERE stream = 'feedback')""")
