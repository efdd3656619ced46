"""The recorder: nothing acknowledged is lost to SIGKILL, threads never interleave, parts rotate, retries are no-ops."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from rlops.errors import InvalidInput, RlopsError
from rlops.observe import migrate, read_records, record_files
from rlops.observe.recorder import Recorder
from rlops.spec.validate import validate_paths

ROOT = Path(__file__).resolve().parents[1]
DAY = 86400.0
T0 = dt.datetime(2026, 11, 25, 23, 0, tzinfo=dt.timezone.utc).timestamp()  # an hour before midnight UTC


def interaction(i: int, pad: str = "", **extra) -> dict:
    return {"agent": {"name": "support-agent", "version": "v3"},
            "input_messages": [{"role": "user", "content": f"question {i}"}],
            "output_messages": [{"role": "assistant", "content": f"answer {i}{pad}"}], **extra}


def rating(iid: str, **extra) -> dict:
    return {"interaction_id": iid, "actor": "customer:u-1", "kind": "rating", "rating": {"value": 1, "scale": [0, 1]},
            **extra}


def all_lines(directory: Path, stream: str) -> list[dict]:
    """Every line of every part, each of which must be complete JSON (this is the no-corruption check)."""
    out = []
    for path in record_files(directory, stream):
        data = path.read_bytes()
        assert data == b"" or data.endswith(b"\n"), f"{path} has a torn final line"
        out += [json.loads(line) for line in data.splitlines()]
    return out


def parts(directory: Path, stream: str) -> list[str]:
    return [p.relative_to(directory / stream).as_posix() for p in record_files(directory, stream)]


# -- crash safety with real processes --------------------------------------------------------------------------

CHILD = """
import os, signal, sys
from rlops.observe.recorder import Recorder
from rlops.spec.validate import validate_paths
if sys.argv[3] == "tear":  # die in the middle of the 25th record's write: half of it is on disk
    write, writes = os.write, []
    def tearing(fd, data):
        writes.append(fd)
        if len(writes) == 25:
            write(fd, bytes(data[: len(data) // 2]))
            os.kill(os.getpid(), signal.SIGKILL)
        return write(fd, data)
    os.write = tearing
rec = Recorder(sys.argv[1], rotate_bytes=256 * 1024, fsync=False)
big = "x" * 400_000  # large records make a kill in the middle of a write likely
i = 0
while True:
    pad = big if i % 5 == 0 else ""
    iid = rec.record_interaction({"agent": {"name": "a", "version": "v3"},
                                  "input_messages": [{"role": "user", "content": f"q{i}"}],
                                  "output_messages": [{"role": "assistant", "content": f"a{i}{pad}"}]})
    print("interactions", iid, flush=True)
    eid = rec.record_feedback({"interaction_id": iid, "actor": "customer:c", "kind": "comment",
                               "comment": {"text": pad}, "idempotency_key": f"{sys.argv[2]}-{i}"})
    print("feedback", eid, flush=True)
    i += 1
"""


def run_and_kill(directory: Path, round_: int, acks: int | None) -> dict[str, set[str]]:
    """Start a writer, SIGKILL it after `acks` acknowledgements (None: it kills itself mid-write); the acked ids."""
    mode = "tear" if acks is None else "run"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(directory), f"r{round_}", mode], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    acked: dict[str, set[str]] = {"interactions": set(), "feedback": set()}
    seen = 0
    for line in child.stdout:  # type: ignore[union-attr]
        stream, rid = line.split()
        acked[stream].add(rid)
        seen += 1
        if seen == acks:
            os.kill(child.pid, signal.SIGKILL)
            break
    rest, err = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGKILL, err
    for line in rest.splitlines():  # acknowledged before the kill, not read yet
        if re.fullmatch(r"(interactions|feedback) [0-9a-f]{32}", line):
            stream, rid = line.split()
            acked[stream].add(rid)
    return acked


def test_sigkill_loses_nothing_acknowledged_and_a_new_recorder_repairs_and_appends(tmp_path):
    acked: dict[str, set[str]] = {"interactions": set(), "feedback": set()}
    repaired = 0
    for round_, acks in enumerate((61, None, 137, 90)):
        for stream, ids in run_and_kill(tmp_path, round_, acks).items():
            acked[stream] |= ids
        # a reader skips a torn final line; every acknowledged record is there
        for stream, id_field in (("interactions", "interaction_id"), ("feedback", "event_id")):
            written = [r[id_field] for r in read_records(tmp_path, stream)]
            assert acked[stream] <= set(written)
            assert len(written) == len(set(written))
        # the next Recorder moves any torn tail to .torn, and appends
        with Recorder(tmp_path, fsync=False) as rec:
            acked["interactions"].add(rec.record_interaction(interaction(round_)))
            repaired += len(rec.repaired)
            assert acks is not None or len(rec.repaired) == 1  # the half-written record
        for stream in ("interactions", "feedback"):
            all_lines(tmp_path, stream)  # every line whole
        torn = b"".join(p.read_bytes() for p in tmp_path.rglob("*.torn"))
        assert not any(rid.encode() in torn for ids in acked.values() for rid in ids)  # nothing acked was torn
    assert len(acked["interactions"]) >= 4 and len(acked["feedback"]) >= 4 and repaired >= 1


def test_a_torn_tail_is_moved_to_a_torn_file_on_open(tmp_path):
    with Recorder(tmp_path, fsync=False) as rec:
        iids = [rec.record_interaction(interaction(i)) for i in range(3)]
    part = record_files(tmp_path, "interactions")[-1]
    torn = b'{"schema":"rlops.interaction/v1","interaction_id":"never-acked","timest'
    with open(part, "ab") as f:
        f.write(torn)
    assert [r["interaction_id"] for r in read_records(tmp_path, "interactions")] == iids  # the reader skips it

    with Recorder(tmp_path, fsync=True) as rec:
        assert rec.repaired == [part]
        assert part.read_bytes().endswith(b"\n") and part.with_name(part.name + ".torn").read_bytes() == torn + b"\n"
        iids.append(rec.record_interaction(interaction(3)))
    assert [r["interaction_id"] for r in read_records(tmp_path, "interactions")] == iids
    assert len(record_files(tmp_path, "interactions")) == 2  # a restarted recorder starts its own part
    with Recorder(tmp_path) as rec:
        assert rec.repaired == []


def test_a_part_holding_only_a_torn_line_is_emptied(tmp_path):
    folder = tmp_path / "feedback" / "date=2026-11-25"
    folder.mkdir(parents=True)
    (folder / "part-000001.jsonl").write_bytes(b'{"event_id": "x"')
    with Recorder(tmp_path, fsync=False) as rec:
        assert rec.repaired == [folder / "part-000001.jsonl"]
        rec.record_feedback(rating("i-1"))
    assert (folder / "part-000001.jsonl").read_bytes() == b""
    assert [p.split("/")[-1] for p in parts(tmp_path, "feedback")][-1] == "part-000002.jsonl"


FSIZE_CHILD = """
import json, resource, signal, sys
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead of killing us
resource.setrlimit(resource.RLIMIT_FSIZE, (3000, 3000))
from rlops.errors import RlopsError
from rlops.observe.recorder import Recorder
from rlops.spec.validate import validate_paths
acked, errors = [], []
with Recorder(sys.argv[1], rotate_bytes=None, fsync=False) as rec:
    for i in range(30):
        try:
            acked.append(rec.record_interaction({"agent": {"name": "a", "version": "v3"},
                "input_messages": [{"role": "user", "content": f"q{i}" + "y" * 150}],
                "output_messages": [{"role": "assistant", "content": f"a{i}"}]}))
        except RlopsError as e:
            errors.append(e.message)
print(json.dumps({"acked": acked, "errors": errors}))
"""


def test_a_failed_write_is_cut_back_and_the_next_record_goes_to_a_new_part(tmp_path):
    p = subprocess.run([sys.executable, "-c", FSIZE_CHILD, str(tmp_path)], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    result = json.loads(p.stdout)
    assert result["errors"] and all("the record was not written" in m for m in result["errors"])
    assert [r["interaction_id"] for r in all_lines(tmp_path, "interactions")] == result["acked"]
    assert len(result["acked"]) + len(result["errors"]) == 30
    assert len(record_files(tmp_path, "interactions")) == len(result["errors"]) + 1


# -- threads ---------------------------------------------------------------------------------------------------


def test_eight_threads_write_whole_lines_in_order(tmp_path):
    returned: dict[int, list[str]] = {}
    with Recorder(tmp_path, rotate_bytes=32 * 1024, fsync=False) as rec:
        start = threading.Barrier(8)

        def work(t: int) -> None:
            start.wait()
            returned[t] = [rec.record_interaction(interaction(i, x_thread=t, x_seq=i)) for i in range(200)]

        threads = [threading.Thread(target=work, args=(t,)) for t in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = all_lines(tmp_path, "interactions")
    assert len(lines) == 1600
    assert sorted(r["interaction_id"] for r in lines) == sorted(i for ids in returned.values() for i in ids)
    for t in range(8):  # each thread's records appear in the order it wrote them
        assert [r["x_seq"] for r in lines if r["x_thread"] == t] == list(range(200))
    files = record_files(tmp_path, "interactions")
    assert len(files) > 5 and all(p.stat().st_size <= 32 * 1024 for p in files)


# -- rotation --------------------------------------------------------------------------------------------------


def test_rotation_by_size_keeps_parts_under_the_limit_and_in_write_order(tmp_path):
    with Recorder(tmp_path, rotate_bytes=1500, fsync=True) as rec:
        ids = [rec.record_interaction(interaction(i)) for i in range(20)]
        ids.append(rec.record_interaction(interaction(20, pad="z" * 3000)))  # larger than a part: a part of its own
        ids.append(rec.record_interaction(interaction(21)))
    files = record_files(tmp_path, "interactions")
    sizes = [p.stat().st_size for p in files]
    assert len(files) >= 5 and all(size <= 1500 for size in sizes[:-2]) and sizes[-2] > 3000
    assert [int(p.stem.split("-")[1]) for p in files] == list(range(1, len(files) + 1))
    assert sorted(files) == files  # plain path order is write order
    assert [r["interaction_id"] for r in read_records(tmp_path, "interactions")] == ids


def test_rotation_by_time_and_by_utc_day_with_an_injected_clock(tmp_path):
    now = [T0]
    with Recorder(tmp_path, rotate_seconds=600, rotate_bytes=None, fsync=False, clock=lambda: now[0]) as rec:
        written = []
        for step in (0, 300, 599, 600, 1000, 3599, 3601, 3700, -DAY, 4000, 4201):  # seconds after T0
            now[0] = T0 + step
            written.append(rec.record_feedback(rating(f"i-{len(written)}")))
    assert parts(tmp_path, "feedback") == [
        "date=2026-11-25/part-000001.jsonl",  # 0, 300, 599
        "date=2026-11-25/part-000002.jsonl",  # 600, 1000: ten minutes later
        "date=2026-11-25/part-000003.jsonl",  # 3599
        "date=2026-11-26/part-000004.jsonl",  # 3601, 3700, the clock a day back (the date never goes back), 4000
        "date=2026-11-26/part-000005.jsonl",  # 4201: ten minutes after the part began
    ]
    records = list(read_records(tmp_path, "feedback"))
    assert [r["event_id"] for r in records] == written
    assert records[0]["timestamp"] == "2026-11-25T23:00:00.000Z"
    assert records[6]["timestamp"] == "2026-11-26T00:00:01.000Z"


def test_rotation_settings_are_checked(tmp_path):
    with pytest.raises(InvalidInput, match="rotate_bytes: 0 must be positive"):
        Recorder(tmp_path, rotate_bytes=0)
    with pytest.raises(InvalidInput, match="dedupe_window: -1 must be 0"):
        Recorder(tmp_path, dedupe_window=-1)
    with Recorder(tmp_path, rotate_seconds=None, rotate_bytes=None):
        pass


# -- idempotency -----------------------------------------------------------------------------------------------


def test_a_retry_returns_the_original_id_and_writes_nothing_also_after_reopening(tmp_path):
    with Recorder(tmp_path, fsync=False) as rec:
        iid = rec.record_interaction(interaction(0, interaction_id="i-chosen"))
        assert iid == "i-chosen" and rec.record_interaction(interaction(0, interaction_id="i-chosen")) == iid
        first = rec.record_feedback(rating(iid, idempotency_key="click-1"))
        assert rec.record_feedback(rating(iid, idempotency_key="click-1")) == first  # a fresh event_id is made, unused
        changed = rating(iid, idempotency_key="click-1", rating={"value": 0, "scale": [0, 1]})
        assert rec.record_feedback(changed) == first
        by_event = rec.record_feedback(rating(iid, event_id="f-7"))
        assert by_event == "f-7" and rec.record_feedback(rating(iid, event_id="f-7")) == "f-7"
        other = rec.record_feedback(rating(iid))  # no key: always a new event
        assert rec.record_feedback(rating(iid)) != other
        quoted = rec.record_feedback(rating(iid, idempotency_key='say "hi" \\ ü'))
    # a line written by another tool, keys in another order
    with open(record_files(tmp_path, "feedback")[-1], "a") as f:
        hand = {"event_id": "f-hand", **rating(iid), "idempotency_key": "hand", "timestamp": "2026-11-25T10:00:00Z"}
        f.write(json.dumps(hand) + "\n")
    with Recorder(tmp_path, fsync=False) as rec:  # keys rebuilt from the files
        assert rec.record_feedback(rating(iid, idempotency_key="click-1")) == first
        assert rec.record_feedback(rating(iid, event_id="f-7")) == "f-7"
        assert rec.record_feedback(rating(iid, idempotency_key='say "hi" \\ ü')) == quoted
        assert rec.record_feedback(rating(iid, idempotency_key="hand")) == "f-hand"
        assert rec.record_interaction(interaction(0, interaction_id="i-chosen")) == iid
        assert rec.record_feedback(rating(iid, idempotency_key="click-2")) != first
    feedback = all_lines(tmp_path, "feedback")
    assert len(feedback) == 7 and [r["event_id"] for r in feedback].count(first) == 1
    assert next(r for r in feedback if r["event_id"] == first)["rating"]["value"] == 1  # the first write wins
    assert len(all_lines(tmp_path, "interactions")) == 1


def test_the_dedupe_window_is_a_bound(tmp_path):
    with Recorder(tmp_path, fsync=False, dedupe_window=3) as rec:
        ids = [rec.record_feedback(rating("i-1", idempotency_key=f"k{n}")) for n in range(5)]
        assert rec.record_feedback(rating("i-1", idempotency_key="k4")) == ids[4]
        assert rec.record_feedback(rating("i-1", idempotency_key="k0")) != ids[0]  # forgotten: written again
    with Recorder(tmp_path, fsync=False, dedupe_window=3) as rec:  # rebuilt from the newest three records
        assert rec.record_feedback(rating("i-1", idempotency_key="k3")) == ids[3]
        assert rec.record_feedback(rating("i-1", idempotency_key="k4")) == ids[4]
        assert rec.record_feedback(rating("i-1", idempotency_key="k1")) != ids[1]
    assert len(all_lines(tmp_path, "feedback")) == 7


# -- validation ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("record, place", [
    (rating("i-1", rating=None), "feedback record: rating: expected"),
    ({k: v for k, v in rating("i-1").items() if k != "rating"},
     "feedback record: rating: missing required key 'rating' (kind rating carries its details"),
    (rating("i-1", kind="thumbs"), "feedback record: kind: 'thumbs' is not allowed; use one of: rating, pairwise"),
    (rating("i-1", timestamp="2026-11-25 10:00:00"), "feedback record: timestamp: '2026-11-25 10:00:00' is not an "
                                                      "RFC 3339 date-time with a time-zone offset"),
    (rating("i-1", timestamp="2026-13-25T10:00:00Z"), "feedback record: timestamp: '2026-13-25T10:00:00Z' is not"),
    (rating("i-1", when=dt.datetime(2026, 11, 25)), "feedback record: when: not a JSON value"),
    (rating("i-1", rating={"value": float("nan"), "scale": [0, 1]}), "feedback record: rating.value: not a JSON value"),
    (rating("i-1", schema="rlops.feedback/v2"), "feedback record: schema: 'rlops.feedback/v1' was expected"),
    (["not", "a", "dict"], "feedback record: expected a JSON object (a dict), got list"),
    (rating("i-1", comment={"text": "broken \ud800 text"}), "feedback record: text that is not valid Unicode"),
])
def test_invalid_feedback_is_refused_naming_the_field_and_nothing_is_written(tmp_path, record, place):
    before = copy.deepcopy(record)
    with Recorder(tmp_path, fsync=False) as rec, pytest.raises(InvalidInput) as raised:
        rec.record_feedback(record)
    assert any(str(p).startswith(place) for p in raised.value.problems), raised.value.message
    assert record == before  # the caller's record is never changed
    assert record_files(tmp_path, "feedback") == []


def test_invalid_interaction_lists_every_problem(tmp_path):
    bad = interaction(0, agent={"name": "a"})
    bad["output_messages"][0]["contents"] = "typo"
    with Recorder(tmp_path, fsync=False) as rec, pytest.raises(InvalidInput) as raised:
        rec.record_interaction(bad)
    assert [str(p) for p in raised.value.problems] == [
        "interaction record: agent.version: missing required key 'version'",
        "interaction record: output_messages[0].contents: unknown key 'contents'; allowed keys: content, name, role, "
        "tool_call_id, tool_calls",
    ]
    assert "docs/records.md" in raised.value.hint


def test_missing_fields_are_filled_and_validate_false_skips_the_schema(tmp_path):
    with Recorder(tmp_path, fsync=False) as rec:
        iid = rec.record_interaction(interaction(0))
    (record,) = all_lines(tmp_path, "interactions")
    assert list(record)[:3] == ["schema", "interaction_id", "timestamp"]
    assert record["schema"] == "rlops.interaction/v1" and record["interaction_id"] == iid
    assert re.fullmatch(r"[0-9a-f]{32}", iid)
    stamp = dt.datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00"))
    assert record["timestamp"].endswith("Z") and abs(dt.datetime.now(dt.timezone.utc) - stamp) < dt.timedelta(minutes=5)
    with Recorder(tmp_path, fsync=False, validate=False) as rec:
        rec.record_feedback(rating("i-1", kind="thumbs"))
    assert all_lines(tmp_path, "feedback")[0]["kind"] == "thumbs"


# -- one recorder per directory --------------------------------------------------------------------------------


def test_a_second_recorder_on_the_same_directory_is_refused_until_the_first_closes(tmp_path):
    first = Recorder(tmp_path, fsync=False)
    with pytest.raises(RlopsError, match=f"another Recorder \\(pid {os.getpid()}\\) is writing to this directory"):
        Recorder(tmp_path)
    first.close()
    first.close()  # closing twice is harmless
    with pytest.raises(RlopsError, match="is closed"):
        first.record_interaction(interaction(0))
    with Recorder(tmp_path, fsync=False) as second:
        second.record_interaction(interaction(0))


# -- versions, imports and the documented example --------------------------------------------------------------


def test_migrate_reads_v1_and_refuses_what_it_does_not_know(tmp_path):
    record = {"interaction_id": "i-1"}
    assert migrate(record, "interactions") is record  # no schema field: v1
    assert migrate({"schema": "rlops.feedback/v1"}, "feedback") == {"schema": "rlops.feedback/v1"}
    for declared, stream in (("rlops.interaction/v2", "interactions"), ("rlops.interaction/v1", "feedback"),
                             ("v1", "interactions")):
        with pytest.raises(InvalidInput, match="is not a version this rlops reads"):
            migrate({"schema": declared}, stream)
    with Recorder(tmp_path, fsync=False) as rec:
        rec.record_feedback(rating("i-1"))
    part = record_files(tmp_path, "feedback")[0]
    with open(part, "a") as f:
        f.write('{"schema": "rlops.feedback/v9", "event_id": "f-9"}\n')
    with pytest.raises(InvalidInput) as raised:
        list(read_records(tmp_path, "feedback"))
    assert str(raised.value.problems[0]) == (f"{part}:2: schema: 'rlops.feedback/v9' is not a version this rlops "
                                             "reads (rlops.feedback/v1 to rlops.feedback/v1)")


def test_observe_imports_only_stdlib_and_jsonschema():
    code = ("import sys; before = set(sys.modules); import rlops.observe; assert 'jsonschema' not in sys.modules; "
            "import rlops.observe.recorder; new = {m.split('.')[0] for m in set(sys.modules) - before}; "
            "print(sorted(new - set(sys.stdlib_module_names)))")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert p.returncode == 0, p.stderr
    allowed = {"rlops", "jsonschema", "jsonschema_specifications", "referencing", "attr", "attrs", "rpds", "idna",
               "typing_extensions", "rfc3339_validator", "fqdn", "isoduration", "uri_template", "webcolors"}
    assert set(json.loads(p.stdout.replace("'", '"'))) <= allowed


def test_the_documented_example_runs(tmp_path):
    doc = (ROOT / "docs/records.md").read_text(encoding="utf-8")
    (code,) = re.findall(r"```python\n(.*?)```", doc, flags=re.S)
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(all_lines(tmp_path / "logs", "interactions")) == 1 and len(all_lines(tmp_path / "logs", "feedback")) == 1
    assert validate_paths([tmp_path / "logs"], tmp_path) == []  # `rlops validate logs/` accepts what it wrote
