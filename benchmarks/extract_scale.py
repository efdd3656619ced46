"""Extraction at scale: 1 M interactions + 300 k feedback events, then 2 M + 600 k, against a bare DuckDB scan.

    .venv/bin/python benchmarks/extract_scale.py                  # 1 M and 2 M, 2 threads
    .venv/bin/python benchmarks/extract_scale.py --sizes 100000   # a quick look
    .venv/bin/python benchmarks/extract_scale.py --profile 1000000  # where the time goes: every SQL statement timed

The logs are generated once (deterministically, by DuckDB itself) and cached under --cache. Each size then runs,
in this order and each in its own process: (a) a bare DuckDB `read_json` scan of both files that counts every
top-level column (so every column is parsed; same threads), (b) the real extract stage (`rlops.extract.run.run`)
with every rule but the live judge and the default filters (PII redaction, decontamination against
specs/evals, near-duplicate removal). Wall time and the peak RSS of each process (wait4) are reported.
Targets (issue 4): (b)/(a) within 2x, peak RSS under 1 GB, 2 M taking no more than 2.2x the time of 1 M.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FEEDBACK_PER_INTERACTION = 0.3
MALFORMED_PER_MILLE = 2  # lines broken on purpose, per thousand: truncated, renamed id, unknown role

PRODUCTS = ["ceramic teapot", "oak serving board", "linen duvet cover", "pour-over coffee set", "wool throw blanket",
            "cast-iron skillet", "bamboo bath mat", "stoneware dinner set", "brass desk lamp", "rattan laundry basket",
            "copper kettle", "velvet cushion cover", "walnut bookshelf", "steel water bottle", "jute rug",
            "hiking backpack", "cork yoga mat", "bluetooth speaker", "oak wall clock", "scented candle set"]
ASKS = [
    "Hi, my {p} from order {o} arrived broken. What can I do?",
    "Order {o}: the {p} was cracked when I opened the box.",
    "Where is my order {o}? It's been {d} days and the tracking page has not changed since last week.",
    "I want a refund for the {p} in order {o}, it is not what the pictures showed at all.",
    "Can you change the delivery address of order {o}? I moved last week to a new flat across town.",
    "The {p} I received today is missing parts, order {o}. The box had clearly been opened before.",
    "hello, {o} came in but the {p} has a big scratch on it, can I get a partial refund or a new one",
    "I was charged twice for order {o} ({p}). Please fix this before the weekend.",
]
DETAILS = ["It was meant as a birthday present for my {w}.", "I have been a customer for {d} years.",
           "The courier left it in the rain by the {w} door.", "My {w} noticed the damage first.",
           "I already sent two emails about this.", "This is the second time this happens.",
           "Please answer quickly, I am travelling on {x}.", "", "", ""]
WORDS = ["mother", "father", "sister", "brother", "neighbour", "colleague", "front", "back", "garden", "side"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PII = ["You can reach me at jane.doe{n}@example.com.", "Call me back on +44 20 7946 {n4}.",
       "My card is 4111 1111 1111 1111, charge it again.", "I'm writing from 192.168.{n3}.{n3} if that helps.",
       *[""] * 16]
GOOD = [
    "I'm sorry your {p} arrived damaged. I've checked order {o}: I can send a free replacement or refund it in full, "
    "whichever you prefer. Replacements go out within 2 business days, and there's no need to send the broken one back.",
    "Sorry for the wait! Order {o} was delayed at the depot and is moving again; expect it within {d} days. If it "
    "doesn't arrive by then I'll refund or replace it right away, and you'll get an email update within 24 hours.",
    "Thanks for telling us. I've opened a return for order {o}; you'll get a prepaid label by email today and the "
    "refund reaches your card within 5 business days of the parcel arriving back with us.",
    "I've looked into order {o} and refunded the duplicate charge; it shows on your statement in 3 to 5 days. Sorry!",
]
BAD = ["Please contact support.", "We cannot control courier delays.", "Please check the FAQ on our website.",
       "I don't know.", "Your order is on its way.", "That is unfortunate. You can return the item via our website."]
CLOSINGS = ["Is there anything else I can do for you?", "Have a lovely {x}!", "Kind regards, the Northwind team.",
            "Thanks for your patience.", "", ""]


def _list(items: list[str]) -> str:
    return "[" + ", ".join("'" + s.replace("'", "''") + "'" for s in items) + "]"


def generate(n: int, folder: Path) -> None:
    """interactions.jsonl (n records) and feedback.jsonl (0.3 n events), deterministic for a DuckDB version."""
    import duckdb

    folder.mkdir(parents=True, exist_ok=True)
    m = int(n * FEEDBACK_PER_INTERACTION)
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    # r(i, k): a pseudo-random number for row i and stream k; pick(list, i, k): one element
    con.execute("CREATE MACRO r(i, k) AS (hash(i * 1000003 + k) % 4294967296)")
    con.execute("CREATE MACRO pick(l, i, k) AS l[1 + (r(i, k) % len(l))::INTEGER]")
    for name, items in (("products", PRODUCTS), ("asks", ASKS), ("details", DETAILS), ("words", WORDS), ("days", DAYS),
                        ("piis", PII), ("goods", GOOD), ("bads", BAD), ("closings", CLOSINGS)):
        con.execute(f"CREATE MACRO {name}() AS {_list(items)}")
    con.execute("""CREATE MACRO fill(s, t) AS replace(replace(replace(replace(replace(replace(replace(replace(s,
        '{p}', pick(products(), t, 1)), '{o}', 'NW-' || (10000 + r(t, 2) % 89999)::VARCHAR),
        '{d}', (2 + r(t, 3) % 9)::VARCHAR), '{n}', (r(t, 4) % 1000)::VARCHAR),
        '{n4}', lpad((r(t, 5) % 10000)::VARCHAR, 4, '0')), '{n3}', (r(t, 6) % 250)::VARCHAR),
        '{w}', pick(words(), t, 7)), '{x}', pick(days(), t, 8))""")
    con.execute("CREATE MACRO msg(role, content) AS json_object('role', role, 'content', content)")
    con.execute("CREATE MACRO iid(i) AS printf('i-%08d', i)")
    # tickets of four answers to one customer message: answer 1 sometimes regenerates answer 0
    con.execute(f"""CREATE TABLE ix AS SELECT i, i // 4 AS t, i % 4 AS a, iid(i) AS id,
        trim(fill(pick(asks(), i // 4, 10) || ' ' || pick(details(), i // 4, 11) || ' ' || pick(piis(), i // 4, 12), i // 4)) AS ask,
        trim(fill(CASE WHEN r(i, 13) % 3 = 0 THEN pick(goods(), i // 4, 14) ELSE pick(bads(), i, 15) END
                  || ' ' || pick(closings(), i, 16), i)) AS answer,
        TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_seconds((r(i // 4, 17) % (60 * 86400))::BIGINT) AS ts,
        CASE WHEN r(i // 4, 18) % 10 < 6 THEN 'base' ELSE 'v3' END AS version,
        CASE WHEN r(i // 4, 19) % 100 = 0 THEN 'u-00001' ELSE printf('u-%05d', r(i // 4, 20) % 50000) END AS usr
        FROM range({n}) t(i)""")
    line = """json_object('schema', 'rlops.interaction/v1', 'interaction_id', id, 'conversation_id', printf('c-%08d', t),
        'trace_id', md5(id), 'span_id', left(md5(id || 's'), 16), 'timestamp', strftime(ts, '%Y-%m-%dT%H:%M:%SZ'),
        'agent', json_object('name', 'support-agent', 'version', version, 'stage', 'production'), 'user', usr,
        'input_messages', CASE WHEN r(t, 21) % 5 = 0
            THEN json_array(msg('user', 'Hi'), msg('assistant', 'Hello! How can I help you today?'), msg('user', ask))
            ELSE json_array(msg('user', ask)) END,
        'output_messages', CASE WHEN r(i, 22) % 10 = 0
            THEN json_array(json_object('role', 'assistant', 'content', NULL, 'tool_calls', json_array(json_object(
                    'id', 'call-' || id, 'type', 'function', 'function', json_object('name', 'lookup_order',
                    'arguments', '{"order_number": "NW-1"}')))),
                 json_object('role', 'tool', 'tool_call_id', 'call-' || id, 'content', '{"status": "shipped"}'),
                 msg('assistant', answer))
            ELSE json_array(msg('assistant', answer)) END,
        'steps', json_array(json_object('type', 'tool_call', 'name', 'lookup_order', 'arguments',
            json_object('order_number', 'NW-12345'), 'result', json_object('status', 'shipped', 'carrier', 'DHL',
            'eta', '2026-11-03'), 'duration_ms', r(i, 23) % 900)),
        'usage', json_object('input_tokens', 100 + r(i, 24) % 200, 'output_tokens', 20 + r(i, 25) % 100),
        'outcome', json_object('status', 'ok', 'task_success', r(i, 26) % 3 <> 0, 'latency_ms', 300 + r(i, 27) % 2000),
        'regenerates', CASE WHEN a = 1 AND r(t, 28) % 5 = 0 THEN iid(i - 1) END)::VARCHAR"""
    con.execute(f"""COPY (SELECT CASE r(i, 90) % 1000
            WHEN 0 THEN left(l, 60) WHEN 1 THEN replace(l, '"interaction_id"', '"interaction"')
            WHEN 2 THEN replace(l, '"role":"user"', '"role":"customer"') ELSE l END
        FROM (SELECT i, replace({line}, ',"regenerates":null', '') AS l FROM ix) ORDER BY i)
        TO '{folder}/interactions.jsonl' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')""")
    # feedback on random tickets: ratings, edits (some trivial), A/B choices, rankings, implicit actions,
    # outcomes per task cluster, recorded judge scores and comments
    con.execute(f"""CREATE TABLE fb AS SELECT j, kind, t, best, action,
        CASE kind WHEN 'pairwise' THEN iid(t * 4 + best) WHEN 'ranking' THEN iid(t * 4 + 3 * best)
                  WHEN 'implicit' THEN iid(t * 4 + CASE action WHEN 'regenerate' THEN 0 ELSE a END)
                  ELSE iid(t * 4 + a) END AS target,
        TIMESTAMPTZ '2026-10-01 00:00:00+00' + to_seconds((r(t, 17) % (60 * 86400) + 3600 + r(j, 31) % 86400)::BIGINT) AS ts,
        CASE WHEN kind IN ('edit', 'pairwise', 'ranking') THEN 'staff:' || pick(['alice', 'bob', 'chen', 'dana'], j, 32)
             WHEN kind = 'judge' THEN 'judge:gpt-judge' WHEN kind = 'outcome' THEN 'system:billing'
             ELSE 'customer:' || CASE WHEN r(t, 19) % 100 = 0 THEN 'u-00001' ELSE printf('u-%05d', r(t, 20) % 50000) END
        END AS actor
        FROM (SELECT j, r(j, 38) % ({n} // 4) AS t, r(j, 39) % 4 AS a, r(j, 40) % 2 AS best,
                pick(['regenerate', 'copy', 'abandon'], j, 41) AS action,
                CASE WHEN r(j, 30) % 100 < 30 THEN 'rating' WHEN r(j, 30) % 100 < 45 THEN 'edit'
                     WHEN r(j, 30) % 100 < 57 THEN 'pairwise' WHEN r(j, 30) % 100 < 62 THEN 'ranking'
                     WHEN r(j, 30) % 100 < 77 THEN 'implicit' WHEN r(j, 30) % 100 < 87 THEN 'outcome'
                     WHEN r(j, 30) % 100 < 95 THEN 'judge' ELSE 'comment' END AS kind
              FROM range({m}) r(j))""")
    details = """CASE kind
        WHEN 'rating' THEN json_object('value', 1 + r(j, 33) % 5, 'scale', [1, 5])
        WHEN 'pairwise' THEN json_object('chosen_id', iid(t * 4 + best), 'rejected_id', iid(t * 4 + 3 - best),
            'shown_order', CASE WHEN r(j, 34) % 2 = 0 THEN [iid(t * 4 + best), iid(t * 4 + 3 - best)]
                                ELSE [iid(t * 4 + 3 - best), iid(t * 4 + best)] END)
        WHEN 'ranking' THEN json_object('ranked_ids', [iid(t * 4 + 3 * best), iid(t * 4 + 2), iid(t * 4 + 3 - 3 * best)])
        WHEN 'edit' THEN json_object('output_messages', json_array(msg('assistant', CASE WHEN r(j, 35) % 5 = 0
            THEN 'Please contact support!' ELSE trim(fill(pick(goods(), t, 14) || ' ' || pick(closings(), j, 36), t)) END)))
        WHEN 'implicit' THEN json_object('action', action)
        WHEN 'outcome' THEN json_object('success', r(j, 37) % 2 = 0, 'task', 'task-' || (t % 20000))
        WHEN 'judge' THEN json_object('model', 'gpt-judge', 'rubric', 'support-quality', 'score', (r(j, 42) % 11) / 10.0,
                                      'scale', [0, 1])
        ELSE json_object('text', 'Customer called back.') END"""
    con.execute(f"""COPY (SELECT CASE r(j, 91) % 1000 WHEN 0 THEN left(l, 50)
            WHEN 1 THEN replace(l, '"interaction_id"', '"interaction"') ELSE l END FROM (
        SELECT j, json_object('schema', 'rlops.feedback/v1', 'event_id', printf('f-%08d', j), 'interaction_id', target,
            'timestamp', strftime(ts, '%Y-%m-%dT%H:%M:%SZ'), 'actor', actor, 'kind', kind, kind, {details})::VARCHAR AS l
        FROM fb) ORDER BY j)
        TO '{folder}/feedback.jsonl' (FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIMITER '\x1f')""")
    con.close()
    (folder / "done").write_text(json.dumps({"n": n, "m": m}))


SCAN = """
import duckdb, json, sys
folder, threads = sys.argv[1], int(sys.argv[2])
con = duckdb.connect(config={"threads": threads})
con.execute("SET enable_progress_bar = false")
out = {}
for name in ("interactions", "feedback"):
    scan = f"read_json('{folder}/{name}.jsonl', format='newline_delimited', ignore_errors=true)"
    cols = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM {scan}").fetchall()]
    counts = ", ".join(f'count("{c}")' for c in cols)
    out[name] = con.execute(f"SELECT count(*), {counts} FROM {scan}").fetchone()[0]
print(json.dumps(out))
"""

# the stage's params in a child process: every rule but the live judge, the default filters
PARAMS = """
import json, sys, yaml
from pathlib import Path
root, threads = Path(sys.argv[1]), int(sys.argv[2])
extract = yaml.safe_load(Path(sys.argv[3], "pipelines/conf/config.yaml").read_text())["extract"]
extract.update(signals=["edit", "pairwise", "ranking", "rating", "implicit", "outcome", "judge"], threads=threads)
params = {"data": {"interactions": "logs/interactions.jsonl", "feedback": "logs/feedback.jsonl", "window": None},
          "extract": extract, "policy": {"name": "support-agent", "system_prompt": "You are the support assistant."},
          "cycle": {"parent": "base"}}
"""

EXTRACT = PARAMS + """
from rlops.extract.run import run
report = run(params, root, root / "out")
print(json.dumps({k: report[k] for k in ("invariant", "rows", "pii", "decontamination")}))
"""


PROFILE = PARAMS + """
import inspect, time
from collections import defaultdict
from rlops.extract import engine
from rlops.extract.run import run
times = []
connect = engine.connect
class Timed:  # the stage's connection, every execute() timed with the step (function) that ran it
    def __init__(self, con): self.con = con
    def __getattr__(self, name): return getattr(self.con, name)
    def execute(self, sql, *args):
        start = time.perf_counter(); result = self.con.execute(sql, *args)
        step = inspect.stack()[1]
        times.append((time.perf_counter() - start, Path(step.filename).stem + "." + step.function, " ".join(sql.split())))
        return result
engine.connect = lambda *a, **k: Timed(connect(*a, **k))
start = time.perf_counter()
run(params, root, root / "out")
total = time.perf_counter() - start
sql = sum(t for t, _, _ in times)
print(f"run() {total:.2f} s: {sql:.2f} s in {len(times)} SQL statements, {total - sql:.2f} s in Python")
steps = defaultdict(float)
for t, step, _ in times:
    steps[step] += t
for step, t in sorted(steps.items(), key=lambda x: -x[1])[:12]:
    print(f"{t:6.2f} s  {step}")
print("slowest statements:")
for t, step, text in sorted(times, reverse=True)[:int(sys.argv[4]) if len(sys.argv) > 4 else 12]:
    print(f"{t:6.2f} s  {step}: {text[:100]}")
"""


def run_child(code: str, *argv: str) -> tuple[float, float, str]:
    """Run `code` in a fresh Python; return (wall s, peak RSS MiB of that process, its stdout)."""
    # VmHWM is this process's own peak (ru_maxrss would carry the forking parent's peak across exec)
    wrapper = code + ("\nprint('PEAK_RSS_KB', [l.split()[1] for l in open('/proc/self/status') "
                      "if l.startswith('VmHWM')][0])\n")
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", wrapper, *argv], capture_output=True, text=True)
    wall = time.perf_counter() - start
    if proc.returncode:
        sys.exit(f"child failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    lines = proc.stdout.strip().splitlines()
    peak = int(lines[-1].split()[1]) / 1024
    return wall, peak, "\n".join(lines[:-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000000,2000000", help="interactions per run, comma-separated")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--cache", default="/tmp/rlops-extract-bench", help="where generated logs are kept")
    ap.add_argument("--profile", type=int, metavar="N", help="time every SQL statement of one run on N interactions")
    ap.add_argument("--generate", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.generate:
        generate(args.generate, Path(args.cache) / f"n{args.generate}")
        return
    if args.profile:
        args.sizes = str(args.profile)
    import duckdb

    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"duckdb {duckdb.__version__}, threads {args.threads}; load average before: {os.getloadavg()}", flush=True)
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        folder = Path(args.cache) / f"n{n}"
        if not (folder / "done").is_file():
            start = time.perf_counter()
            # in a child process, so this one stays small (children are forked from it)
            subprocess.run([sys.executable, __file__, "--generate", str(n), "--cache", args.cache], check=True)
            print(f"generated {n} interactions in {time.perf_counter() - start:.1f} s -> {folder}", flush=True)
        size = sum((folder / f).stat().st_size for f in ("interactions.jsonl", "feedback.jsonl")) / 2**20
        scan_s, scan_rss, _ = run_child(SCAN, str(folder), str(args.threads))
        with tempfile.TemporaryDirectory(prefix="rlops-extract-bench-") as tmp:
            root = Path(tmp)
            (root / "logs").symlink_to(folder)
            (root / "specs").mkdir()
            (root / "specs/evals").symlink_to(ROOT / "specs/evals")
            if args.profile:
                print(run_child(PROFILE, str(root), str(args.threads), str(ROOT), "40")[2])
                return
            ext_s, ext_rss, out = run_child(EXTRACT, str(root), str(args.threads), str(ROOT))
        report = json.loads(out.splitlines()[-1])
        row = {"interactions": n, "events": int(n * FEEDBACK_PER_INTERACTION), "mib": round(size),
               "scan_s": round(scan_s, 2), "scan_rss_mib": round(scan_rss), "extract_s": round(ext_s, 2),
               "extract_rss_mib": round(ext_rss), "ratio": round(ext_s / scan_s, 2), "rows": report["rows"],
               "invariant": report["invariant"]}
        results.append(row)
        print(json.dumps(row), flush=True)
    if len(results) > 1:
        print(f"time {results[-1]['interactions']} / {results[0]['interactions']}: "
              f"{results[-1]['extract_s'] / results[0]['extract_s']:.2f}x", flush=True)
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
