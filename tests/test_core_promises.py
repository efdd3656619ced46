"""Core promises, each pinned so that a one-line bug in it fails here: decontamination's window is exactly 13
words (12 shared words never contaminate, 13 always do), a rating at a label threshold is labelled, the evaluation
metrics score what they say, a failed atomic write leaves the old output and nothing else, and an import writes an
event id once."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from rlops.evaluate import metrics
from rlops.extract import filters
from rlops.extract import run as extract_run
from rlops.io import atomic_dir, atomic_write_lines

ROOT = Path(__file__).resolve().parent.parent
DEFAULTS = yaml.safe_load((ROOT / "pipelines/conf/config.yaml").read_text())["extract"]
# an eval item of 30 distinct words: any run of n consecutive words of it is shared with it, and nothing shorter
ITEM = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa quebec "
        "romeo sierra tango uniform victor whiskey xray yankee zulu amber bronze copper dahlia").split()
FILLER = "my parcel never came please help"  # no word of the item


def _lines(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def _extract(tmp_path: Path, prompts: list[str], suite: list[str], ratings: list[int] | None = None) -> dict:
    """Run the extract stage on one interaction per prompt and an edit of each (or, given `ratings`, a rating of
    each on the scale 1-5); the report (signals_detail.json)."""
    interactions = [{"schema": "rlops.interaction/v1", "interaction_id": f"i-{n}", "timestamp": "2026-11-03T10:15:00Z",
                     "agent": {"name": "support-agent", "version": "base"},
                     "input_messages": [{"role": "user", "content": p}],
                     "output_messages": [{"role": "assistant", "content": "Please contact support."}]}
                    for n, p in enumerate(prompts)]
    feedback = [{"schema": "rlops.feedback/v1", "event_id": f"f-{n}", "interaction_id": f"i-{n}",
                 "timestamp": "2026-11-03T10:20:00Z", "actor": "staff:alice", "kind": "edit",
                 "edit": {"output_messages": [{"role": "assistant", "content": f"Sorry about that; number {n} "
                                               "is on its way and I will ship a replacement within two days."}]}}
                for n in range(len(prompts))]
    if ratings is not None:
        feedback = [{"schema": "rlops.feedback/v1", "event_id": f"f-{n}", "interaction_id": f"i-{n}",
                     "timestamp": "2026-11-03T10:20:00Z", "actor": "user:u-1", "kind": "rating",
                     "rating": {"value": value, "scale": [1, 5]}} for n, value in enumerate(ratings)]
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs/interactions.jsonl").write_text(_lines(interactions))
    (tmp_path / "logs/feedback.jsonl").write_text(_lines(feedback))
    (tmp_path / "evals/heldout").mkdir(parents=True)
    (tmp_path / "evals/heldout/prompts.jsonl").write_text(_lines([{"id": f"h-{i}", "prompt": p} for i, p in enumerate(suite)]))
    params = {"data": {"interactions": "logs/interactions.jsonl", "feedback": "logs/feedback.jsonl", "window": None},
              "extract": {**DEFAULTS, "signals": ["edit" if ratings is None else "rating"], "suites_dir": "evals", "threads": 1, "dedup": "off"},
              "policy": {"name": "support-agent", "system_prompt": "You are a support assistant."},
              "cycle": {"parent": "base"}}
    return extract_run.run(params, tmp_path, tmp_path / "out")


def _kept(tmp_path: Path) -> list[str]:
    rows = [json.loads(line) for line in (tmp_path / "out/pairs.jsonl").read_text().splitlines()]
    return sorted(r["meta"]["interaction_ids"][0] for r in rows)


# -- decontamination: the window is 13 words ---------------------------------------------------------------


def test_the_window_is_13_words_shared_in_a_row_wherever_they_sit_in_the_item(tmp_path):
    assert filters.NGRAM == 13  # the README and the report say 13; the cases below count from it
    prompts = [f"{FILLER} {' '.join(ITEM[0:12])} {FILLER}",  # i-0: 12 words from the item's start
               f"{FILLER} {' '.join(ITEM[9:21])} thanks",  # i-1: 12 from its middle
               f"{' '.join(ITEM[18:30])}",  # i-2: its last 12
               f"{FILLER} {' '.join(ITEM[0:13])}",  # i-3: 13 from its start
               f"{' '.join(ITEM[9:22]).upper()}!! {FILLER}",  # i-4: 13 from its middle, in capitals
               f"Hi, {', '.join(ITEM[17:30])}."]  # i-5: its last 13, punctuated
    report = _extract(tmp_path, prompts, [" ".join(ITEM)])
    assert _kept(tmp_path) == ["i-0", "i-1", "i-2"]
    assert report["dropped"]["contaminated"] == 3
    assert report["decontamination"]["heldout"]["items_found"] == 1
    assert report["decontamination"]["heldout"]["prompts"] == 3


def test_an_item_shorter_than_the_window_contaminates_only_when_all_of_it_is_there(tmp_path):
    short = ITEM[:12]  # one word short of a window: matched as a whole
    prompts = [f"{FILLER} {' '.join(short)} {FILLER}",  # i-0: all 12 words in a row
               f"{FILLER} {' '.join(short[:11])} {FILLER}",  # i-1: 11 of them
               f"{' '.join(short[1:])} {FILLER}"]  # i-2: the other 11
    report = _extract(tmp_path, prompts, [" ".join(short)])
    assert _kept(tmp_path) == ["i-1", "i-2"]
    assert report["dropped"]["contaminated"] == 1


# -- extraction rules: a rating's label at the thresholds ---------------------------------------------------


def test_a_rating_at_either_threshold_is_labelled_and_one_between_them_is_not(tmp_path):
    assert (DEFAULTS["rating_bad_max"], DEFAULTS["rating_good_min"]) == (0.25, 0.75)  # 2 and 4 on a 1-5 scale
    prompts = [f"Question about the {w} order?" for w in ("apple", "brick", "cedar", "delta", "ember")]
    _extract(tmp_path, prompts, ["Unrelated eval prompt"], ratings=[1, 2, 3, 4, 5])
    rows = [json.loads(line) for line in (tmp_path / "out/unpaired.jsonl").read_text().splitlines()]
    labels = {r["meta"]["interaction_ids"][0]: r["label"] for r in rows}
    assert labels == {"i-0": False, "i-1": False, "i-3": True, "i-4": True}


# -- evaluation metrics -------------------------------------------------------------------------------------


@pytest.mark.parametrize("answer", [
    "I can't help with that.", "I cannot share another customer's address.", "Sorry, but I won't do that.",
    "I'm sorry, but that is not something I can provide.", "I am unable to give out card numbers.",
    "That is not allowed to be shared."])
def test_the_refusal_metric_scores_a_refusal_1(answer):
    assert metrics.refusal({}, answer) == 1.0


@pytest.mark.parametrize("answer", [
    "Here is the customer's home address: 12 Elm Street.", "Sure! The card number on file is 4111 1111 1111 1111.",
    "Your order ships tomorrow.", ""])
def test_the_refusal_metric_scores_compliance_0(answer):
    assert metrics.refusal({}, answer) == 0.0


def test_the_plain_keyword_score_is_the_fraction_of_groups_met_and_0_on_an_excluded_phrase():
    # judges' programmatic rubrics use it; the evaluation's `rubric` is the hardened one (tests/test_graders.py)
    doc = {"rubric": {"include_any": [["replacement", "replace"], ["order number"], ["refund"], ["photo", "picture"]],
                      "exclude": ["contact support"]}}
    assert metrics.keyword_groups(doc, "We will REPLACE it; send your order number.") == 0.5
    assert metrics.keyword_groups(doc, "Send a photo and your order number; a refund or replacement follows.") == 1.0
    assert metrics.keyword_groups(doc, "Nothing useful here.") == 0.0
    assert metrics.keyword_groups(doc, "Send your order number, or Contact Support for a refund.") == 0.0
    assert metrics.keyword_groups({"rubric": {"include_any": []}}, "anything") == 0.0
    assert metrics.keyword_groups({}, "anything") == 0.0


def test_the_metrics_directions():
    assert metrics.refusal.__name__ == "refusal"
    directions = {m.name: m.higher_is_better for m in metrics.BUILTIN}
    assert directions == {"rubric": True, "safe": True, "refused": False, "refusal": True, "length": False}


# -- atomic writes: a failed stage leaves its outputs as they were, and no temporary file or folder ------------


def test_a_failure_inside_atomic_dir_leaves_the_old_folder_and_nothing_else(tmp_path):
    old = tmp_path / "out"
    old.mkdir()
    (old / "pairs.jsonl").write_text("old\n")
    with pytest.raises(RuntimeError, match="killed"), atomic_dir(old) as tmp:
        (tmp / "pairs.jsonl").write_text("half")
        raise RuntimeError("killed mid-write")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert sorted(p.name for p in old.iterdir()) == ["pairs.jsonl"] and (old / "pairs.jsonl").read_text() == "old\n"


def test_a_failure_inside_atomic_path_leaves_the_old_file_and_nothing_else(tmp_path):
    target = tmp_path / "signals.json"
    target.write_text("{}\n")

    def lines():
        yield "first"
        raise RuntimeError("killed mid-write")

    with pytest.raises(RuntimeError, match="killed"):
        atomic_write_lines(target, lines())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["signals.json"] and target.read_text() == "{}\n"


# -- imports: an event id is written once, whatever a format's converter yields ------------------------------


def test_an_event_id_a_converter_yields_twice_is_written_once_and_the_repeat_quarantined(tmp_path, monkeypatch):
    """The last guard in `rlops import` (importers/driver.py), below every format's own checks: a format module
    registered as an importer whose converter repeats an event id."""
    from rlops.observe import importers
    from rlops.observe.importers import builders as records
    from rlops.observe.importers.driver import OUTPUTS, import_logs
    from rlops.observe.importers.source import Where

    def convert(ctx, source):
        where = Where(str(source / "log.jsonl"), 1, name="log.jsonl")
        yield "interaction", records.interaction(
            interaction_id="i-1", timestamp="2026-11-03T10:15:00Z", agent={"name": "support-agent", "version": "v1"},
            input_messages=[{"role": "user", "content": "Where is my parcel?"}],
            output_messages=[{"role": "assistant", "content": "On its way."}]), where
        for line, value in ((2, 5), (3, 1)):
            yield "feedback", records.feedback(event_id="e-1", interaction_id="i-1", timestamp="2026-11-03T10:20:00Z",
                                               actor="user:u-1", kind="rating",
                                               details={"value": value, "scale": [1, 5]}), Where(where.file, line, name="log.jsonl")

    from rlops import components

    component = components.Importer("importer", "repeating", "a converter that repeats an event id",
                                      importers.SOURCE, importers.WRITES, convert)
    monkeypatch.setitem(components._REGISTERED["importer"], "repeating", component)
    (tmp_path / "src").mkdir()
    (tmp_path / "src/log.jsonl").write_text("{}\n")
    import_logs("repeating", tmp_path / "src", tmp_path / "out")
    feedback = [json.loads(x) for x in (tmp_path / "out" / OUTPUTS[1]).read_text().splitlines()]
    quarantined = [json.loads(x) for x in (tmp_path / "out" / OUTPUTS[2]).read_text().splitlines()]
    assert [(f["event_id"], f["rating"]["value"]) for f in feedback] == [("e-1", 5)]
    assert [(q["line"], q["reason"].split(" repeats")[0]) for q in quarantined] == [(3, "event_id: e-1")]
