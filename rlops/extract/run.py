"""The extract stage: logs and feedback in; training rows, quarantine and the signals report out.

Steps, all in one DuckDB (bounded memory, spilling to a scratch folder beside the outputs):
load the feedback, then the interactions (only those feedback refers to keep their text), quarantine what
cannot be used, filter the events, run the rules, redact PII and decontaminate, filter the rows, write.
`extract` below is the recipe: each step names the tables it reads and the tables it makes for the next ones
(checked as it runs: a step that reads a table no earlier step made, or does not make what it says, stops the
stage as a bug). The tables:

| table        | made by                   | one row per                                                        |
|--------------|---------------------------|--------------------------------------------------------------------|
| fb, fb_dup   | load.load_feedback        | feedback record (its own problem); repeated event ids / keys       |
| ix, ix_dup   | load.load_interactions    | interaction (light columns, its problem); repeated ids             |
| ih           | load.load_interactions    | interaction feedback refers to, with its text as JSON              |
| quarantine   | load.quarantine_table, load.check_references | record that cannot be used, with its reason     |
| good_ix, good_fb | load.check_references | usable interaction / feedback record                               |
| ev, ev_drop  | filters.filter_events     | event the rules read; event the filters dropped, with the reason   |
| prompts, ans, texts, contam | filters.text_tables | prompt, answer and its text; prompt found in an eval suite  |
| cand, notes  | rules.run_rules (+ rlaif) | candidate training row; event that made none, with why             |
| rows         | filters.filter_rows       | candidate with its set, sort key and the filter that dropped it    |
| ix_status, fb_status_n | signals_report.status_tables | records per file, version, status and reason               |
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from rlops import layout
from rlops.errors import StageFailed
from rlops.extract import engine, filters, load, pii, rlaif, rules, signals_report
from rlops.extract.params import ExtractParams
from rlops.io import atomic_write_json, atomic_write_lines, atomic_write_text

SETS = rules.SETS
MESSAGES = ('[{"role":"VARCHAR","content":"VARCHAR","name":"VARCHAR","tool_call_id":"VARCHAR",'
            '"tool_calls":[{"id":"VARCHAR","type":"VARCHAR","function":{"name":"VARCHAR","arguments":"VARCHAR"}}]}]')
META = '{"rule":"VARCHAR","interaction_ids":["VARCHAR"],"event_ids":["VARCHAR"],"weight":"DOUBLE","judge":"VARCHAR"}'
PARQUET_TYPES = {  # each set's row as a struct, for Parquet's nested columns
    "pairs": f'{{"prompt":{MESSAGES},"chosen":{MESSAGES},"rejected":{MESSAGES},"meta":{META}}}',
    "unpaired": f'{{"prompt":{MESSAGES},"completion":{MESSAGES},"label":"BOOLEAN","meta":{META}}}',
    "sft": f'{{"messages":{MESSAGES},"meta":{META}}}',
    "rewards": f'{{"prompt":{MESSAGES},"completion":{MESSAGES},"reward":"DOUBLE","meta":{META}}}',
}
_ID = re.compile(load.ID_PATTERN)
_LINE = re.compile(r"\{line\}")
_IXLINE = re.compile(r"\{ixline:(\d+)\}")


def outputs(fmt: str) -> tuple[str, ...]:
    """The files the stage writes (dvc.yaml's outs, named in rlops/layout.py), signals.json last."""
    return tuple(path.rsplit("/", 1)[1] for path in layout.extract_outputs(fmt))


OUTPUTS = outputs("jsonl")
# the report files' names inside out_dir (the stage writes layout.EXTRACT; tests write elsewhere)
QUARANTINE, SIGNALS_MD, SIGNALS_DETAIL, SIGNALS_JSON = (p.rsplit("/", 1)[1] for p in (
    layout.QUARANTINE, layout.SIGNALS_MD, layout.SIGNALS_DETAIL, layout.SIGNALS))


class Steps:
    """Runs the recipe's steps on one connection, checking the tables each one says it reads and makes."""

    def __init__(self, con: Any):
        self.con = con
        self.made = self.tables()  # as of the end of the last step (one catalog read per step: ~1 ms)

    def tables(self) -> set[str]:
        return {name for (name,) in self.con.execute(
            "SELECT table_name FROM duckdb_tables() UNION ALL SELECT view_name FROM duckdb_views() WHERE NOT internal"
        ).fetchall()}

    def __call__(self, function: Any, *args: Any, reads: tuple[str, ...], makes: tuple[str, ...]) -> Any:
        missing = [t for t in reads if t not in self.made]
        if missing:
            raise StageFailed(f"extract step {function.__qualname__} reads {', '.join(missing)}, which no earlier step "
                              "made (a bug in rlops, please report it)")
        result = function(self.con, *args)
        self.made = self.tables()
        absent = [t for t in makes if t not in self.made]
        if absent:
            raise StageFailed(f"extract step {function.__qualname__} did not make {', '.join(absent)} "
                              "(a bug in rlops, please report it)")
        return result


def run(params: Mapping[str, Any], root: Path, out_dir: Path) -> dict[str, Any]:
    """The DVC stage: read params.yaml's data/extract/policy sections, write out_dir, return the whole signals report
    (signals_detail.json; signals.json holds its key counts)."""
    settings = ExtractParams.from_mapping(params)
    return extract(settings, Path(root), Path(out_dir))


def resolve_all(root: Path, settings: tuple[str, ...], field: str) -> engine.Source:
    """The files of every path a `data.*` setting lists, as one source: in the order listed, each file once."""
    found = [engine.resolve(root, setting, field if len(settings) == 1 else f"{field}[{i}]")
             for i, setting in enumerate(settings)]
    formats = {source.format for source in found}
    if len(formats) > 1:
        raise StageFailed(f"{', '.join(settings)}: mixes JSONL and Parquet files ({field})",
                          hint="point each data.* setting at files of one format")
    files: dict[Path, str] = {}
    for source in found:
        for path, display in zip(source.files, source.displays):
            files.setdefault(path, display)  # a file inside a listed folder, listed again, is read once
    return engine.Source(", ".join(settings), tuple(files), tuple(files.values()), formats.pop())


def extract(params: ExtractParams, root: Path, out_dir: Path) -> dict[str, Any]:
    """Everything the stage does; returns the report it wrote to out_dir/signals_detail.json."""
    (out_dir / SIGNALS_JSON).unlink(missing_ok=True)  # present only once everything else is complete
    for other in set(layout.FORMATS) - {params.format}:  # sets in the other format are stale (train reads either)
        for name in SETS:
            (out_dir / layout.extract_set(name, other).rsplit("/", 1)[1]).unlink(missing_ok=True)
    interactions = resolve_all(root, params.interactions, "data.interactions")
    feedback = resolve_all(root, params.feedback, "data.feedback")
    analyzer = pii.presidio_analyzer() if params.pii != "off" and params.pii_tier == "presidio" else None
    with engine.scratch_dir(out_dir) as scratch, ThreadPoolExecutor(max_workers=1) as pool:
        con = engine.connect(params.memory_limit, params.threads, scratch)
        try:
            con.execute("SET TimeZone = 'UTC'")
            con.execute("BEGIN TRANSACTION")  # one transaction: a commit after every statement costs ~1 s in all
            step = Steps(con)
            load.create_macros(con)  # the record checks (from rlops.records) and text helpers, as SQL macros
            pii.create_macros(con)
            step(load.load_feedback, feedback, params, reads=(), makes=("fb", "fb_dup"))
            step(load.load_interactions, interactions, params, reads=("fb",), makes=("ix", "ix_dup", "ih"))
            # row ordinals are assigned: from here on every output is ordered explicitly, which frees DuckDB
            # from keeping insertion order (less memory for large sorts and joins)
            con.execute("SET preserve_insertion_order = false")
            step(load.quarantine_table, reads=("fb", "fb_dup", "ix", "ix_dup", "ih"), makes=("quarantine",))
            step(load.check_references, reads=("fb", "ix", "ih", "quarantine"), makes=("good_ix", "good_fb"))
            # reading the quarantined lines' text (Python) overlaps the rules (DuckDB) from here on
            located = step(_locate_quarantined, params, interactions, feedback, pool,
                           reads=("quarantine", "fb", "ix"), makes=())
            step(filters.filter_events, params, reads=("fb", "good_fb", "good_ix"), makes=("ev", "ev_drop"))
            step(filters.text_tables, params, root, reads=("ev", "ih"), makes=("prompts", "ans", "texts", "contam"))
            step(rules.run_rules, params, reads=("ev", "ih"), makes=("cand", "notes"))
            judge = step(rlaif.judge_rows, params, root, reads=("ih", "cand"), makes=("cand",))
            step(filters.filter_rows, params, reads=("cand", "prompts", "ans", "contam"), makes=("rows",))
            step(signals_report.status_tables, params, reads=("rows", "notes", "ev_drop", "fb", "ix", "good_ix", "quarantine"),
                 makes=("ix_status", "fb_status_n"))
            presidio_counts = step(_write_sets, params, out_dir, analyzer, reads=("rows", "ih", "texts"), makes=())
            quarantined, quarantine_pii = step(_quarantine, params, interactions, feedback, located,
                                               reads=("quarantine", "fb", "ix"), makes=())
            quarantine_pii.update(presidio_counts)
            sources = step(_sources, interactions, feedback, reads=("ix_status", "fb_status_n"), makes=())
            signals = step(signals_report.signals_report, params, sources, quarantine_pii, judge,
                           reads=("rows", "ix_status", "fb_status_n", "prompts", "ans", "contam"), makes=())
        finally:
            con.close()
    atomic_write_lines(out_dir / QUARANTINE, (json.dumps(q, ensure_ascii=False) for q in quarantined))
    atomic_write_text(out_dir / SIGNALS_MD, signals_report.signals_markdown(signals, params))
    atomic_write_json(out_dir / SIGNALS_DETAIL, signals)
    atomic_write_json(out_dir / SIGNALS_JSON, signals_report.key_counts(signals))
    return signals


def _rows_per_file(con: Any, table: str, source: engine.Source) -> list[int]:
    counts = dict(con.execute(f"SELECT filename, count(*) FROM {table} GROUP BY filename").fetchall())
    return [int(counts.get(str(f), 0)) for f in source.files]


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _locate_quarantined(con: Any, params: ExtractParams, interactions: engine.Source, feedback: engine.Source,
                        pool: ThreadPoolExecutor) -> Future:
    """Start reading the quarantined lines (file, line, text; the text PII-redacted too) in a thread of `pool`.

    The quarantine table is complete once references are checked. Reading the files is Python's work and the
    rules are DuckDB's (which releases the GIL), so the two overlap; `_quarantine` waits for the result."""
    jobs = []
    for stream, table, source in (("interactions", "ix", interactions), ("feedback", "fb", feedback)):
        wanted = [k for (k,) in con.execute(f"""SELECT k FROM quarantine WHERE stream = '{stream}'
            UNION SELECT ref_k FROM quarantine WHERE stream = '{stream}' AND ref_k IS NOT NULL""").fetchall()]
        if stream == "interactions":  # feedback reasons name the lines of quarantined interactions too
            wanted += [int(k) for (r,) in con.execute("SELECT reason FROM quarantine WHERE stream = 'feedback'").fetchall()
                       for k in _IXLINE.findall(r)]
        jobs.append((stream, source, _rows_per_file(con, table, source), wanted))

    def read() -> tuple[dict[str, dict[int, tuple[str, int, str]]], dict[str, dict[int, tuple[str, dict[str, int]]]] | None]:
        lines = {stream: engine.locate(source, counts, wanted) for stream, source, counts, wanted in jobs}
        if params.pii == "off":
            return lines, None
        return lines, {stream: {k: pii.redact_json(raw) for k, (_, _, raw) in found.items()} for stream, found in lines.items()}

    return pool.submit(read)


def _quarantine(con: Any, params: ExtractParams, interactions: engine.Source, feedback: engine.Source, located: Future):
    """The quarantine file's records (file, line, reason, raw), in file order; and the PII found in them."""
    found: dict[str, int] = {}
    out: list[dict[str, Any]] = []
    lines, redacted = located.result()
    for stream, source in (("interactions", interactions), ("feedback", feedback)):
        if source.format == "parquet":
            _parquet_raw(con, source, lines[stream])
            if redacted is not None:
                redacted[stream] = {k: pii.redact_json(raw) for k, (_, _, raw) in lines[stream].items()}
    ids = {"interactions": "SELECT k, iid FROM ix", "feedback": "SELECT k, eid FROM fb"}
    for stream in ("interactions", "feedback"):
        rows = con.execute(f"""SELECT q.k, string_agg(q.reason, '; ' ORDER BY q.reason), any_value(q.ref_k), any_value(t.id)
            FROM quarantine q JOIN ({ids[stream]}) t(k, id) USING (k) WHERE q.stream = '{stream}'
            GROUP BY q.k ORDER BY q.k""").fetchall()
        for k, reason, ref_k, sql_id in rows:
            file, number, raw = lines[stream][k]
            reason = _reason(raw, reason, sql_id, stream, file, number)
            if ref_k is not None:
                reason = _LINE.sub(str(lines[stream][ref_k][1]), reason)
            reason = _IXLINE.sub(lambda m: str(lines["interactions"][int(m.group(1))][1]), reason)
            if redacted is not None:
                raw, counts = redacted[stream][k]
                reason, more = pii.redact_text(reason)
                for key, n in [*counts.items(), *more.items()]:
                    found[key] = found.get(key, 0) + n
            out.append({"file": file, "line": number, "reason": reason, "raw": raw})
    return out, found


def _reason(raw: str, reason: str, sql_id: str | None, stream: str, file: str, number: int) -> str:
    """The reason a quarantined line gets: what the JSON parser says when the reader could not read it either."""
    if sql_id is not None:
        if _ID.match(sql_id) and sql_id not in raw:  # an id is plain text: it appears verbatim in its line
            raise StageFailed(f"{file}:{number}: DuckDB's reader and the line numbering disagree about this line "
                              "(a bug in rlops, please report it with the line)")
        return reason
    try:
        obj = json.loads(raw, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        return f"not JSON: {e.msg} (column {e.colno})"
    except RecursionError:
        return "nested too deeply to read (arrays and objects); no log record needs that"
    except ValueError as e:
        return f"not JSON: {e}"
    return reason if isinstance(obj, dict) else f"not a JSON object: {type(obj).__name__}"


def _parquet_raw(con: Any, source: engine.Source, found: dict[int, tuple[str, int, str]]) -> None:
    """Parquet rows have no line text: show the row as JSON instead."""
    for k, (display, number, _) in list(found.items()):
        path = source.files[source.displays.index(display)]
        (row,) = con.execute(f"SELECT to_json(t) FROM (SELECT * EXCLUDE (file_row_number) FROM read_parquet("
                             f"{engine.quote(str(path))}, file_row_number=true) WHERE file_row_number = {number - 1}) t"
                             ).fetchone()
        found[k] = (display, number, str(row))


def _line_sql(con: Any, set_name: str) -> str:
    """The query of one set's JSON lines with their sort key (unordered)."""
    meta = "json_object('rule', r.rule, 'interaction_ids', r.iids, 'event_ids', r.eids, 'weight', r.weight{})"
    plain, judged = meta.format(""), meta.format(", 'judge', r.judge")
    meta = f"CASE WHEN r.judge IS NULL THEN {plain} ELSE {judged} END"
    body = {
        "pairs": "'{\"prompt\":' || p.js || ',\"chosen\":' || a.js || ',\"rejected\":' || b.js",
        "unpaired": "'{\"prompt\":' || p.js || ',\"completion\":' || a.js || ',\"label\":' || r.label::VARCHAR",
        "sft": "'{\"messages\":' || left(p.js, length(p.js) - 1) || ',' || a.js[2:]",
        "rewards": "'{\"prompt\":' || p.js || ',\"completion\":' || a.js || ',\"reward\":' || r.reward::VARCHAR",
    }[set_name]
    return (f"SELECT r.sort_key, {body} || ',\"meta\":' || {meta} || '}}' AS line FROM rows r "
            f"JOIN (SELECT iid, prompt_js AS js FROM ih) p ON p.iid = r.prompt_iid JOIN texts a ON a.ref = r.a "
            f"LEFT JOIN texts b ON b.ref = r.b WHERE r.drop IS NULL AND r.set = '{set_name}'")


def _write_sets(con: Any, params: ExtractParams, out_dir: Path, analyzer: Any) -> dict[str, int]:
    """Write the four training sets; with the Presidio tier, each line passes through it first."""
    counts: dict[str, int] = {}
    for set_name in SETS:
        # the lines first, unordered (a join that streams the text), then one sort that may spill to disk
        con.execute(f"CREATE OR REPLACE TABLE lines AS {_line_sql(con, set_name)}")
        query = "SELECT line FROM lines ORDER BY sort_key"
        if analyzer is not None:
            lines = [row[0] for row in con.execute(query).fetchall()]
            con.execute("CREATE OR REPLACE TEMP TABLE deeper (n BIGINT, line VARCHAR)")
            redacted = [(n, json.dumps(pii.presidio_redact(analyzer, json.loads(line), counts), ensure_ascii=False,
                                       separators=(",", ":"))) for n, line in enumerate(lines)]
            if redacted:
                con.executemany("INSERT INTO deeper VALUES (?, ?)", redacted)
            query = "SELECT line FROM deeper ORDER BY n"
        path = out_dir / layout.extract_set(set_name, params.format).rsplit("/", 1)[1]
        if params.format == "jsonl":
            engine.copy_lines(con, query, path)
        else:
            engine.copy_parquet(con, f"SELECT unnest(from_json(line, '{PARQUET_TYPES[set_name]}')) FROM ({query})", path)
        con.execute("DROP TABLE lines")
    return counts


def _sources(con: Any, interactions: engine.Source, feedback: engine.Source) -> dict[str, Any]:
    """Records read and quarantined per file."""
    out: dict[str, Any] = {}
    for source, table in ((interactions, "ix_status"), (feedback, "fb_status_n")):
        counts = {f: (n, q) for f, n, q in con.execute(
            f"SELECT filename, sum(n), coalesce(sum(n) FILTER (WHERE status = 'quarantined'), 0) FROM {table} GROUP BY filename"
        ).fetchall()}
        for path, display in zip(source.files, source.displays):
            n, q = counts.get(str(path), (0, 0))
            out[display] = {"read": int(n), "quarantined": int(q)}
    return out
