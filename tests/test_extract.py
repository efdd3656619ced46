"""Extraction on tiny hand-made logs and on the committed example data: every rule, every filter, the quarantine,
the signals report, determinism; plus rlops.io's atomic writes."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
import yaml
from jsonschema import Draft202012Validator

from rlops.errors import InvalidInput, RlopsError, StageFailed
from rlops.extract import engine
from rlops.extract import run as extract_run
from rlops.extract import signals_report as extract_report
from rlops.extract.params import ExtractParams
from rlops.extract.rules import chars_changed
from rlops.extract.validators import validator
from rlops.io import atomic_dir, atomic_write_json, atomic_write_lines, atomic_write_text

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = yaml.safe_load((ROOT / "pipelines/conf/config.yaml").read_text())["extract"]
SYSTEM = "You are the support assistant of Northwind Shop."
ORIGINAL = "Please contact support."
EDITED = "I'm sorry it arrived broken. Send me your order number and I'll ship a replacement within 2 days."
SETS = ("pairs", "unpaired", "sft", "rewards")
# distinct words: texts that differ only in digits are near duplicates, so tiny worlds name things with these
W = ["apple", "brick", "cedar", "delta", "ember", "fjord", "grape", "harbor", "ivory", "juniper", "kettle", "lemon",
     "maple", "nectar", "olive", "pepper", "quartz", "raven", "saffron", "tulip", "umber", "violet", "willow", "yarrow"]


# -- a tiny world ------------------------------------------------------------------------------


def interaction(iid: str, text: str = "My teapot arrived broken.", answer: str = ORIGINAL, version: str = "base",
                **extra: Any) -> dict:
    return {
        "schema": "rlops.interaction/v1",
        "interaction_id": iid,
        "timestamp": "2026-11-03T10:15:00Z",
        "agent": {"name": "support-agent", "version": version},
        "input_messages": [{"role": "user", "content": text}],
        "output_messages": [{"role": "assistant", "content": answer}],
        **extra,
    }


def event(eid: str, iid: str, kind: str, details: dict, ts: str = "2026-11-03T10:20:00Z", actor: str = "staff:alice") -> dict:
    return {"schema": "rlops.feedback/v1", "event_id": eid, "interaction_id": iid, "timestamp": ts,
            "actor": actor, "kind": kind, kind: details}


def edit(eid: str, iid: str, text: str = EDITED, **kw: Any) -> dict:
    return event(eid, iid, "edit", {"output_messages": [{"role": "assistant", "content": text}]}, **kw)


def rating(eid: str, iid: str, value: float, scale: tuple = (1, 5), **kw: Any) -> dict:
    return event(eid, iid, "rating", {"value": value, "scale": list(scale)}, **kw)


def pairwise(eid: str, chosen: str, rejected: str, shown: list | None = None, **kw: Any) -> dict:
    details = {"chosen_id": chosen, "rejected_id": rejected, "shown_order": shown or [rejected, chosen]}
    return event(eid, chosen, "pairwise", details, **kw)


def lines(records: list[dict | str]) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def params(**extract: Any) -> dict:
    window = extract.pop("window", None)
    parent = extract.pop("parent", "base")
    data = {"interactions": extract.pop("interactions", "logs/interactions.jsonl"),
            "feedback": extract.pop("feedback", "logs/feedback.jsonl"), "window": window}
    return {
        "data": data,
        "extract": {**DEFAULTS, "signals": ["edit", "pairwise", "rating"], "suites_dir": "evals", "threads": 1, **extract},
        "policy": {"name": "support-agent", "system_prompt": SYSTEM},
        "cycle": {"parent": parent},
    }


def world(tmp_path: Path, interactions: list, feedback: list, suite: tuple[str, ...] = ("What are your opening hours?",)) -> Path:
    (tmp_path / "logs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "logs/interactions.jsonl").write_text(lines(interactions))
    (tmp_path / "logs/feedback.jsonl").write_text(lines(feedback))
    (tmp_path / "evals/heldout").mkdir(parents=True, exist_ok=True)
    (tmp_path / "evals/heldout/prompts.jsonl").write_text(lines([{"id": f"h-{i}", "prompt": p} for i, p in enumerate(suite)]))
    return tmp_path


def read(out: Path, name: str) -> list[dict]:
    path = out / name
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def extract(root: Path, **kw: Any) -> tuple[dict, dict[str, list[dict]], list[dict]]:
    """Run the stage; (signals.json, rows of each set, quarantine records), after checking the formats."""
    out = root / "out"
    report = extract_run.run(params(**kw), root, out)
    assert json.loads((out / "signals_detail.json").read_text()) == report
    assert json.loads((out / "signals.json").read_text()) == extract_report.key_counts(report)
    rows = {s: read(out, f"{s}.jsonl") for s in SETS}
    for row in rows["pairs"]:
        assert list(row) == ["prompt", "chosen", "rejected", "meta"]  # TRL's field order
        assert not list(validator("preference").iter_errors(row)) or row["meta"]["rule"] == "judge"
    for row in rows["unpaired"]:
        assert list(row) == ["prompt", "completion", "label", "meta"] and isinstance(row["label"], bool)
    for row in rows["sft"]:
        assert list(row) == ["messages", "meta"] and row["messages"][-1]["role"] == "assistant"
    for row in rows["rewards"]:
        assert list(row) == ["prompt", "completion", "reward", "meta"] and isinstance(row["reward"], float)
    assert_accounted(report, rows)
    return report, rows, read(out, "quarantine.jsonl")


def assert_accounted(report: dict, rows: dict[str, list[dict]] | None = None) -> None:
    """Every record read is used, dropped or quarantined, exactly once, and the counts add up."""
    inv = report["invariant"]
    assert inv["holds"] is True
    for stream in ("interactions", "feedback"):
        s = inv[stream]
        assert s["holds"] is True and s["read"] == s["used"] + s["dropped"] + s["quarantined"]
        assert report["records_read"][stream] == s["read"] and report["quarantined"][stream] == s["quarantined"]
    assert inv["feedback"]["used"] == sum(report["used"].values())
    assert inv["feedback"]["dropped"] == sum(report["dropped"].values())
    assert inv["interactions"]["dropped"] == sum(report["dropped_interactions"].values())
    assert report["pairs"]["total"] == sum(v for k, v in report["pairs"].items() if k != "total")
    if rows is not None:
        assert {s: len(rows[s]) for s in SETS} == report["rows"]
        used = {e for s in SETS for r in rows[s] for e in r["meta"]["event_ids"]}
        assert len(used) == inv["feedback"]["used"]


def eids(rows: list[dict]) -> list[list[str]]:
    return [r["meta"]["event_ids"] for r in rows]


# -- rules -------------------------------------------------------------------------------------


def test_edit_prefers_the_edited_answer_and_gives_an_sft_row(tmp_path):
    root = world(tmp_path, [interaction("i-1")], [edit("f-1", "i-1")])
    report, rows, quarantine = extract(root)
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "My teapot arrived broken."}]
    meta = {"rule": "edit", "interaction_ids": ["i-1"], "event_ids": ["f-1"], "weight": 1.0}
    assert rows["pairs"] == [{"prompt": prompt, "chosen": [{"role": "assistant", "content": EDITED}],
                              "rejected": [{"role": "assistant", "content": ORIGINAL}], "meta": meta}]
    assert rows["sft"] == [{"messages": [*prompt, {"role": "assistant", "content": EDITED}], "meta": meta}]
    assert report["pairs"]["edit"] == 1 and report["pairs"]["total"] == 1 and report["sft"]["edit"] == 1
    assert quarantine == []
    _, rows, _ = extract(root, edit_sft=False)
    assert rows["sft"] == [] and len(rows["pairs"]) == 1


def test_prompt_uses_the_interactions_own_system_instructions(tmp_path):
    history = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
               {"role": "user", "content": "My teapot arrived broken."}]
    record = interaction("i-1", system_instructions="Holiday rules apply.", trace_id="0af7651916cd43dd8448eb211c80319c")
    record["input_messages"] = history
    _, rows, _ = extract(world(tmp_path, [record], [edit("f-1", "i-1")]))
    assert rows["pairs"][0]["prompt"] == [{"role": "system", "content": "Holiday rules apply."}, *history]


def test_answers_with_tool_calls_are_kept_whole(tmp_path):
    call = {"id": "call-1", "type": "function", "function": {"name": "lookup_order", "arguments": "{\"order\": \"NW-1\"}"}}
    outputs = [{"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call-1", "content": "{\"status\": \"shipped\"}"},
               {"role": "assistant", "content": "It shipped yesterday."}]
    root = world(tmp_path, [interaction("i-1", output_messages=outputs)], [edit("f-1", "i-1")])
    _, rows, quarantine = extract(root)
    assert rows["pairs"][0]["rejected"] == outputs and quarantine == []


def test_the_train_stage_reads_the_same_pairs_from_jsonl_and_parquet(tmp_path):
    from rlops.train.dpo import read_pairs

    call = {"id": "call-1", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}
    outputs = [{"role": "assistant", "content": None, "tool_calls": [call]},
               {"role": "tool", "tool_call_id": "call-1", "content": "shipped"},
               {"role": "assistant", "content": "It shipped yesterday."}]
    root = world(tmp_path, [interaction("i-1", output_messages=outputs), interaction("i-2", text="Refund?")],
                 [edit("f-1", "i-1"), edit("f-2", "i-2")])
    extract_run.run(params(), root, root / "jsonl")
    extract_run.run(params(format="parquet"), root, root / "parquet")
    from_jsonl = read_pairs(root / "jsonl/pairs.jsonl")
    assert len(from_jsonl) == 2 and from_jsonl[0]["rejected"] == outputs
    assert read_pairs(root / "parquet/pairs.parquet") == from_jsonl


def test_trivial_edit_is_dropped(tmp_path):
    root = world(tmp_path, [interaction("i-1"), interaction("i-2")],
                 [edit("f-1", "i-1", "Please contact support!"), edit("f-2", "i-2", "Please, contact our support.")])
    report, rows, _ = extract(root)  # 1 and 6 characters changed, fewer than 8
    assert rows["pairs"] == [] and report["dropped"]["trivial_edit"] == 2
    report, rows, _ = extract(root, edit_min_chars=5)
    assert report["dropped"]["trivial_edit"] == 1 and eids(rows["pairs"]) == [["f-2"]]


def test_pairwise_chooses_the_chosen_interaction_and_reports_position_bias(tmp_path):
    records = [interaction(f"i-{n}", text=f"Question about the {W[n // 2]}", answer=EDITED if n % 2 == 0 else f"Meh {W[n]}.")
               for n in range(6)]
    feedback = [pairwise("f-0", "i-0", "i-1", shown=["i-0", "i-1"]), pairwise("f-2", "i-2", "i-3", shown=["i-3", "i-2"]),
                pairwise("f-4", "i-4", "i-5", shown=["i-4", "i-5"])]
    report, rows, _ = extract(world(tmp_path, records, feedback))
    assert [r["chosen"][0]["content"] for r in rows["pairs"]] == [EDITED] * 3
    assert rows["pairs"][0]["meta"] == {"rule": "pairwise", "interaction_ids": ["i-0", "i-1"], "event_ids": ["f-0"],
                                        "weight": 1.0}
    stats = report["pair_stats"]
    assert stats["shown_order_pairs"] == 3 and stats["chosen_shown_first_fraction"] == round(2 / 3, 4)
    assert stats["chosen_longer_fraction"] == 1.0 and stats["chosen_chars_mean"] > stats["rejected_chars_mean"]


def test_pairwise_over_different_inputs_is_quarantined(tmp_path):
    root = world(tmp_path, [interaction("i-1"), interaction("i-2", text="Where is my order?")], [pairwise("f-1", "i-1", "i-2")])
    report, rows, quarantine = extract(root)
    assert rows["pairs"] == [] and report["quarantined"]["feedback"] == 1
    assert "different inputs" in quarantine[0]["reason"]


def test_a_ranking_gives_all_its_pairs_best_first(tmp_path):
    records = [interaction(f"i-{n}", answer=f"Answer {W[n]}, a different one.") for n in range(3)]
    ranking = event("f-1", "i-2", "ranking", {"ranked_ids": ["i-2", "i-0", "i-1"], "shown_order": ["i-0", "i-1", "i-2"]})
    report, rows, _ = extract(world(tmp_path, records, [ranking]), signals=["ranking"])
    got = [tuple(r["meta"]["interaction_ids"]) for r in rows["pairs"]]
    assert sorted(got) == [("i-0", "i-1"), ("i-2", "i-0"), ("i-2", "i-1")]
    assert report["pairs"]["ranking"] == 3 and report["pair_stats"]["chosen_shown_first_fraction"] == round(1 / 3, 4)


def test_rating_pairs_need_the_minimum_gap_and_labels_the_thresholds(tmp_path):
    answers = {"i-1": ("A thorough answer with a replacement.", 5), "i-2": ("Hmm.", 3), "i-3": ("An okay answer.", 4)}
    records = [interaction(iid, text="Where is my parcel?", answer=a) for iid, (a, _) in answers.items()]
    records += [interaction("i-4", text="  where is my   PARCEL? "), interaction("i-5", text="Unrelated question")]
    feedback = [rating(f"f-{iid}", iid, v) for iid, (_, v) in answers.items()]
    feedback += [rating("f-i-4", "i-4", 1), rating("f-i-5", "i-5", 3)]
    report, rows, _ = extract(world(tmp_path, records, feedback))
    # one pair per couple at least 2 apart; i-4's prompt differs only in case and spaces: same group
    got = sorted(tuple(p["meta"]["interaction_ids"]) for p in rows["pairs"])
    assert got == [("i-1", "i-2"), ("i-1", "i-4"), ("i-2", "i-4"), ("i-3", "i-4")]
    # KTO labels: 5 and 4 are good (>= 0.75 of 1-5), 1 is bad (<= 0.25); the 3s are in the middle
    labels = sorted((r["meta"]["interaction_ids"][0], r["label"]) for r in rows["unpaired"])
    assert labels == [("i-1", True), ("i-3", True), ("i-4", False)]
    assert report["dropped"]["rating_unpaired"] == 1  # i-5: a middle rating, nothing else answered that prompt

    report, rows, _ = extract(tmp_path, rating_min_gap=3)
    assert sorted(tuple(p["meta"]["interaction_ids"]) for p in rows["pairs"]) == [("i-1", "i-4"), ("i-3", "i-4")]
    assert report["dropped"]["rating_tie_or_small_gap"] == 1  # i-2 (3): no label, within 2 of every other answer


def test_a_rerating_supersedes_the_earlier_rating(tmp_path):
    records = [interaction("i-1", answer="Good answer."), interaction("i-2", answer="Bad answer.")]
    feedback = [rating("f-1", "i-1", 2), rating("f-2", "i-2", 2), rating("f-3", "i-1", 5, ts="2026-11-04T09:00:00Z")]
    report, rows, _ = extract(world(tmp_path, records, feedback))
    assert eids(rows["pairs"]) == [["f-3", "f-2"]]
    assert report["dropped"]["rating_superseded"] == 1


def test_many_ratings_of_one_prompt_are_capped(tmp_path):
    records = [interaction(f"i-{n}", answer=f"Answer {W[n]}.") for n in range(12)]
    feedback = [rating(f"f-{n}", f"i-{n}", 5 if n % 2 else 1) for n in range(12)]
    report, rows, _ = extract(world(tmp_path, records, feedback), max_pairs_per_prompt=4)
    assert report["pairs"]["rating"] == 4 and report["rows_dropped"]["pair_cap"] > 0
    again = extract_run.run(params(max_pairs_per_prompt=4), tmp_path, tmp_path / "again")
    assert (tmp_path / "again/pairs.jsonl").read_bytes() == (tmp_path / "out/pairs.jsonl").read_bytes()
    assert again["pairs"]["rating"] == 4


def test_recorded_judge_scores_are_used_like_ratings(tmp_path):
    records = [interaction("i-1", answer="A great answer."), interaction("i-2", answer="Weak."), interaction("i-3", answer="Ok.")]
    judge = lambda eid, iid, score: event(eid, iid, "judge", {"model": "gpt-x", "rubric": "quality", "score": score,  # noqa: E731
                                                               "scale": [0, 10]}, actor="judge:gpt-x")
    feedback = [judge("f-1", "i-1", 9), judge("f-2", "i-2", 2), judge("f-3", "i-3", 8)]
    report, rows, _ = extract(world(tmp_path, records, feedback), signals=["judge"])
    assert sorted(eids(rows["pairs"])) == [["f-1", "f-2"], ["f-3", "f-2"]]  # 0.9 and 0.8 are within judge.min_gap
    assert sorted((r["meta"]["interaction_ids"][0], r["label"]) for r in rows["unpaired"]) == [
        ("i-1", True), ("i-2", False), ("i-3", True)]
    assert {r["meta"]["rule"] for r in rows["pairs"] + rows["unpaired"]} == {"judge"}


def test_implicit_signals_are_weak_and_only_used_when_enabled(tmp_path):
    records = [interaction("i-1", answer="First try."), interaction("i-2", answer="Second, better try.", regenerates="i-1"),
               interaction("i-3", answer="Copied answer."), interaction("i-4", answer="Abandoned."),
               interaction("i-5", answer="Regenerated, but never replaced.")]
    act = lambda eid, iid, action: event(eid, iid, "implicit", {"action": action}, actor="customer:u-1")  # noqa: E731
    feedback = [act("f-1", "i-1", "regenerate"), act("f-3", "i-3", "copy"), act("f-4", "i-4", "abandon"),
                act("f-5", "i-5", "regenerate")]
    root = world(tmp_path, records, feedback)
    report, rows, _ = extract(root)
    assert report["dropped"]["signal_disabled"] == 4 and rows["pairs"] == []
    w = {"regenerate": 0.5, "copy": 0.3, "abandon": 0.0}
    report, rows, _ = extract(root, signals=["implicit"], implicit_weights=w)
    assert [(r["meta"]["interaction_ids"], r["meta"]["weight"]) for r in rows["pairs"]] == [(["i-2", "i-1"], 0.5)]
    assert [(r["meta"]["interaction_ids"], r["label"], r["meta"]["weight"]) for r in rows["unpaired"]] == [(["i-3"], True, 0.3)]
    assert report["dropped"]["implicit_action_off"] == 1 and report["dropped"]["no_regeneration"] == 1


def test_outcomes_give_rewards_and_success_over_failure_pairs(tmp_path):
    records = [interaction(f"i-{n}", text=f"Refund my {W[n]} order", answer=f"Answer {W[n]}.") for n in range(4)]
    records += [interaction("i-8", text="Same prompt", answer="Worked."), interaction("i-9", text="Same prompt", answer="Failed.")]
    out = lambda eid, iid, ok, **d: event(eid, iid, "outcome", {"success": ok, **d}, actor="system:billing")  # noqa: E731
    feedback = [out("f-0", "i-0", True, task="refund"), out("f-1", "i-1", False, task="refund", reward=-1.5),
                out("f-2", "i-2", False), out("f-8", "i-8", True), out("f-9", "i-9", False)]
    report, rows, _ = extract(world(tmp_path, records, feedback), signals=["outcome"])
    rewards = {r["meta"]["interaction_ids"][0]: r["reward"] for r in rows["rewards"]}
    assert rewards == {"i-0": 1.0, "i-1": -1.5, "i-2": 0.0, "i-8": 1.0, "i-9": 0.0}
    pairs = sorted(tuple(r["meta"]["interaction_ids"]) for r in rows["pairs"])
    assert pairs == [("i-0", "i-1"), ("i-8", "i-9")]  # same task cluster; else the same prompt; i-2 has no partner


def test_the_live_judge_pairs_answers_nobody_compared_only_when_both_orders_agree(tmp_path):
    good = "I'm so sorry the teapot arrived broken. Please send your order number and I'll ship a replacement today."
    records = [interaction("i-1", text="My teapot arrived broken, order NW-55120.", answer="Contact support."),
               interaction("i-2", text="My teapot arrived broken, order NW-55120.", answer=good, regenerates="i-1"),
               interaction("i-3", text="My teapot arrived broken, order NW-55120.", answer="Contact support!")]
    feedback = [rating("f-1", "i-1", 3), rating("f-2", "i-2", 3), rating("f-3", "i-3", 3)]
    root = world(tmp_path, records, feedback)
    judge = {"type": "rubric", "rubric": "support-quality", "max_pairs": 5, "min_gap": 0.25}
    report, rows, _ = extract(root, signals=["rating", "judge"], judge=judge)
    judged = [r for r in rows["pairs"] if r["meta"]["rule"] == "judge"]
    assert {tuple(r["meta"]["interaction_ids"]) for r in judged} == {("i-2", "i-1"), ("i-2", "i-3")}
    assert all(r["meta"]["event_ids"] == [] and r["meta"]["judge"] == "rubric:support-quality" for r in judged)
    assert report["judge"]["judged"] == 3 and report["judge"]["agreed"] == 2  # i-1 vs i-3 is a tie
    report, rows, _ = extract(root, signals=["rating", "judge"], judge={**judge, "max_pairs": 1})
    assert report["judge"]["judged"] == 1  # the regeneration goes first
    assert [r["meta"]["interaction_ids"] for r in rows["pairs"]] == [["i-2", "i-1"]]


def test_comments_and_disabled_signals_are_counted_not_used(tmp_path):
    records = [interaction("i-1"), interaction("i-2", answer="Other.")]
    feedback = [edit("f-1", "i-1"), event("f-2", "i-1", "comment", {"text": "resolved by phone"}),
                rating("f-3", "i-1", 5), rating("f-4", "i-2", 1)]
    report, rows, _ = extract(world(tmp_path, records, feedback), signals=["edit"])
    assert [p["meta"]["rule"] for p in rows["pairs"]] == ["edit"]
    assert report["dropped"]["no_signal"] == 1 and report["dropped"]["signal_disabled"] == 2


def test_interactions_nobody_gave_feedback_on_are_counted_as_such(tmp_path):
    records = [interaction("i-1"), interaction("i-2", text="Where is my parcel?"), interaction("i-3", text="Hello?"),
               interaction("i-4", text="Hello?", answer="Hi! How can I help?", regenerates="i-3"),
               interaction("i-5", text="Refund please."), interaction("i-6", text="Thanks!")]
    feedback = [edit("f-1", "i-1"), event("f-2", "i-2", "comment", {"text": "called back"}),  # a comment: no signal
                event("f-3", "i-3", "implicit", {"action": "regenerate"}, actor="customer:u-1")]
    report, rows, _ = extract(world(tmp_path, records, feedback), signals=["edit", "implicit"])
    assert report["dropped_interactions"]["no_feedback"] == 2  # i-5 and i-6
    assert report["dropped_interactions"]["feedback_unused"] == 1  # i-2


# -- filters -----------------------------------------------------------------------------------


def test_window_is_inclusive_of_whole_days_in_utc(tmp_path):
    stamps = {
        "f-1": "2026-10-31T23:59:59Z",  # out
        "f-2": "2026-11-01T00:00:00Z",  # in
        "f-3": "2026-11-24T23:59:59Z",  # in: `to` covers its whole day
        "f-4": "2026-11-25T00:00:00Z",  # out
        "f-5": "2026-11-25T00:30:00+01:00",  # in: 2026-11-24T23:30Z
    }
    records = [interaction(f"i-{n}", answer=f"Answer {W[n]}.") for n in range(1, 6)]
    feedback = [edit(eid, f"i-{eid[2:]}", f"{EDITED} ({W[int(eid[2:])]})", ts=ts) for eid, ts in stamps.items()]
    report, rows, _ = extract(world(tmp_path, records, feedback), window={"from": "2026-11-01", "to": "2026-11-24"})
    assert sorted(p["meta"]["event_ids"][0] for p in rows["pairs"]) == ["f-2", "f-3", "f-5"]
    assert report["dropped"]["outside_window"] == 2
    report, _, _ = extract(tmp_path)  # no window: everything counts
    assert report["pairs"]["edit"] == 5


def test_agent_versions_filter_and_coverage(tmp_path):
    records = [interaction("i-1", version="base"), interaction("i-2", version="v3", text="Where is it?"),
               interaction("i-3", version="v2", text="Refund please.")]
    feedback = [edit(f"f-{n}", f"i-{n}") for n in (1, 2, 3)]
    root = world(tmp_path, records, feedback)
    report, rows, _ = extract(root, agent_versions=["base", "v3"])
    assert sorted(eids(rows["pairs"])) == [["f-1"], ["f-2"]] and report["dropped"]["agent_version"] == 1
    assert report["versions"]["v2"] == {"interactions": 1, "feedback": 1, "feedback_used": 0, "included": False}
    assert report["dropped_interactions"]["agent_version"] == 1
    report, rows, _ = extract(root, agent_versions="deployed", parent="support-agent@v3")
    assert eids(rows["pairs"]) == [["f-2"]] and report["settings"]["agent_versions"] == "deployed (v3)"
    with pytest.raises(InvalidInput, match="cannot tell which agent version"):
        extract_run.run(params(agent_versions="deployed", parent="production"), root, root / "out")


def test_per_user_caps_are_deterministic(tmp_path):
    records = [interaction(f"i-{n}", text=f"Question about the {W[n]}", answer=f"Answer {W[n]}.",
                           user="u-heavy" if n < 8 else f"u-{n}") for n in range(10)]
    feedback = [edit(f"f-{n}", f"i-{n}", f"{EDITED} ({W[n]})", actor="staff:alice" if n < 5 else "staff:bob")
                for n in range(10)]
    root = world(tmp_path, records, feedback)
    report, rows, _ = extract(root, max_per_user=2)
    assert report["pairs"]["edit"] == 4 and report["dropped"]["user_cap"] == 6  # two each for alice and bob
    first = eids(rows["pairs"])
    report, rows, _ = extract(root, max_per_user=2, cap_by="user")
    assert report["pairs"]["edit"] == 4  # u-heavy 2, u-8 1, u-9 1
    assert sum(r["meta"]["interaction_ids"][0] in {f"i-{n}" for n in range(8)} for r in rows["pairs"]) == 2
    _, rows, _ = extract(root, max_per_user=2)
    assert eids(rows["pairs"]) == first


def test_exact_and_near_duplicates(tmp_path):
    records = [interaction("i-1", text="Order NW-11111 arrived broken.", answer="Contact support."),
               interaction("i-2", text="Order NW-22222 arrived broken.", answer="Contact support."),
               interaction("i-3", text="order nw-11111 arrived   broken.", answer="Contact support.")]
    feedback = [edit(f"f-{n}", f"i-{n}", "Sorry! Send the order number and I'll replace it.") for n in (1, 2, 3)]
    root = world(tmp_path, records, feedback)
    report, rows, _ = extract(root, dedup="off")
    assert report["pairs"]["edit"] == 3
    report, rows, _ = extract(root, dedup="exact")  # i-3 only differs from i-1 in case and spaces
    assert eids(rows["pairs"]) == [["f-1"], ["f-2"]] and report["dropped"]["duplicate"] == 1
    report, rows, _ = extract(root)  # near: the order numbers differ only in digits
    assert eids(rows["pairs"]) == [["f-1"]] and report["dropped"]["near_duplicate"] == 1


def test_pairs_on_eval_prompts_are_dropped_as_contaminated(tmp_path):
    records = [interaction("i-1", text="What are your OPENING hours??"), interaction("i-2")]
    report, rows, _ = extract(world(tmp_path, records, [edit("f-1", "i-1"), edit("f-2", "i-2")]))
    assert eids(rows["pairs"]) == [["f-2"]]
    assert report["dropped"]["contaminated"] == 1 and report["decontamination"]["heldout"]["rows_removed"] == 2  # pair+sft
    report, _, _ = extract(tmp_path, decontaminate=False)
    assert report["pairs"]["edit"] == 2 and report["dropped"]["contaminated"] == 0


def test_a_shared_13_word_window_contaminates_whatever_surrounds_it(tmp_path):
    item = ("The glass jug of my coffee maker arrived shattered and the box was soaked, what can you do for me "
            "about order NW-55120 today")
    near_copy = ("Hello there. the Glass jug of my coffee-maker arrived SHATTERED and the box was soaked; what can "
                 "you do, thanks")  # 13 words in a row are the item's, up to case and punctuation
    twelve = "The glass jug of my coffee maker arrived shattered and the box, anyway"  # only 12
    records = [interaction("i-1", text=near_copy), interaction("i-2", text=twelve), interaction("i-3")]
    feedback = [edit(f"f-{n}", f"i-{n}") for n in (1, 2, 3)]
    report, rows, _ = extract(world(tmp_path, records, feedback, suite=(item, "Unrelated short question?")))
    assert sorted(eids(rows["pairs"])) == [["f-2"], ["f-3"]]
    assert report["decontamination"]["heldout"] == {"items_found": 1, "prompts": 1, "rows_removed": 2}


def test_missing_suites_dir_fails_clearly(tmp_path):
    root = world(tmp_path, [interaction("i-1")], [edit("f-1", "i-1")])
    with pytest.raises(StageFailed, match="nowhere: no such folder"):
        extract_run.run(params(suites_dir="nowhere"), root, root / "out")


def test_duplicate_pairs_are_kept_once(tmp_path):
    records = [interaction("i-1", answer=EDITED), interaction("i-2")]
    feedback = [pairwise("f-1", "i-1", "i-2"), pairwise("f-2", "i-1", "i-2", ts="2026-11-05T10:00:00Z")]
    report, rows, _ = extract(world(tmp_path, records, feedback))
    assert eids(rows["pairs"]) == [["f-1"]] and report["dropped"]["duplicate"] == 1


# -- PII ---------------------------------------------------------------------------------------

PII_USER = "I'm jane.doe@example.com, call +44 20 7946 0958; card 4111 1111 1111 1111 (not 4111 1111 1111 1112) from 10.0.0.7"


def test_pii_is_redacted_before_anything_is_written(tmp_path):
    records = [interaction("i-1", text=PII_USER), "{\"broken\": \"bob@example.org, 5500 0000 0000 0004"]
    root = world(tmp_path, records, [edit("f-1", "i-1", EDITED + " Mail me at help@northwind.example.")])
    report, rows, quarantine = extract(root)
    written = "".join((root / "out" / f).read_text() for f in ("pairs.jsonl", "sft.jsonl", "quarantine.jsonl"))
    for secret in ("jane.doe@example.com", "7946 0958", "4111 1111 1111 1111", "10.0.0.7", "help@northwind",
                   "bob@example.org", "5500 0000 0000 0004"):
        assert secret not in written, secret
    user = rows["pairs"][0]["prompt"][1]["content"]
    assert user == "I'm [EMAIL], call [PHONE]; card [CARD] (not [PHONE] 1112) from [IP]"
    assert "[EMAIL]" in rows["pairs"][0]["chosen"][0]["content"] and "[EMAIL]" in quarantine[0]["raw"]
    pii = report["pii"]
    assert (pii["email"], pii["card"], pii["ip"], pii["quarantine"]) == (3, 2, 1, 2) and pii["phone"] >= 2
    report, rows, _ = extract(root, pii="drop")
    assert rows["pairs"] == [] and report["dropped"]["pii"] == 1 and report["rows_dropped"]["pii"] == 2
    _, rows, _ = extract(root, pii="off")
    assert rows["pairs"][0]["prompt"][1]["content"] == PII_USER


def test_a_quarantined_line_is_redacted_as_decoded_text_and_stays_json(tmp_path):
    """The regex ran on the encoded line: a card after `\\u0001` was matched from the escape's `u`."""
    line = json.dumps({"broken": "4111 1111 1111 1111\x014" + "4111-1111-1111-1112", "mail": "a\nbob@example.org"})
    root = world(tmp_path, [interaction("i-1"), line], [edit("f-1", "i-1")])
    report, _, quarantine = extract(root)
    (q,) = quarantine
    assert json.loads(q["raw"]) == {"broken": "[CARD]\x01[PHONE]-1112", "mail": "a\n[EMAIL]"}
    assert (report["pii"]["card"], report["pii"]["email"], report["pii"]["quarantine"]) == (1, 1, 3)


def test_a_deeply_nested_line_is_quarantined_and_the_rest_extracted(tmp_path):
    """200,000 nested brackets made every importer exit 1 (RecursionError); the extract stage must not."""
    deep = "[" * 200_000 + "]" * 200_000
    root = world(tmp_path, [interaction("i-1"), deep], [edit("f-1", "i-1"), deep])
    report, rows, quarantine = extract(root)
    assert eids(rows["pairs"]) == [["f-1"]]
    assert [(q["file"], q["line"]) for q in quarantine] == [("logs/interactions.jsonl", 2), ("logs/feedback.jsonl", 2)]
    assert all(q["reason"].startswith("nested too deeply to read") for q in quarantine)


def test_the_presidio_tier_says_how_to_install_it(tmp_path):
    import importlib.util

    root = world(tmp_path, [interaction("i-1")], [edit("f-1", "i-1")])
    if importlib.util.find_spec("presidio_analyzer") is None:
        with pytest.raises(RlopsError) as raised:
            extract_run.run(params(pii_tier="presidio"), root, root / "out")
        assert "pip install presidio-analyzer" in raised.value.hint
    else:  # installed: the deeper tier runs on top of the regex one
        report = extract_run.run(params(pii_tier="presidio"), root, root / "out")
        assert report["rows"]["pairs"] == 1


# -- inputs: several files, folders, globs, Parquet, awkward lines ----------------------------------------


def test_a_folder_of_partitioned_logs_and_parquet_outputs(tmp_path):
    root = world(tmp_path, [], [])
    for day, ids in (("2026-11-03", (1, 2)), ("2026-11-04", (3,))):
        folder = root / f"logs/interactions/day={day}"
        folder.mkdir(parents=True)
        (folder / "part-0.jsonl").write_text(lines([interaction(f"i-{n}", text=f"Question {W[n]}") for n in ids] + ["nope"]))
    (root / "logs/feedback/2026").mkdir(parents=True)
    (root / "logs/feedback/2026/a.jsonl").write_text(lines([edit("f-1", "i-1"), edit("f-3", "i-3")]))
    (root / "logs/feedback/2026/b.jsonl").write_text(lines(["", edit("f-2", "i-2"), "{\"event_id\": 1"]))
    report, rows, quarantine = extract(root, interactions="logs/interactions/**/*.jsonl", feedback="logs/feedback")
    assert sorted(eids(rows["pairs"])) == [["f-1"], ["f-2"], ["f-3"]]
    assert [(q["file"], q["line"]) for q in quarantine] == [
        ("logs/interactions/day=2026-11-03/part-0.jsonl", 3), ("logs/interactions/day=2026-11-04/part-0.jsonl", 2),
        ("logs/feedback/2026/b.jsonl", 3)]
    assert report["sources"]["logs/feedback/2026/b.jsonl"] == {"read": 2, "quarantined": 1}

    import duckdb

    con = duckdb.connect()
    for name in ("interactions", "feedback"):
        con.execute(f"COPY (SELECT * FROM read_json('{root}/logs/{name}/**/*.jsonl', format='newline_delimited', "
                    f"ignore_errors=true) WHERE {'interaction_id' if name == 'interactions' else 'event_id'} IS NOT NULL) "
                    f"TO '{root}/logs/{name}.parquet' (FORMAT parquet)")
    out = root / "pq"
    report = extract_run.run(params(interactions="logs/interactions.parquet", feedback="logs/feedback.parquet",
                                    format="parquet"), root, out)
    assert report["pairs"]["edit"] == 3 and report["invariant"]["holds"]
    table = con.execute(f"SELECT prompt[2].content, chosen[1].content, meta.rule FROM '{out}/pairs.parquet'").fetchall()
    assert table[0] == ("Question brick", EDITED, "edit") and len(table) == 3
    assert sorted(p.name for p in out.iterdir()) == sorted(extract_run.outputs("parquet"))


def test_line_numbers_survive_blank_and_odd_lines(tmp_path):
    rec = {n: json.dumps(interaction(f"i-{n}", text=f"About the {W[n]}")).encode() for n in (1, 2, 3)}
    raw = [rec[1], b"", b"  \t", rec[2] + b"\r", b"\xff\xfe not utf-8", b"{\"a\": 1}{\"b\": 2}", b"[1, 2]", rec[3]]
    root = world(tmp_path, [], [edit(f"f-{n}", f"i-{n}") for n in (1, 2, 3)])
    (root / "logs/interactions.jsonl").write_bytes(b"\n".join(raw) + b"\n")
    report, rows, quarantine = extract(root)
    assert [(q["line"], q["reason"].split(":")[0]) for q in quarantine] == [(5, "not JSON"), (6, "not JSON"), (7, "not a JSON object")]
    assert report["pairs"]["edit"] == 3 and report["records_read"]["interactions"] == 6


def test_line_numbers_hold_across_row_groups_files_and_threads(tmp_path, monkeypatch):
    """Rows are numbered by their position in DuckDB's table (no window over the scan), and referenced
    interactions are found by a Bloom filter: 250,000 + 20,000 lines (a row group holds 122,880), 2 threads, and
    the reader's buffers (sized from the longest line allowed) small enough that both threads read each file."""
    monkeypatch.setattr(engine, "MAX_LINE_BYTES", 64 * 1024)
    line = ('{"schema": "rlops.interaction/v1", "interaction_id": "i-%d", "timestamp": "2026-11-03T10:15:00Z", '
            '"agent": {"name": "support-agent", "version": "base"}, "input_messages": [{"role": "%s", '
            '"content": "Question %d"}], "output_messages": [{"role": "assistant", "content": "Answer %d."}]}')
    root = world(tmp_path, [], [])
    (root / "logs/interactions").mkdir()
    expected, feedback, good, start = [], [], set(), 0
    for part, n in enumerate((250_000, 20_000)):
        rows, name = [], f"logs/interactions/part-{part}.jsonl"
        for i in range(start, start + n):
            if i % 9973 == 17:
                rows.append("{not json")
                expected.append((name, i - start + 1, "not JSON"))
            elif i % 4001 == 5:
                rows.append(line.replace("2026-11-03T10:15:00Z", "yesterday") % (i, "user", i, i))
                expected.append((name, i - start + 1, "timestamp"))
            elif i % 50 == 0:  # a role the schema does not know: quarantined only when feedback refers to it
                rows.append(line % (i, "customer", i, i))
                if i % 1000 == 0:
                    expected.append((name, i - start + 1, "input_messages[0].role"))
            else:
                rows.append(line % (i, "user", i, i))
                good.update([f"i-{i}"] if i % 1000 == 1 else [])
            if i % 1000 in (0, 1):
                feedback.append(edit(f"f-{i}", f"i-{i}", f"A much better answer, number {i}, written by staff."))
        (root / name).write_text("\n".join(rows) + "\n")
        start += n
    (root / "logs/feedback.jsonl").write_text(lines(feedback))
    report, rows, quarantine = extract(root, interactions="logs/interactions", threads=2, dedup="off", decontaminate=False)
    assert [(q["file"], q["line"], q["reason"].split(":")[0]) for q in quarantine if q["file"] != "logs/feedback.jsonl"] == expected
    # every edit on a good interaction became a pair about that very interaction
    assert {r["meta"]["interaction_ids"][0] for r in rows["pairs"]} == good
    assert all(r["rejected"][0]["content"] == f"Answer {r['meta']['interaction_ids'][0][2:]}." for r in rows["pairs"])


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
    "not an object": ("[1, 2, 3]", "not a JSON object"),
    "chosen is not interaction_id": ({**pairwise("f-9", "i-1", "i-2"), "interaction_id": "i-2"}, "pairwise.chosen_id: i-1 differs"),
    "ranking without its id": (event("f-9", "i-1", "ranking", {"ranked_ids": ["i-2", "i-bad"]}), "does not contain interaction_id i-1"),
    "unknown action": (event("f-9", "i-1", "implicit", {"action": "smile"}), "implicit.action: must be one of"),
}


@pytest.mark.parametrize("case", sorted(BAD_FEEDBACK))
def test_malformed_feedback_is_quarantined_and_the_rest_used(tmp_path, case):
    bad, reason = BAD_FEEDBACK[case]
    records = [interaction("i-1"), interaction("i-2"),
               {**interaction("i-bad"), "input_messages": [{"role": "customer", "content": "hi"}]}]
    root = world(tmp_path, records, [edit("f-1", "i-1"), bad, edit("f-2", "i-2", "A different, much better answer.")])
    report, rows, quarantine = extract(root)
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
        {**interaction("i-6"), "output_messages": []},
    ]
    # message bodies are checked for the interactions feedback refers to (the others cannot become training data)
    feedback = [edit(f"f-{n}", f"i-{n}") for n in range(1, 7)]
    report, rows, quarantine = extract(world(tmp_path, records, feedback))
    reasons = {q["line"]: q["reason"] for q in quarantine if q["file"] == "logs/interactions.jsonl"}
    assert reasons[2].startswith("not JSON")
    assert reasons[3] == "input_messages[0].role: 'customer' is not one of ['system', 'user', 'assistant', 'tool']"
    assert reasons[4] == "output_messages[0].content: missing"
    assert reasons[5] == "timestamp: missing; agent: missing"
    assert reasons[6] == "interaction_id: i-1 repeats the record on line 1"
    assert "not an RFC 3339 date-time" in reasons[8]
    assert reasons[9] == "output_messages: must hold at least one message"
    assert report["records_read"]["interactions"] == 8 and report["quarantined"]["interactions"] == 7
    assert report["pairs"]["edit"] == 1 and report["quarantined"]["feedback"] == 5


def test_missing_log_file_fails_clearly(tmp_path):
    root = world(tmp_path, [interaction("i-1")], [])
    (root / "logs/feedback.jsonl").unlink()
    with pytest.raises(StageFailed, match="logs/feedback.jsonl: no such file"):
        extract_run.run(params(), root, root / "out")


# -- params ------------------------------------------------------------------------------------


def test_params_are_checked_all_at_once():
    bad = params(rating_min_gap=-1, edit_min_chars="8", signals=["edit", "thumbs"], decontaminate="yes", typo=1,
                 window={"from": "2026-11-30", "to": "2026-11-01"}, rating_good_min=0.2, rating_bad_max=0.5, pii="hide",
                 implicit_weights={"regenerate": 2, "copy": 0.5, "abandon": 0}, judge={"max_pairs": -1, "min_gap": 0.1},
                 memory_limit="lots", agent_versions=5)
    bad["data"]["feedback"] = "../elsewhere.jsonl"
    with pytest.raises(InvalidInput) as err:
        ExtractParams.from_mapping(bad)
    text = str(err.value)
    for field in ("extract.rating_min_gap", "extract.edit_min_chars", "extract.signals[1]", "extract.decontaminate",
                  "extract.typo", "data.window", "data.feedback", "extract.rating_bad_max", "extract.pii",
                  "extract.implicit_weights.regenerate", "extract.judge.max_pairs", "extract.judge.type",
                  "extract.memory_limit", "extract.agent_versions"):
        assert f"params.yaml: {field}:" in text, field
    assert err.value.exit_code == 2


def test_params_accept_yaml_dates_and_missing_window():
    import datetime as dt

    p = params(window={"from": dt.date(2026, 11, 1), "to": "2026-11-24"})
    settings = ExtractParams.from_mapping(p)
    assert settings.window is not None and settings.window.end == dt.date(2026, 11, 24)
    assert settings.judge.config is None and settings.agent_versions is None
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
    records = [interaction(f"i-{n}", text=f"Question about the {W[n % 4]}", answer=f"Answer {W[n]}") for n in range(24)]
    feedback: list = [edit(f"f-e{n}", f"i-{n}", f"A much better answer about the {W[n]}") for n in range(0, 24, 3)]
    feedback += [rating(f"f-r{n}", f"i-{n}", 1 + n % 5) for n in range(1, 24, 2)]
    feedback += [pairwise(f"f-p{n}", f"i-{n}", f"i-{n + 4}") for n in range(2, 18, 6)]
    feedback += ["garbage", event("f-c", "i-0", "comment", {"text": "ok"})]
    random.Random(seed).shuffle(records)
    random.Random(seed).shuffle(feedback)
    return world(tmp_path, records, feedback)


def test_two_runs_write_byte_identical_files(tmp_path):
    root = mixed_world(tmp_path)
    extract_run.run(params(), root, root / "a")
    extract_run.run(params(threads=2), root, root / "b")
    for name in extract_run.OUTPUTS:
        assert (root / "a" / name).read_bytes() == (root / "b" / name).read_bytes(), name
    # the order of the log lines does not change the training rows either
    other = mixed_world(tmp_path / "shuffled", seed=1)
    extract_run.run(params(), other, other / "c")
    for name in ("pairs.jsonl", "unpaired.jsonl", "sft.jsonl"):
        assert (other / "c" / name).read_bytes() == (root / "a" / name).read_bytes(), name
    report = json.loads((root / "a/signals_detail.json").read_text())
    assert_accounted(report)
    assert report["pairs"]["total"] > 5


def test_a_failure_mid_write_leaves_no_complete_looking_output(tmp_path, monkeypatch):
    root = mixed_world(tmp_path)
    out = root / "out"
    extract_run.run(params(), root, out)
    real = engine._copy

    def copy_then_crash(con, statement, path):
        if path.name == "unpaired.jsonl":
            raise RuntimeError("killed")
        real(con, statement, path)

    monkeypatch.setattr(engine, "_copy", copy_then_crash)
    with pytest.raises(RuntimeError, match="killed"):
        extract_run.run(params(), root, out)
    assert not (out / "signals.json").exists()  # the marker of a complete extraction is gone
    assert [p.name for p in out.iterdir() if p.name.startswith(".")] == []  # no temporary files or scratch left


# -- the committed example data ----------------------------------------------------------------


def test_example_data_gives_rows_from_every_rule(tmp_path):
    policy = yaml.safe_load((ROOT / "specs/policy.yaml").read_text())
    p = params(interactions="data/example/interactions.jsonl", feedback="data/example/feedback.jsonl",
               window={"from": "2026-11-01", "to": "2026-11-24"}, suites_dir="specs/evals")
    p["policy"] = {"name": policy["policy"], "system_prompt": policy["system_prompt"]}
    report = extract_run.run(p, ROOT, tmp_path)
    assert_accounted(report)
    assert all(report["pairs"][rule] > 10 for rule in ("edit", "pairwise", "rating")), report["pairs"]
    assert report["unpaired"]["label_true"] > 10 and report["unpaired"]["label_false"] > 10
    for reason in ("outside_window", "no_signal", "trivial_edit", "rating_tie_or_small_gap", "contaminated", "duplicate"):
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
    md = (tmp_path / "signals.md").read_text()
    assert "| **total** |" in md and "position bias" in md and "Decontamination" in md
    assert report["decontamination"]["heldout"]["items_found"] == 3  # the three planted in make_example.py


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


# -- the cycle spec's extract section ----------------------------------------------------------


def test_validate_checks_extract_settings_and_accepts_log_folders_and_lists(tmp_path):
    import shutil

    from rlops.spec.validate import validate_paths

    for name in ("specs/policy.yaml", "pipelines/conf", "specs/evals", "data/example"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, tmp_path / name)
        else:
            shutil.copy(ROOT / name, tmp_path / name)
    spec = (ROOT / "specs/cycles/0001-damaged-orders.yaml").read_text()
    (tmp_path / "specs/cycles").mkdir()
    good = spec.replace("interactions: data/example/interactions.jsonl", "interactions: data/example") \
               .replace("feedback: data/example/feedback.jsonl", "feedback: [data/example/feedback.jsonl]") \
               .replace("  edit_min_chars: 8", "  edit_min_chars: 8\n  pii: drop\n  agent_versions: [base, v3]\n"
                                               "  judge: {type: rubric, rubric: support-quality, max_pairs: 50}")
    (tmp_path / "specs/cycles/0001-damaged-orders.yaml").write_text(good)
    assert validate_paths([tmp_path / "specs/cycles"], tmp_path) == []
    bad = good.replace("[data/example/feedback.jsonl]", "data/example/feed*.jsonl").replace("pii: drop", "pii: hide\n  rating_bad_max: 0.9")
    (tmp_path / "specs/cycles/0001-damaged-orders.yaml").write_text(bad)
    messages = [f"{p.field}: {p.message}" for p in validate_paths([tmp_path / "specs/cycles"], tmp_path)]
    assert any(m.startswith("feedback.feedback: 'data/example/feed*.jsonl' is a glob") for m in messages), messages
    assert any(m.startswith("extract.pii: 'hide' is not allowed") for m in messages), messages
    assert any("rating_bad_max: 0.9 must be below rating_good_min (0.75)" in m for m in messages), messages
