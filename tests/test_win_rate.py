"""The judged win-rate gate: both orders, ties, the Wilson bound, the judge stage's evidence, the HTTP judge against
a local fake OpenAI-compatible server (real HTTP; a fake only because no judge model is served here), and the
sample-size warning. No models: the judges are scripted, the rubric or the fake server."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from rlops import layout
from rlops.errors import Problem
from rlops.evaluate import judge as judge_stage
from rlops.gate import decide
from rlops.gate_report import judged_and_sized
from rlops.gates import needed_items, wilson_lower
from rlops.gates.win_rate import outcome
from rlops.registry import evidence
from rlops.spec import checks

BOOT = {"samples": 1000, "confidence": 0.95, "seed": 0}
RUBRIC = {"type": "rubric", "rubric": "support-quality"}
GOOD = "I'm sorry the jug arrived broken. I have sent a replacement for order NW-{n}; it ships within two days."
BAD = "ok"


def gate(min_=0.65, **extra):
    return {"metric": "heldout.win_rate", "rule": "win_rate", "min": min_, "judge": RUBRIC, **extra}


def samples(responses: list[str], suite="heldout") -> list[dict]:
    return [{"suite": suite, "id": f"{suite}-{i:03d}", "prompt": f"My jug arrived broken. Order NW-{100 + i}.",
             "response": r.format(n=100 + i), "scores": {"rubric": 0.0}} for i, r in enumerate(responses)]


def rows(pairs: list[tuple[str, str]], config=RUBRIC, suite="heldout") -> list[dict]:
    """Judgments as the judge stage records them, from (forward, backward) answers."""
    return [{"suite": suite, "id": f"{suite}-{i:03d}", "judge": {"name": "scripted", "config": config},
             "forward": f, "backward": b, "outcome": outcome(f, b)} for i, (f, b) in enumerate(pairs)]


class Scripted:
    """A judge that answers by a rule over the two answers it is shown; records what it was shown."""

    def __init__(self, decide_):
        self.name, self.decide, self.shown = "scripted", decide_, []

    def prefer(self, prompt, first, second):
        self.shown.append((first[0]["content"], second[0]["content"]))
        return self.decide(first[0]["content"], second[0]["content"])


# ---- both orders, ties, the bound -----------------------------------------------------------------------------

def test_only_a_verdict_that_survives_the_swap_counts():
    assert outcome("first", "second") == "win" and outcome("second", "first") == "loss"
    for flipped in (("first", "first"), ("second", "second"), ("tie", "first"), ("first", "tie"), ("tie", "tie")):
        assert outcome(*flipped) == "tie", flipped


def test_the_stage_asks_in_both_orders_candidate_first_then_incumbent_first():
    cand, inc = samples(["C{n}"] * 3), samples(["I{n}"] * 3)
    judge = Scripted(lambda a, b: "first" if a.startswith("C") else "second")  # always prefers the candidate
    judged = judge_stage.judge_items(judge, "heldout", cand, inc)
    assert judge.shown[:2] == [("C100", "I100"), ("I100", "C100")]
    assert [(r["forward"], r["backward"], r["outcome"]) for r in judged] == [("first", "second", "win")] * 3


def test_a_judge_biased_to_the_first_answer_gives_no_wins_and_cannot_pass():
    cand, inc = samples([GOOD] * 40), samples([BAD] * 40)
    judged = judge_stage.judge_items(Scripted(lambda a, b: "first"), "heldout", cand, inc)
    assert {r["outcome"] for r in judged} == {"tie"}
    g = decide([gate()], cand, inc, BOOT, judgments=[{**r, "judge": {"name": "s", "config": RUBRIC}}
                                                     for r in judged]).gates[0]
    assert g.candidate == 0.5 and not g.passed and "0 won, 40 tied, 0 lost of 40" in g.reason


def test_ties_count_half():
    judged = rows([("first", "second")] * 8 + [("first", "first")] * 4 + [("second", "first")] * 2)
    g = decide([gate(0.0)], [], [], BOOT, judgments=judged).gates[0]
    assert g.candidate == round((8 + 4 / 2) / 14, 6) and g.incumbent == round(1 - g.candidate, 6)
    assert g.bound == round(wilson_lower(8 + 2, 14, 0.95), 6) and g.n == 14


def test_a_judge_preferring_the_candidate_passes_with_enough_items_and_fails_with_too_few():
    for n, expected in ((5, False), (6, True), (40, True)):  # 5/(5+z²) = 0.649 < 0.65 <= 6/(6+z²) = 0.689
        g = decide([gate()], [], [], BOOT, judgments=rows([("first", "second")] * n)).gates[0]
        assert g.passed is expected and g.candidate == 1.0, (n, g.reason)


def test_the_gate_compares_the_lower_bound_not_the_win_rate_or_an_upper_bound():
    judged = rows([("first", "second")] * 14 + [("second", "first")] * 6)  # win-rate 0.70 of 20
    lo = wilson_lower(14, 20, 0.95)
    assert lo < 0.6 < 0.7
    for min_, expected in ((lo - 0.002, True), (lo + 0.002, False), (0.65, False)):
        g = decide([gate(min_)], [], [], BOOT, judgments=judged).gates[0]
        assert g.passed is expected and g.bound == round(lo, 6), (min_, g.reason)


def test_a_win_rate_gate_s_own_confidence_is_honoured():
    judged = rows([("first", "second")] * 14 + [("second", "first")] * 6)
    min_ = (wilson_lower(14, 20, 0.6) + wilson_lower(14, 20, 0.99)) / 2
    assert decide([gate(min_)], [], [], {**BOOT, "confidence": 0.6}, judgments=judged).passed
    strict = decide([gate(min_, confidence=0.99)], [], [], {**BOOT, "confidence": 0.6}, judgments=judged).gates[0]
    assert not strict.passed and "99% one-sided Wilson" in strict.reason


def test_a_win_rate_is_higher_is_better_whatever_the_caller_says():
    judged = rows([("first", "second")] * 30)
    assert decide([gate()], [], [], BOOT, directions={"heldout.win_rate": False}, judgments=judged).passed


def test_only_the_gate_s_own_judge_and_suite_count_and_none_is_a_clear_failure():
    judged = rows([("first", "second")] * 30, config={"type": "rubric", "rubric": "other"})
    g = decide([gate()], [], [], BOOT, judgments=judged).gates[0]
    assert not g.passed and "no judgments for heldout.win_rate" in g.reason and "judge stage" in g.reason
    assert not decide([gate()], [], [], BOOT, judgments=rows([("first", "second")] * 30, suite="redteam")).passed
    wrong = decide([{**gate(), "metric": "heldout.rubric"}], [], [], BOOT, judgments=rows([("first", "second")] * 30))
    assert "<suite>.win_rate" in wrong.gates[0].reason


# ---- the stage, its evidence, and the verdict recomputed from it ----------------------------------------------

def params_with(gates: list[dict]) -> dict:
    return {"gate": {"bootstrap": BOOT, "rules": gates}, "evaluate": {"suites_dir": "specs/evals", "limit": None},
            "judge": judge_stage.judge_section(gates)}


def write_samples(root: Path, cand: list[dict], inc: list[dict]) -> None:
    for which, items in (("candidate", cand), ("incumbent", inc)):
        path = root / layout.samples(which)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(json.dumps(it) + "\n" for it in items), encoding="utf-8")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_judge_stage_records_every_verdict_and_the_gate_recomputes_from_them(tmp_path):
    cand = samples([GOOD] * 8 + [BAD] * 2)  # the rubric judge prefers the apology + order number + remedy
    inc = samples([BAD] * 8 + [GOOD] * 2)
    write_samples(tmp_path, cand, inc)
    params = params_with([gate(0.5), {"metric": "heldout.rubric", "rule": "at_least", "value": 0.0}])
    judge_stage.run(params, tmp_path)
    recorded = read_jsonl(tmp_path / layout.JUDGMENTS)
    assert len(recorded) == 10 and {r["judge"]["name"] for r in recorded} == {"rubric:support-quality"}
    assert all(r["judge"]["config"] == RUBRIC for r in recorded)
    assert [r["outcome"] for r in recorded] == ["win"] * 8 + ["loss"] * 2
    assert all((r["forward"], r["backward"]) in {("first", "second"), ("second", "first")} for r in recorded)

    verdict = decide(params["gate"]["rules"], cand, inc, BOOT, judgments=recorded).to_json()
    again = evidence.recompute_verdict(params, cand, inc, read_jsonl(tmp_path / layout.JUDGMENTS))
    assert again == verdict and verdict["gates"][0]["candidate"] == 0.8
    # the recorded answers decide, not the `outcome` written for readers
    for r in recorded:
        r["outcome"] = "loss"
    assert evidence.recompute_verdict(params, cand, inc, recorded) == verdict
    recorded[0]["backward"] = "first"  # item 0 now flips with the order: a tie, no longer a win
    assert evidence.recompute_verdict(params, cand, inc, recorded)["gates"][0]["candidate"] == 0.75


def test_no_win_rate_gate_writes_an_empty_judgments_file(tmp_path):
    judge_stage.run(params_with([{"metric": "heldout.rubric", "rule": "at_least", "value": 0.0}]), tmp_path)
    assert (tmp_path / layout.JUDGMENTS).read_text(encoding="utf-8") == ""


def test_audit_verify_recomputes_a_win_rate_verdict_from_the_committed_judgments(tmp_path):
    from rlops.gitio import BlobReader

    cand, inc = samples([GOOD] * 10), samples([BAD] * 10)
    write_samples(tmp_path, cand, inc)
    params = params_with([gate()])
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params), encoding="utf-8")
    recorded = judge_stage.run(params, tmp_path)
    verdict = decide(params["gate"]["rules"], cand, inc, BOOT, judgments=recorded).to_json()
    (tmp_path / layout.VERDICT).parent.mkdir(parents=True)
    (tmp_path / layout.VERDICT).write_text(json.dumps(verdict), encoding="utf-8")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-qm", "evidence"], check=True)
    g = verdict["gates"][0]
    entry = {"policy": "p", "version": "v1", "verdict": verdict["decision"],
             "evaluation": {g["metric"]: {k: g[k] for k in ("rule", "passed", "candidate", "incumbent", "diff",
                                                            "ci_low", "ci_high", "n")}}}
    blobs = BlobReader(tmp_path)
    try:
        assert verdict["passed"] and evidence.check_verdict(blobs, "HEAD", entry, []) == []
        # judgments changed after the gate: the recomputed verdict no longer matches the recorded one
        flipped = [{**r, "forward": "second", "backward": "first"} for r in recorded]
        (tmp_path / layout.JUDGMENTS).write_text("".join(json.dumps(r) + "\n" for r in flipped), encoding="utf-8")
        subprocess.run([*git, "commit", "-qam", "tampered"], check=True)
        problems = evidence.check_verdict(blobs, "HEAD", entry, [])
        assert any("recomputed from the evaluation samples fails (heldout.win_rate)" in p for p in problems)
        subprocess.run([*git, "rm", "-q", layout.JUDGMENTS], check=True)
        subprocess.run([*git, "commit", "-qm", "without the judgments"], check=True)
        assert evidence.check_verdict(blobs, "HEAD", entry, []) == [
            f"{layout.JUDGMENTS} is not in the merge: the win_rate verdict cannot be recomputed"]
    finally:
        blobs.close()


# ---- the HTTP judge: a local fake OpenAI-compatible server, real HTTP -----------------------------------------

class FakeJudgeServer:
    """Answers chat completions like a judge that prefers the answer containing `marker`."""

    def __init__(self, marker: str):
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append({"path": self.path, "body": body})
                text = body["messages"][-1]["content"]
                first = text.split("Answer 1:\n", 1)[1].split("\n\nAnswer 2:", 1)[0]
                reply = {"choices": [{"index": 0, "message": {"role": "assistant",
                                                              "content": "1" if marker in first else "2"}}]}
                data = json.dumps(reply).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()


@pytest.fixture
def judge_server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    s = FakeJudgeServer("replacement")
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def test_the_http_judge_compares_both_orders_over_real_http(tmp_path, judge_server):
    cand, inc = samples([GOOD] * 6 + [BAD] * 2), samples([BAD] * 6 + [GOOD] * 2)
    write_samples(tmp_path, cand, inc)
    http = {"type": "http", "url": judge_server.url, "model": "judge-1", "max_retries": 0}
    params = params_with([gate(0.5, judge=http)])
    recorded = judge_stage.run(params, tmp_path)
    assert len(judge_server.requests) == 2 * 8 and {r["path"] for r in judge_server.requests} == {"/v1/chat/completions"}
    assert [r["outcome"] for r in recorded] == ["win"] * 6 + ["loss"] * 2
    assert recorded[0]["judge"] == {"name": f"http:judge-1@{judge_server.url}", "config": http}
    g = decide(params["gate"]["rules"], cand, inc, BOOT, judgments=read_jsonl(tmp_path / layout.JUDGMENTS)).gates[0]
    assert g.candidate == 0.75 and g.n == 8


# ---- rlops plan: the judge's keys, the metric, and the sample-size warning --------------------------------------

def problems_of(params: dict, root: Path) -> list[Problem]:
    return checks.params_problems(params, root, lambda path: ("params.yaml", None, ".".join(map(str, path))))


def test_plan_checks_a_win_rate_gate_s_metric_and_judge_naming_the_field(tmp_path):
    params = params_with([{**gate(), "metric": "heldout.rubric", "judge": {"type": "rubric", "rubric": "nope"}},
                          gate(judge={"type": "oracle"})])
    params["evaluate"]["suites"] = ["heldout"]
    found = {p.field: p.message for p in problems_of(params, tmp_path)}
    assert "write heldout.win_rate" in found["gate.rules.0.metric"]
    assert "'nope' is not a registered rubric; use one of" in found["gate.rules.0.judge.rubric"]
    assert "'oracle' is not a judge type; use one of rubric, transformers, http" in found["gate.rules.1.judge.type"]


def suite(root: Path, name: str, n: int) -> None:
    d = root / "specs" / "evals" / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "prompts.jsonl").write_text("".join(json.dumps({"id": f"{name}-{i}", "prompt": "p"}) + "\n"
                                             for i in range(n)), encoding="utf-8")


def test_plan_warns_when_a_suite_is_too_small_even_for_a_perfect_candidate(tmp_path):
    suite(tmp_path, "heldout", 5)
    suite(tmp_path, "big", 40)
    params = params_with([gate(), {**gate(), "metric": "big.win_rate"},
                          {"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.0}])
    warned = checks.sample_size_warnings(params, tmp_path)
    assert len(warned) == 1 and "gate.rules[0] heldout.win_rate" in warned[0]
    assert "specs/evals/heldout/prompts.jsonl: 5 item(s) are too few" in warned[0]
    assert "it needs at least 6" in warned[0]
    params["evaluate"]["limit"] = 5  # evaluate.limit caps every suite
    assert len(checks.sample_size_warnings(params, tmp_path)) == 2
    params["evaluate"]["limit"] = None
    params["gate"]["rules"][1]["min"] = 0.95  # 40 perfect wins give a Wilson bound of 0.937
    assert "40 item(s) are too few" in checks.sample_size_warnings(params, tmp_path)[1]


def test_the_count_warned_is_the_one_at_which_the_gate_itself_starts_to_pass():
    for min_, confidence in ((0.65, 0.95), (0.8, 0.9), (0.9, 0.99)):
        g = gate(min_, confidence=confidence)
        message = needed_items(g, 1, BOOT)
        need = int(message.rsplit(" ", 1)[1])
        assert needed_items(g, need, BOOT) is None
        assert not decide([g], [], [], BOOT, judgments=rows([("first", "second")] * (need - 1))).passed
        assert decide([g], [], [], BOOT, judgments=rows([("first", "second")] * need)).passed


def test_bootstrap_rules_warn_only_when_no_size_would_do():
    assert needed_items({"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.0}, 1, BOOT) is None
    assert needed_items({"metric": "heldout.rubric", "rule": "superior", "margin": 0.5}, 1, BOOT) is None
    never = needed_items({"metric": "heldout.rubric", "rule": "superior", "margin": 1.0}, 40, BOOT)
    assert never.startswith("cannot pass at 95% confidence with any number of items")
    assert needed_items({"metric": "heldout.length", "rule": "superior", "margin": 1.0}, 40, BOOT) is None  # unbounded


def test_the_report_names_the_judge_and_warns_about_too_few_items():
    params = params_with([gate()])
    verdict = decide([gate()], [], [], BOOT, judgments=rows([("first", "second")] * 5)).to_json()
    text = "\n".join(judged_and_sized(params, verdict))
    assert '"rubric": "support-quality"' in text and layout.JUDGMENTS in text and "both orders" in text
    assert "Too few items to decide" in text and "5 item(s) are too few" in text and "at least 6" in text
    verdict = decide([gate()], [], [], BOOT, judgments=rows([("first", "second")] * 6)).to_json()
    assert "Too few" not in "\n".join(judged_and_sized(params, verdict))


SPEC = "specs/cycles/0001-damaged-orders.yaml"
WIN_GATE = "  - {metric: heldout.win_rate, rule: win_rate, min: 0.65}\n"


def test_rlops_plan_fills_the_judge_warns_on_stderr_and_places_a_bad_judge_at_its_spec_line(project, capsys):
    from rlops.cli import main

    repo, _ = project
    spec = repo / SPEC
    text = spec.read_text(encoding="utf-8")
    spec.write_text(text.replace("promotion:", WIN_GATE.rstrip("\n") + "\npromotion:", 1)
                    .replace("suites: [heldout, regression, redteam, overrefusal]",
                             "suites: [heldout, regression, redteam, overrefusal]\n  overrides: {limit: 5}"), encoding="utf-8")
    assert main(["plan", "--root", str(repo), SPEC, "model=tiny"]) == 0
    out = capsys.readouterr()
    rules = yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))["gate"]["rules"]
    assert rules[-1] == {"metric": "heldout.win_rate", "rule": "win_rate", "min": 0.65,
                         "allow_uninformative": False, "judge": RUBRIC}
    # what the judge stage reads: derived from the win_rate gates, so a threshold edit leaves it alone
    assert yaml.safe_load((repo / "params.yaml").read_text(encoding="utf-8"))["judge"] == {
        "suites": [{"suite": "heldout", "judge": RUBRIC}]}
    assert (f"rlops plan: warning: gate.rules[{len(rules) - 1}] heldout.win_rate (win_rate), specs/evals/heldout/prompts.jsonl with "
            "evaluate.limit: 5 item(s) are too few to pass at 95% confidence even with a perfect candidate; it needs "
            "at least 6") in out.err
    assert "warning" not in out.out
    # a judge the stage could not build is refused before anything runs, at its line in the spec
    spec.write_text(spec.read_text(encoding="utf-8").replace(
        "min: 0.65}", "min: 0.65, judge: {type: rubric, rubric: nope}}"), encoding="utf-8")
    assert main(["plan", "--root", str(repo), SPEC, "model=tiny"]) == 2
    err = capsys.readouterr().err
    line = next(i for i, t in enumerate(spec.read_text(encoding="utf-8").splitlines(), 1) if "rubric: nope" in t)
    assert f"{SPEC}:{line}: gates[{len(rules) - 1}].judge.rubric: 'nope' is not a registered rubric" in err and "Traceback" not in err


def test_the_judge_and_gate_stages_write_the_judgments_and_a_verdict_that_reads_them(tmp_path, capsys):
    from rlops import stages

    cand, inc = samples([GOOD] * 9 + [BAD]), samples([BAD] * 9 + [GOOD])
    write_samples(tmp_path, cand, inc)
    for which in ("candidate", "incumbent"):
        (tmp_path / layout.results(which)).write_text(json.dumps({"metrics": {}}), encoding="utf-8")
    for path, text in ((layout.SIGNALS_DETAIL, "{}"), (layout.SIGNALS_MD, ""), (layout.TRAIN_METRICS, "{}"),
                       (layout.CURVE, "step,loss\n1,0.5\n")):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text, encoding="utf-8")
    params = {**params_with([gate(0.5)]), "plan": {"spec": "s.yaml"}, "model": {"name": "tiny"},
              "train": {"method": "dpo"}, "cycle": {"number": 1, "policy": "p", "parent": "base", "rationale": "r",
                                                     "promotion": {"mode": "replace"}}}
    stages.judge(tmp_path, params)
    assert "candidate won 9, tied 0, lost 1 of 10" in capsys.readouterr().out
    stages.gate(tmp_path, params)
    verdict = json.loads((tmp_path / layout.VERDICT).read_text(encoding="utf-8"))
    assert verdict["passed"] and verdict["gates"][0]["candidate"] == 0.9 and verdict["gates"][0]["n"] == 10
    report = (tmp_path / layout.REPORT).read_text(encoding="utf-8")
    assert "| `heldout.win_rate` | win_rate |" in report and layout.JUDGMENTS in report


def test_the_judge_section_has_one_entry_per_suite_and_judge_and_ignores_thresholds():
    http = {"type": "http", "url": "http://127.0.0.1:1/v1", "model": "j"}
    gates = [gate(0.6), gate(0.7, confidence=0.9), gate(0.6, judge=http), {**gate(), "metric": "other.win_rate"},
             {"metric": "heldout.rubric", "rule": "non_inferior", "margin": 0.0}]
    assert judge_stage.judge_section(gates) == {"suites": [{"suite": "heldout", "judge": RUBRIC},
                                                           {"suite": "heldout", "judge": http},
                                                           {"suite": "other", "judge": RUBRIC}]}
    assert judge_stage.judge_section([gate(0.9)]) == judge_stage.judge_section([gate(0.6)])


def test_the_readme_s_win_rate_gates_are_valid_gates_with_buildable_judges(monkeypatch):
    import re

    from rlops import components
    from rlops.extract.judges import judge_problems

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme.split("### The judged win-rate gate", 1)[1]
    gates = yaml.safe_load(re.search(r"```yaml\n(.*?)```", section, re.S).group(1))["gates"]
    monkeypatch.setenv("JUDGE_API_KEY", "not-a-real-key")
    assert [g["rule"] for g in gates] == ["win_rate", "win_rate"]
    for i, g in enumerate(gates):
        settings, problems = components.validate(components.get("gate_rule", "win_rate"), g, "README.md", "gates")
        assert problems == [] and settings.metric == "heldout.win_rate"
        assert judge_problems(settings.judge, Path("."), field=f"gates[{i}].judge") == []
