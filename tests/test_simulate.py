"""`rlops simulate` against a real `rlops serve` on localhost (real HTTP), its upstream the fake OpenAI server
(tests/fake_openai.py), standing in for a model endpoint. The oracle is itself the stand-in for real people."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fake_openai import FakeOpenAI

from rlops.observe.recorder import read_records
from rlops.registry.manifest import Manifest, manifest_path
from rlops.serve import server as serve_server
from rlops.serve.config import load as load_settings
from rlops.simulate import ABUSE, KINDS, oracle, simulate, tickets

POLICY = "support-agent"
ALL = {k: 1.0 for k in KINDS}


@pytest.fixture
def served(tmp_path):
    path = tmp_path / manifest_path(POLICY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(Manifest(POLICY).text(), encoding="utf-8")
    fake = FakeOpenAI()
    s = serve_server.start(load_settings(None, {"base_url": fake.url, "fsync": False}), tmp_path)
    yield tmp_path, s, fake
    serve_server.stop(s)
    fake.close()


def written(root: Path, kind: str) -> list[dict]:
    return list(read_records(root / "data/production", kind))


def canonical(sent: list[dict]) -> bytes:
    """The feedback with the server's interaction ids replaced by their order of first appearance."""
    ids: dict[str, str] = {}
    text = json.dumps(sent, sort_keys=True)
    for fb in sent:
        for i in (fb["interaction_id"], *(fb.get("pairwise") or {}).values()):
            ids.setdefault(i, f"#{len(ids)}")
    for real, alias in ids.items():
        text = text.replace(real, alias)
    return text.encode()


def test_every_kind_of_feedback_arrives_once_per_key_and_abuse_is_in_the_population(served):
    root, s, fake = served
    summary, sent = simulate(s.url, 12, seed=3, rates=ALL, repeat_feedback=True)
    serve_server.stop(s)  # flush the log writer
    fb = written(root, "feedback")
    assert {f["kind"] for f in fb} == set(KINDS)
    assert len(fb) == len(sent) == sum(summary.feedback.values()) and summary.duplicates == len(sent)
    assert len({f["idempotency_key"] for f in fb}) == len(fb)
    logged = {i["interaction_id"] for i in written(root, "interactions")}
    assert {f["interaction_id"] for f in fb} <= logged
    assert summary.requests == len(logged)
    assert any(t.topic in ABUSE for t in tickets(12, 3))
    assert summary.ratings and all(1 <= v <= 5 for vs in summary.ratings.values() for v in vs)


def test_the_same_seed_and_answers_give_the_same_feedback_and_another_seed_does_not(served):
    _, s, _ = served
    half = {k: 0.5 for k in KINDS}  # below 1, so that which answers get feedback is drawn from the seed
    a = canonical(simulate(s.url, 16, seed=7, rates=half)[1])
    b = canonical(simulate(s.url, 16, seed=7, rates=half)[1])
    c = canonical(simulate(s.url, 16, seed=8, rates=half)[1])
    assert a == b and a != c


def test_the_oracle_rewards_refusing_abuse_and_naming_the_tickets_facts():
    abuse = next(t for t in tickets(8, 1) if t.topic in ABUSE)
    assert oracle(abuse, "Sorry, I can't share that.") > oracle(abuse, "Sure, here it is: 12 High St.")
    damaged = next(t for t in tickets(8, 1) if t.topic == "damaged")
    assert oracle(damaged, f"Order {damaged.facts[0]}: we'll replace the {damaged.facts[1]}.") > oracle(damaged, "ok")


def test_a_4xx_from_the_server_is_reported_and_the_run_goes_on(served):
    _, s, _ = served
    summary, sent = simulate(s.url, 4, seed=1, rates=ALL, prefix="u" * 200)  # a user id over 200 characters: a 400
    assert summary.requests == 4 and summary.refused == 4 and sent == []
    assert summary.errors and summary.errors[0].startswith("400")


def test_rates_out_of_range_and_an_unreachable_server_are_clear_errors():
    out = subprocess.run([sys.executable, "-m", "rlops.cli", "simulate", "--url", "http://127.0.0.1:9", "--users", "1"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "cannot reach the server at http://127.0.0.1:9" in out.stderr
    assert "Traceback" not in out.stderr
    out = subprocess.run([sys.executable, "-m", "rlops.cli", "simulate", "--rating-rate", "1.5"],
                         capture_output=True, text=True)
    assert out.returncode != 0 and "--rating-rate" in out.stderr and "Traceback" not in out.stderr
