"""Extraction on tiny hand-made logs, and on the committed example data; plus rlops.io's atomic writes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from rlops.errors import InvalidInput, StageFailed
from rlops.extract import run as extract_run
from rlops.extract.params import ExtractParams
from rlops.extract.records import validator
from rlops.extract.rules import chars_changed
from rlops.io import atomic_dir, atomic_write_json, atomic_write_lines, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "You are the support assistant of Northwind Shop."
ORIGINAL = "Please contact support."
EDITED = "I'm sorry it arrived broken. Send me your order number and I'll ship a replacement within 2 days."


# -- a tiny world ------------------------------------------------------------------------------


def interaction(iid: str, user: str = "My teapot arrived broken.", answer: str = ORIGINAL, **extra: Any) -> dict:
    return {
        "schema": "rlops.interaction/v1",
        "interaction_id": iid,
        "timestamp": "2026-11-03T10:15:00Z",
        "agent": {"name": "support-agent", "version": "base"},
        "input_messages": [{"role": "user", "content": user}],
        "output_messages": [{"role": "assistant", "content": answer}],
        **extra,
    }


def event(eid: str, iid: str, kind: str, details: dict, ts: str = "2026-11-03T10:20:00Z") -> dict:
    return {"schema": "rlops.feedback/v1", "event_id": eid, "interaction_id": iid, "timestamp": ts,
            "actor": "staff:alice", "kind": kind, kind: details}


def edit(eid: str, iid: str, text: str = EDITED, **kw: Any) -> dict:
    return event(eid, iid, "edit", {"output_messages": [{"role": "assistant", "content": text}]}, **kw)


def rating(eid: str, iid: str, value: float, **kw: Any) -> dict:
    return event(eid, iid, "rating", {"value": value, "scale": [1, 5]}, **kw)


def pairwise(eid: str, chosen: str, rejected: str, **kw: Any) -> dict:
    return event(eid, chosen, "pairwise", {"chosen_id": chosen, "rejected_id": rejected, "shown_order": [rejected, chosen]}, **kw)


def lines(records: list[dict | str]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def params(**extract: Any) -> dict:
    window = extract.pop("window", None)
    return {
        "data": {"interactions": "logs/interactions.jsonl", "feedback": "logs/feedback.jsonl", "window": window},
        "extract": {"signals": ["edit", "pairwise", "rating"], "rating_min_gap": 2, "edit_min_chars": 8,
                    "decontaminate": True, "suites_dir": "evals", **extract},
        "policy": {"name": "support-agent", "system_prompt": SYSTEM},
    }


def world(tmp_path: Path, interactions: list, feedback: list, suite: tuple[str, ...] = ("What are your opening hours?",)) -> Path:
    (tmp_path / "logs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "logs/interactions.jsonl").write_text(lines(interactions))
    (tmp_path / "logs/feedback.jsonl").write_text(lines(feedback))
    (tmp_path / "evals/heldout").mkdir(parents=True, exist_ok=True)
    (tmp_path / "evals/heldout/prompts.jsonl").write_text(lines([{"id": f"h-{i}", "prompt": p} for i, p in enumerate(suite)]))
    return tmp_path


def extract(root: Path, **extract: Any) -> tuple[dict, list[dict], list[dict]]:
    out = root / "out"
    report = extract_run.run(params(**extract), root, out)
    assert json.loads((out / "signals.json").read_text()) == report
    pairs = [json.loads(line) for line in (out / "pairs.jsonl").read_text().splitlines()]
    quarantine = [json.loads(line) for line in (out / "quarantine.jsonl").read_text().splitlines()]
    for row in pairs:
        assert list(row) == ["prompt", "chosen", "rejected", "meta"]  # TRL's field order
        assert not list(validator("preference").iter_errors(row))
    assert_accounted(report)
    return report, pairs, quarantine


def assert_accounted(report: dict) -> None:
    """Every feedback line read is used, dropped or quarantined, exactly once."""
    inv = report["invariant"]
    assert inv["holds"] is True
    assert inv["used"] == sum(report["used"].values())
    assert inv["dropped"] == sum(report["dropped"].values())
    assert inv["quarantined"] == report["quarantined"]["feedback"]
    assert report["records_read"]["feedback"] == inv["used"] + inv["dropped"] + inv["quarantined"]
    assert report["pairs"]["total"] == sum(report["pairs"][k] for k in ("edit", "pairwise", "rating"))


# -- rules -------------------------------------------------------------------------------------


def test_edit_prefers_the_edited_answer(tmp_path):
    root = world(tmp_path, [interaction("i-1")], [edit("f-1", "i-1")])
    report, pairs, quarantine = extract(root)
    assert pairs == [{
        "prompt": [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "My teapot arrived broken."}],
        "chosen": [{"role": "assistant", "content": EDITED}],
        "rejected": [{"role": "assistant", "content": ORIGINAL}],
        "meta": {"rule": "edit", "interaction_ids": ["i-1"], "event_ids": ["f-1"]},
    }]
    assert report["pairs"] == {"edit": 1, "pairwise": 0, "rating": 0, "total": 1}
    assert quarantine == []


def test_prompt_uses_the_interactions_own_system_instructions(tmp_path):
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
               {"role": "user", "content": "My teapot arrived broken."}]
    record = interaction("i-1", system_instructions="Holiday rules apply.", trace_id="0af7651916cd43dd8448eb211c80319c")
    record["input_messages"] = history
    _, pairs, _ = extract(world(tmp_path, [record], [edit("f-1", "i-1")]))
    assert pairs[0]["prompt"] == [{"role": "system", "content": "Holiday rules apply."}, *history]


def test_trivial_edit_is_dropped(tmp_path):
    root = world(tmp_path, [interaction("i-1"), interaction("i-2")],
                 [edit("f-1", "i-1", "Please contact support!"), edit("f-2", "i-2", "Please, contact our support.")])
    report, pairs, _ = extract(root)  # 1 and 6 characters changed, fewer than 8
    assert pairs == []
    assert report["dropped"]["trivial_edit"] == 2
    report, pairs, _ = extract(root, edit_min_chars=5)
    assert report["dropped"]["trivial_edit"] == 1 and [p["meta"]["event_ids"] for p in pairs] == [["f-2"]]


def test_pairwise_chooses_the_chosen_interaction(tmp_path):
    root = world(tmp_path, [interaction("i-1", answer=EDITED), interaction("i-2")], [pairwise("f-1", "i-1", "i-2")])
    report, pairs, _ = extract(root)
    assert pairs[0]["chosen"][0]["content"] == EDITED and pairs[0]["rejected"][0]["content"] == ORIGINAL
    assert pairs[0]["meta"] == {"rule": "pairwise", "interaction_ids": ["i-1", "i-2"], "event_ids": ["f-1"]}
    assert report["used"]["pairwise"] == 1


def test_pairwise_over_different_inputs_is_quarantined(tmp_path):
    root = world(tmp_path, [interaction("i-1"), interaction("i-2", user="Where is my order?")], [pairwise("f-1", "i-1", "i-2")])
    report, pairs, quarantine = extract(root)
    assert pairs == [] and report["quarantined"]["feedback"] == 1
    assert "different inputs" in quarantine[0]["reason"]


def test_rating_pairs_need_the_minimum_gap(tmp_path):
    answers = {"i-1": ("A thorough answer with a replacement.", 5), "i-2": ("Hmm.", 3), "i-3": ("An okay answer.", 4)}
    records = [interaction(iid, user="Where is my parcel?", answer=a) for iid, (a, _) in answers.items()]
    records += [interaction("i-4", user="  where is my   PARCEL? "), interaction("i-5", user="Unrelated question")]
    feedback = [rating(f"f-{iid}", iid, v) for iid, (_, v) in answers.items()]
    feedback += [rating("f-i-4", "i-4", 1), rating("f-i-5", "i-5", 5)]
    report, pairs, _ = extract(world(tmp_path, records, feedback))
    # one pair per couple at least 2 apart; i-4's prompt differs only in case and spaces: same group
    got = sorted(tuple(p["meta"]["interaction_ids"]) for p in pairs)
    assert got == [("i-1", "i-2"), ("i-1", "i-4"), ("i-2", "i-4"), ("i-3", "i-4")]
    assert report["pairs"]["rating"] == 4 and report["used"]["rating"] == 4
    assert report["dropped"]["rating_unpaired"] == 1  # i-5: nothing else answered that prompt

    report, pairs, _ = extract(tmp_path, rating_min_gap=3)
    assert sorted(tuple(p["meta"]["interaction_ids"]) for p in pairs) == [("i-1", "i-4"), ("i-3", "i-4")]
    assert report["dropped"]["rating_tie_or_small_gap"] == 1  # i-2 (3) is within 2 of every other answer


def test_a_rerating_supersedes_the_earlier_rating(tmp_path):
    records = [interaction("i-1", answer="Good answer."), interaction("i-2", answer="Bad answer.")]
    feedback = [rating("f-1", "i-1", 2), rating("f-2", "i-2", 2), rating("f-3", "i-1", 5, ts="2026-11-04T09:00:00Z")]
    report, pairs, _ = extract(world(tmp_path, records, feedback))
    assert [p["meta"]["event_ids"] for p in pairs] == [["f-3", "f-2"]]
    assert report["dropped"]["rating_superseded"] == 1


def test_comments_and_disabled_signals_are_counted_not_used(tmp_path):
    records = [interaction("i-1"), interaction("i-2", answer="Other.")]
    feedback = [edit("f-1", "i-1"), event("f-2", "i-1", "comment", {"text": "resolved by phone"}),
                rating("f-3", "i-1", 5), rating("f-4", "i-2", 1)]
    report, pairs, _ = extract(world(tmp_path, records, feedback), signals=["edit"])
    assert [p["meta"]["rule"] for p in pairs] == ["edit"]
    assert report["dropped"]["no_signal"] == 1 and report["dropped"]["signal_disabled"] == 2


# -- filters -----------------------------------------------------------------------------------


def test_window_is_inclusive_of_whole_days_in_utc(tmp_path):
    stamps = {
        "f-1": "2026-10-31T23:59:59Z",  # out
        "f-2": "2026-11-01T00:00:00Z",  # in
        "f-3": "2026-11-24T23:59:59Z",  # in: `to` covers its whole day
        "f-4": "2026-11-25T00:00:00Z",  # out
        "f-5": "2026-11-25T00:30:00+01:00",  # in: 2026-11-24T23:30Z
    }
    records = [interaction(f"i-{n}", answer=f"Answer {n}.") for n in range(1, 6)]
    feedback = [edit(eid, f"i-{eid[2:]}", ts=ts) for eid, ts in stamps.items()]
    report, pairs, _ = extract(world(tmp_path, records, feedback), window={"from": "2026-11-01", "to": "2026-11-24"})
    assert sorted(p["meta"]["event_ids"][0] for p in pairs) == ["f-2", "f-3", "f-5"]
    assert report["dropped"]["outside_window"] == 2
    report, _, _ = extract(tmp_path)  # no window: everything counts
    assert report["pairs"]["edit"] == 5


def test_pairs_on_eval_prompts_are_dropped_as_contaminated(tmp_path):
    records = [interaction("i-1", user="What are your OPENING hours??"), interaction("i-2")]
    report, pairs, _ = extract(world(tmp_path, records, [edit("f-1", "i-1"), edit("f-2", "i-2")]))
    assert [p["meta"]["event_ids"] for p in pairs] == [["f-2"]]
    assert report["dropped"]["contaminated"] == 1
    report, _, _ = extract(tmp_path, decontaminate=False)
    assert report["pairs"]["edit"] == 2 and report["dropped"]["contaminated"] == 0


def test_missing_suites_dir_fails_clearly(tmp_path):
    root = world(tmp_path, [interaction("i-1")], [edit("f-1", "i-1")])
    with pytest.raises(StageFailed, match="nowhere: no such folder"):
        extract_run.run(params(suites_dir="nowhere"), root, root / "out")


def test_duplicate_pairs_are_kept_once(tmp_path):
    records = [interaction("i-1", answer=EDITED), interaction("i-2")]
    feedback = [pairwise("f-1", "i-1", "i-2"), pairwise("f-2", "i-1", "i-2", ts="2026-11-05T10:00:00Z")]
    report, pairs, _ = extract(world(tmp_path, records, feedback))
    assert [p["meta"]["event_ids"] for p in pairs] == [["f-1"]]
    assert report["dropped"]["duplicate_pair"] == 1


# -- malformed input ---------------------------------------------------------------------------

BAD_FEEDBACK = {
    "not json": ("{\"event_id\": \"f-9\", \"kind\": \"rat", "not JSON"),
    "missing interaction_id": ({k: v for k, v in rating("f-9", "i-1", 4).items() if k != "interaction_id"}, "interaction_id: missing"),
    "unknown kind": (event("f-9", "i-1", "thumbs_up", {}), "kind: 'thumbs_up' is not one of"),
    "unknown interaction": (rating("f-9", "i-404", 4), "interaction_id: no interaction i-404"),
    "quarantined interaction": (rating("f-9", "i-bad", 4), "i-bad is a quarantined interaction (line 3)"),
    "out of scale": (rating("f-9", "i-1", 9), "rating.value: 9 is outside the scale [1, 5]"),
    "kind without details": ({**rating("f-9", "i-1", 4), "rating": None, "kind": "edit"}, "edit: missing"),
    "naive timestamp": (rating("f-9", "i-1", 4, ts="2026-11-03T10:20:00"), "not an RFC 3339 date-time"),
    "repeated event id": (rating("f-1", "i-1", 4), "event_id: f-1 repeats the event on line 1"),
    "not an object": ("[1, 2, 3]", "is not of type 'object'"),
    "chosen is not interaction_id": ({**pairwise("f-9", "i-1", "i-2"), "interaction_id": "i-2"}, "pairwise.chosen_id: i-1 differs"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEEDBACK))
def test_malformed_feedback_is_quarantined_and_the_rest_used(tmp_path, case):
    bad, reason = BAD_FEEDBACK[case]
    records = [interaction("i-1"), interaction("i-2"),
               {**interaction("i-bad"), "input_messages": [{"role": "customer", "content": "hi"}]}]
    root = world(tmp_path, records, [edit("f-1", "i-1"), bad, edit("f-2", "i-2", "A different, much better answer.")])
    report, pairs, quarantine = extract(root)
    assert report["pairs"]["edit"] == 2  # the good lines around the bad one still count
    feedback_q = [q for q in quarantine if q["file"] == "logs/feedback.jsonl"]
    assert len(feedback_q) == 1 and feedback_q[0]["line"] == 2
    assert reason in feedback_q[0]["reason"]
    assert feedback_q[0]["raw"] == (bad if isinstance(bad, str) else json.dumps(bad))


def test_malformed_interactions_are_quarantined_with_field_paths(tmp_path):
    records = [
        interaction("i-1"),
        "not json at all",
        {**interaction("i-2"), "input_messages": [{"role": "customer", "content": "hi"}]},
        {**interaction("i-3"), "output_messages": [{"role": "assistant", "contents": "typo"}]},
        {k: v for k, v in interaction("i-4").items() if k not in ("agent", "timestamp")},
        interaction("i-1", answer="same id again"),
        "",  # blank lines are not records
        {**interaction("i-5"), "timestamp": "yesterday"},
    ]
    report, _, quarantine = extract(world(tmp_path, records, [edit("f-1", "i-1")]))
    reasons = {q["line"]: q["reason"] for q in quarantine}
    assert reasons[2].startswith("not JSON")
    assert reasons[3] == "input_messages[0].role: 'customer' is not one of ['system', 'user', 'assistant', 'tool']"
    assert "output_messages[0].content: missing" in reasons[4] and "'contents' was unexpected" in reasons[4]
    assert reasons[5] == "agent: missing; timestamp: missing"
    assert reasons[6] == "interaction_id: i-1 repeats the record on line 1"
    assert "not an RFC 3339 date-time" in reasons[8]
    assert report["records_read"]["interactions"] == 7 and report["quarantined"]["interactions"] == 6
    assert report["pairs"]["edit"] == 1


def test_missing_log_file_fails_clearly(tmp_path):
    root = world(tmp_path, [interaction("i-1")], [])
    (root / "logs/feedback.jsonl").unlink()
    with pytest.raises(StageFailed, match="logs/feedback.jsonl: no such file"):
        extract_run.run(params(), root, root / "out")


# -- params ------------------------------------------------------------------------------------


def test_params_are_checked_all_at_once():
    bad = params(rating_min_gap=-1, edit_min_chars="8", signals=["edit", "thumbs"], decontaminate="yes", typo=1,
                 window={"from": "2026-11-30", "to": "2026-11-01"})
    bad["data"]["feedback"] = "../elsewhere.jsonl"
    with pytest.raises(InvalidInput) as err:
        ExtractParams.from_mapping(bad)
    text = str(err.value)
    for field in ("extract.rating_min_gap", "extract.edit_min_chars", "extract.signals[1]", "extract.decontaminate",
                  "extract.typo", "data.window", "data.feedback"):
        assert f"params.yaml: {field}:" in text
    assert err.value.exit_code == 2


def test_params_accept_yaml_dates_and_missing_window():
    import datetime as dt

    p = params(window={"from": dt.date(2026, 11, 1), "to": "2026-11-24"})
    settings = ExtractParams.from_mapping(p)
    assert settings.window is not None and settings.window.end == dt.date(2026, 11, 24)
    del p["data"]["window"]
    assert ExtractParams.from_mapping(p).window is None
    with pytest.raises(InvalidInput, match="params.yaml: policy: missing section"):
        ExtractParams.from_mapping({"data": p["data"], "extract": p["extract"]})


def test_chars_changed_is_levenshtein_capped():
    def levenshtein(a: str, b: str) -> int:
        row = list(range(len(b) + 1))
        for i, ca in enumerate(a, 1):
            prev, row[0] = row[0], i
            for j, cb in enumerate(b, 1):
                prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
        return row[-1]

    rng = random.Random(0)
    for _ in range(400):
        a = "".join(rng.choice("abc ") for _ in range(rng.randint(0, 14)))
        b = list(a)
        for _ in range(rng.randint(0, 6)):
            op = rng.randint(0, 2)
            if op == 0 or not b:
                b.insert(rng.randint(0, len(b)), rng.choice("abcd"))
            elif op == 1:
                del b[rng.randrange(len(b))]
            else:
                b[rng.randrange(len(b))] = rng.choice("abcd")
        b = "".join(b)
        for cap in (1, 3, 8):
            assert chars_changed(a, b, cap) == min(levenshtein(a, b), cap), (a, b, cap)


# -- determinism and atomicity -----------------------------------------------------------------


def mixed_world(tmp_path: Path, seed: int = 0) -> Path:
    records = [interaction(f"i-{n}", user=f"Question {n % 4}", answer=f"Answer number {n}") for n in range(24)]
    feedback: list = [edit(f"f-e{n}", f"i-{n}", f"A much better answer to question {n % 4}") for n in range(0, 24, 3)]
    feedback += [rating(f"f-r{n}", f"i-{n}", 1 + n % 5) for n in range(1, 24, 2)]
    feedback += [pairwise(f"f-p{n}", f"i-{n}", f"i-{n + 4}") for n in range(2, 18, 6)]
    feedback += ["garbage", event("f-c", "i-0", "comment", {"text": "ok"})]
    random.Random(seed).shuffle(records)
    random.Random(seed).shuffle(feedback)
    return world(tmp_path, records, feedback)


def test_two_runs_write_byte_identical_files(tmp_path):
    root = mixed_world(tmp_path)
    extract_run.run(params(), root, root / "a")
    extract_run.run(params(), root, root / "b")
    for name in extract_run.OUTPUTS:
        assert (root / "a" / name).read_bytes() == (root / "b" / name).read_bytes(), name
    # the order of the log lines does not change the pairs either
    other = mixed_world(tmp_path / "shuffled", seed=1)
    extract_run.run(params(), other, other / "c")
    assert (other / "c/pairs.jsonl").read_bytes() == (root / "a/pairs.jsonl").read_bytes()
    report = json.loads((root / "a/signals.json").read_text())
    assert_accounted(report)
    assert report["pairs"]["total"] > 5


def test_a_failure_mid_write_leaves_no_pairs_file(tmp_path, monkeypatch):
    root = mixed_world(tmp_path)
    out = root / "out"
    written = []

    def pair_line_then_crash(pair):
        if len(written) == 2:
            raise RuntimeError("killed")
        written.append(pair)
        return json.dumps(pair.to_row())

    monkeypatch.setattr(extract_run, "pair_line", pair_line_then_crash)
    with pytest.raises(RuntimeError, match="killed"):
        extract_run.run(params(), root, out)
    assert not (out / "pairs.jsonl").exists() and not (out / "signals.json").exists()
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary files left


# -- the committed example data ----------------------------------------------------------------


def test_example_data_gives_pairs_from_every_rule(tmp_path):
    import yaml

    policy = yaml.safe_load((ROOT / "specs/policy.yaml").read_text())
    p = {
        "data": {"interactions": "data/example/interactions.jsonl", "feedback": "data/example/feedback.jsonl",
                 "window": {"from": "2026-11-01", "to": "2026-11-24"}},
        "extract": {"signals": ["edit", "pairwise", "rating"], "rating_min_gap": 2, "edit_min_chars": 8,
                    "decontaminate": True, "suites_dir": "specs/evals"},
        "policy": {"name": policy["policy"], "system_prompt": policy["system_prompt"]},
    }
    report = extract_run.run(p, ROOT, tmp_path)
    assert_accounted(report)
    assert all(report["pairs"][rule] > 10 for rule in ("edit", "pairwise", "rating")), report["pairs"]
    for reason in ("outside_window", "no_signal", "trivial_edit", "rating_tie_or_small_gap", "contaminated", "duplicate_pair"):
        assert report["dropped"][reason] > 0, reason
    assert report["quarantined"]["interactions"] >= 4 and report["quarantined"]["feedback"] >= 4
    quarantine = [json.loads(line) for line in (tmp_path / "quarantine.jsonl").read_text().splitlines()]
    reasons = " | ".join(q["reason"] for q in quarantine)
    for expected in ("not JSON", "interaction_id: missing", "kind: 'thumbs_up'", "no interaction i-999999",
                     "quarantined interaction", "different inputs", "repeats the record"):
        assert expected in reasons, expected
    rows = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    check = Draft202012Validator(json.loads((ROOT / "rlops/spec/schemas/preference.schema.json").read_text()))
    assert all(check.is_valid(row) for row in rows) and len(rows) == report["pairs"]["total"]
    assert "| **total** |" in (tmp_path / "signals.md").read_text()


# -- rlops.io ----------------------------------------------------------------------------------


def test_atomic_writes(tmp_path):
    atomic_write_json(tmp_path / "a.json", {"b": 1, "a": [1, 2]})
    assert (tmp_path / "a.json").read_text() == '{\n  "a": [\n    1,\n    2\n  ],\n  "b": 1\n}\n'
    atomic_write_text(tmp_path / "sub/t.txt", "hello")
    assert (tmp_path / "sub/t.txt").read_text() == "hello"
    atomic_write_lines(tmp_path / "l.txt", ["x", "y\n"])
    assert (tmp_path / "l.txt").read_text() == "x\ny\n"

    def boom():
        yield "partial"
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        atomic_write_lines(tmp_path / "l.txt", boom())
    assert (tmp_path / "l.txt").read_text() == "x\ny\n"  # the old file survives
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "bad.json", {"x": object()})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "l.txt", "sub"]  # no temporary files


def test_atomic_dir_replaces_on_success_only(tmp_path):
    target = tmp_path / "model"
    with atomic_dir(target) as d:
        (d / "weights").write_text("v1")
    assert (target / "weights").read_text() == "v1"
    with pytest.raises(RuntimeError):
        with atomic_dir(target) as d:
            (d / "weights").write_text("half")
            raise RuntimeError("killed")
    assert (target / "weights").read_text() == "v1"
    with atomic_dir(target) as d:
        (d / "other").write_text("v2")
    assert sorted(p.name for p in target.iterdir()) == ["other"]  # the old folder is gone
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_atomic_writes_sweep_what_a_killed_write_left_behind(tmp_path):
    # a SIGKILL between mkstemp/mkdtemp and the rename leaves these; the next write of the same path removes them
    (tmp_path / ".pairs.jsonl.abc123.tmp").write_text("half")
    (tmp_path / ".merged.xyz.tmp").mkdir()
    (tmp_path / ".merged.xyz.tmp" / "model.safetensors").write_text("half")
    (tmp_path / ".other.jsonl.q.tmp").write_text("not ours")
    atomic_write_lines(tmp_path / "pairs.jsonl", ["{}"])
    with atomic_dir(tmp_path / "merged") as d:
        (d / "config.json").write_text("{}")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".other.jsonl.q.tmp", "merged", "pairs.jsonl"]
