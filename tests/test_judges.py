"""RLAIF judges: rubric, local transformers model and OpenAI-compatible HTTP endpoint, each asked in both orders."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from rlops.errors import InvalidInput, RlopsError
from rlops.extract import judges
from rlops.extract.judges import (
    FIRST,
    PREFERENCES,
    QUESTION,
    RUBRICS,
    SECOND,
    TIE,
    PairJudgment,
    build_judge,
    comparison_messages,
    judge_pair,
    register_rubric,
    support_quality,
)

ROOT = Path(__file__).resolve().parent.parent
PROMPT = [{"role": "system", "content": "You are the support agent of Northwind."},
          {"role": "user", "content": "My teapot arrived cracked. Order NW-55120."}]
GOOD = [{"role": "assistant", "content": "I'm so sorry the teapot arrived cracked. I've sent a replacement for "
                                         "order NW-55120; it ships today and you keep the broken one."}]
GENERIC = [{"role": "assistant", "content": "Thank you for contacting Northwind. We value your feedback and will "
                                            "look into it as soon as possible."}]
RUDE = [{"role": "assistant", "content": "Sorry, but that is not our problem. Order NW-55120 shipped fine, a "
                                         "refund is out of the question, deal with it."}]


def user(text: str) -> list[dict]:
    return [{"role": "user", "content": text}]


def reply(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


# ---- judge_pair ------------------------------------------------------------------------------------------------

class Scripted:
    """A judge that answers from a function of the answers' contents and records what it was shown."""

    def __init__(self, decide, name="scripted"):
        self.name, self.decide, self.asked = name, decide, []

    def prefer(self, prompt, first, second):
        self.asked.append((first[0]["content"], second[0]["content"]))
        return self.decide(first[0]["content"], second[0]["content"])


def test_agreeing_verdicts_name_the_winner_in_either_position():
    judge = Scripted(lambda x, y: FIRST if "replacement" in x else SECOND)
    assert judge_pair(judge, PROMPT, GOOD, GENERIC) == PairJudgment("a", FIRST, SECOND)
    assert judge_pair(judge, PROMPT, GENERIC, GOOD) == PairJudgment("b", SECOND, FIRST)
    # both orders were asked, a first then b first
    assert judge.asked[:2] == [(GOOD[0]["content"], GENERIC[0]["content"]), (GENERIC[0]["content"], GOOD[0]["content"])]


@pytest.mark.parametrize("always", [FIRST, SECOND, TIE])
def test_a_position_biased_or_undecided_judge_gives_no_winner(always):
    verdict = judge_pair(Scripted(lambda x, y: always), PROMPT, GOOD, GENERIC)
    assert verdict.winner is None and verdict.forward == verdict.backward == always


def test_a_judge_answering_outside_first_second_tie_is_an_error():
    with pytest.raises(RlopsError, match="judge scripted answered 'A'"):
        judge_pair(Scripted(lambda x, y: "A"), PROMPT, GOOD, GENERIC)


# ---- rubrics -----------------------------------------------------------------------------------------------------

def test_support_quality_prefers_apology_order_number_and_remedy_and_zeroes_rudeness():
    good, generic, rude = (support_quality(PROMPT, a) for a in (GOOD, GENERIC, RUDE))
    assert good == 1.0 and rude == 0.0 and 0.0 <= generic < good
    # the order number counts when the answer uses the customer's; asking again does not
    asks_again = reply("I'm sorry it arrived cracked! What is your order number? I'll send a replacement today.")
    assert support_quality(PROMPT, asks_again) < good
    # without an order number in the ticket, asking for it is what earns the point
    no_id = user("The lid of my casserole dish arrived snapped in two.")
    asks = reply("I'm sorry the lid arrived broken. Could you send me your order number so I can ship a replacement?")
    ignores = reply("I'm sorry the lid arrived broken. I will ship a replacement as soon as I can, thanks for waiting.")
    assert support_quality(no_id, asks) > support_quality(no_id, ignores)
    # a question that reports no problem: only rudeness and length count
    hours = user("What are your opening hours on Saturdays?")
    polite = reply("We are open from nine in the morning until five in the afternoon on Saturdays.")
    rude = reply(polite[0]["content"] + " Calm down.")
    assert support_quality(hours, polite) == 1.0 and support_quality(hours, rude) == 0.0


def test_support_quality_penalises_length_extremes():
    terse = reply("Sorry, replacement for NW-55120.")
    rambling = reply(GOOD[0]["content"] + " " + " ".join(["We truly value you as a customer."] * 60))
    full = support_quality(PROMPT, GOOD)
    assert support_quality(PROMPT, terse) < full and support_quality(PROMPT, rambling) < full
    # the more extreme, the lower
    longer = reply(rambling[0]["content"] + " " + " ".join(["Thanks again."] * 100))
    assert support_quality(PROMPT, longer) < support_quality(PROMPT, rambling)


def test_support_quality_reads_content_parts_and_ignores_tool_calls():
    parts = [{"role": "assistant", "content": None, "tool_calls": [
                 {"id": "c1", "type": "function", "function": {"name": "lookup_order", "arguments": "{}"}}]},
             {"role": "tool", "tool_call_id": "c1", "content": "{\"status\": \"delivered\"}"},
             {"role": "assistant", "content": [{"type": "text", "text": GOOD[0]["content"]}]}]
    assert support_quality(PROMPT, parts) == support_quality(PROMPT, GOOD)


def test_rubric_judge_compares_scores_with_ties():
    judge = build_judge({"type": "rubric", "rubric": "support-quality"}, ROOT)
    assert judge.name == "rubric:support-quality"
    assert judge_pair(judge, PROMPT, GENERIC, GOOD) == PairJudgment("b", SECOND, FIRST)
    same_score = reply(GOOD[0]["content"].replace("teapot", "pot"))
    assert judge.prefer(PROMPT, GOOD, same_score) == TIE
    # a wide margin makes every close call a tie
    wide = build_judge({"type": "rubric", "rubric": "support-quality", "tie_margin": 1.0}, ROOT)
    assert judge_pair(wide, PROMPT, GENERIC, GOOD) == PairJudgment(None, TIE, TIE)


def test_registered_rubrics_are_chosen_by_name(monkeypatch):
    monkeypatch.setattr(judges, "RUBRICS", dict(RUBRICS))

    @register_rubric("shortest")
    def shortest(prompt, answer):
        return -len(answer[0]["content"])

    judge = build_judge({"type": "rubric", "rubric": "shortest"}, ROOT)
    assert judge_pair(judge, PROMPT, GOOD, reply("Sorry.")).winner == "b"
    with pytest.raises(ValueError, match="already registered"):
        register_rubric("shortest")(lambda p, a: 0.0)


# ---- build_judge: every problem, with its field and fix ----------------------------------------------------------

def problems(config, root=ROOT) -> dict[str, str]:
    with pytest.raises(InvalidInput) as e:
        build_judge(config, root)
    assert all(p.file == "params.yaml" for p in e.value.problems)
    return {p.field: p.message for p in e.value.problems}


def test_bad_judge_configs_name_every_field_and_the_fix(monkeypatch):
    monkeypatch.delenv("NO_SUCH_JUDGE_KEY", raising=False)
    assert "use one of rubric, transformers, http" in problems({"type": "gpt"})["extract.judge.type"]
    assert "missing" in problems({"rubric": "support-quality"})["extract.judge.type"]
    assert "must be a mapping" in problems("rubric")["extract.judge"]
    assert "use one of support-quality" in problems({"type": "rubric", "rubric": "nice"})["extract.judge.rubric"]

    found = problems({"type": "http", "url": "127.0.0.1:8000", "api_key": "sk-123", "timeout_s": 0,
                      "max_retries": -1, "max_tokens": 2.5, "temprature": 0})
    assert set(found) == {"extract.judge.url", "extract.judge.model", "extract.judge.api_key",
                          "extract.judge.timeout_s", "extract.judge.max_retries", "extract.judge.max_tokens",
                          "extract.judge.temprature"}
    assert "never put a key in the spec" in found["extract.judge.api_key"]
    assert "greater than 0" in found["extract.judge.timeout_s"] and "at least 0" in found["extract.judge.max_retries"]
    assert "must be a whole number" in found["extract.judge.max_tokens"]
    assert "unknown key" in found["extract.judge.temprature"]

    found = problems({"type": "http", "url": "http://h:1/v1/chat/completions", "model": "m",
                      "api_key_env": "NO_SUCH_JUDGE_KEY"})
    assert "without /chat/completions, e.g. http://h:1/v1" in found["extract.judge.url"]
    assert "NO_SUCH_JUDGE_KEY is not set" in found["extract.judge.api_key_env"]
    assert "not an environment variable name" in problems(
        {"type": "http", "url": "http://h/v1", "model": "m", "api_key_env": "sk-live-123"})["extract.judge.api_key_env"]

    found = problems({"type": "transformers", "model": "artifacts/none", "device": "gpu", "dtype": "fp8"})
    assert "no artifacts/none/config.json" in found["extract.judge.model"]
    assert "not a torch device" in found["extract.judge.device"] and "bfloat16" in found["extract.judge.dtype"]
    assert "outside the repository" in problems({"type": "transformers", "model": "../m"})["extract.judge.model"]
    assert "missing" in problems({"type": "transformers", "model": None})["extract.judge.model"]


def test_the_comparison_prompt_shows_both_answers_in_the_order_given():
    a, b = comparison_messages(PROMPT, GOOD, GENERIC), comparison_messages(PROMPT, GENERIC, GOOD)
    assert a[0]["role"] == "system" and a[1]["content"].endswith(QUESTION)
    text = a[1]["content"]
    assert text.index("Answer 1:") < text.index(GOOD[0]["content"]) < text.index("Answer 2:") < text.index(
        GENERIC[0]["content"])
    assert b[1]["content"].index(GENERIC[0]["content"]) < b[1]["content"].index(GOOD[0]["content"])
    assert "NW-55120" in text and "[system] You are the support agent" in text
    cut = comparison_messages(user("x" * 500 + "LAST"), reply("FIRST" + "y" * 500), GENERIC, max_chars=100)
    cut = cut[1]["content"]
    assert "LAST" in cut and "FIRST" in cut and "x" * 100 not in cut and "y" * 100 not in cut


# ---- http: a real server on 127.0.0.1 that answers from a script and records every request -----------------------

class FakeServer:
    def __init__(self):
        self.requests: list[dict] = []
        self.script: list[tuple[int, object]] = []  # queued (status, body) answers, before `decide`
        self.decide = lambda body: "1"  # the judge's reply when the script is empty
        self.delay_s = 0.0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                server.requests.append({"path": self.path, "headers": dict(self.headers), "body": json.loads(raw)})
                time.sleep(server.delay_s)
                status, body = server.script.pop(0) if server.script else (200, server.completion(json.loads(raw)))
                data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
                self.send_response(status)
                if status == 429:
                    self.send_header("Retry-After", "0")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()

    def completion(self, body):
        return {"id": "x", "object": "chat.completion", "model": body["model"],
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": self.decide(body)}}]}

    def answers_shown(self, i: int) -> tuple[str, str]:
        text = self.requests[i]["body"]["messages"][-1]["content"]
        return text.split("Answer 1:\n", 1)[1].split("\n\nAnswer 2:", 1)[0], text.split("Answer 2:\n", 1)[1]


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    s = FakeServer()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def http_judge(server, **extra):
    return build_judge({"type": "http", "url": server.url, "model": "judge-1", "retry_backoff_s": 0, **extra}, ROOT)


def test_http_judge_posts_a_chat_completion_with_the_key_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("JUDGE_API_KEY", "sk-test-123")
    # the fake judge prefers whichever answer offers a replacement, wherever it is shown
    server.decide = lambda body: "1" if "replacement" in body["messages"][-1]["content"].split("Answer 2:")[0] else "2"
    judge = http_judge(server, api_key_env="JUDGE_API_KEY", max_tokens=3)
    assert judge.name == f"http:judge-1@{server.url}"
    assert judge_pair(judge, PROMPT, GENERIC, GOOD) == PairJudgment("b", SECOND, FIRST)

    assert len(server.requests) == 2
    first = server.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["headers"]["Authorization"] == "Bearer sk-test-123"
    assert first["headers"]["Content-Type"] == "application/json"
    body = first["body"]
    assert (body["model"], body["temperature"], body["max_tokens"]) == ("judge-1", 0, 3)
    assert [m["role"] for m in body["messages"]] == ["system", "user"] and QUESTION in body["messages"][1]["content"]
    # both orders were asked
    assert server.answers_shown(0)[0].endswith(GENERIC[0]["content"])
    assert server.answers_shown(1)[0].endswith(GOOD[0]["content"])
    assert "sk-test-123" not in judge.name


def test_http_judge_without_a_key_sends_no_authorization_and_a_biased_judge_gives_no_pair(server):
    server.decide = lambda body: "1"
    assert judge_pair(http_judge(server), PROMPT, GOOD, GENERIC) == PairJudgment(None, FIRST, FIRST)
    assert all("Authorization" not in r["headers"] for r in server.requests)


def test_http_judge_retries_429_and_5xx_then_succeeds(server):
    server.script = [(500, {"error": "overloaded"}), (429, {"error": "slow down"}), (503, "")]
    server.decide = lambda body: "2"
    assert http_judge(server).prefer(PROMPT, GOOD, GENERIC) == SECOND
    assert len(server.requests) == 4
    assert all(r["body"] == server.requests[0]["body"] for r in server.requests)


def test_http_judge_gives_up_after_max_retries_naming_the_url(server):
    server.script = [(500, {"error": "down"})] * 3
    with pytest.raises(RlopsError, match=r"chat/completions failed after 3 attempts: HTTP 500") as e:
        http_judge(server, max_retries=2).prefer(PROMPT, GOOD, GENERIC)
    assert server.url in str(e.value) and len(server.requests) == 3 and "server is up" in e.value.hint


def test_http_judge_does_not_retry_a_client_error(server):
    server.script = [(401, {"error": "bad key"})]
    with pytest.raises(RlopsError, match="answered HTTP 401") as e:
        http_judge(server).prefer(PROMPT, GOOD, GENERIC)
    assert len(server.requests) == 1 and "api_key_env" in e.value.hint


@pytest.mark.parametrize("content", ["Both are fine.", "", None, "12", "I prefer 1 or 2"])
def test_an_unparseable_reply_is_a_tie_and_is_counted(server, content):
    server.decide = lambda body: content
    judge = http_judge(server)
    assert judge_pair(judge, PROMPT, GOOD, GENERIC) == PairJudgment(None, TIE, TIE)
    assert judge.unparsed == 2


@pytest.mark.parametrize("content, said", [("2", SECOND), ("**1**", FIRST), ("Answer 2.", SECOND), (" 1\n", FIRST)])
def test_replies_starting_with_the_digit_are_read(server, content, said):
    server.decide = lambda body: content
    assert http_judge(server).prefer(PROMPT, GOOD, GENERIC) == said


@pytest.mark.parametrize("body, message", [("<html>hi</html>", "not JSON"), ({"data": []}, "did not answer a chat")])
def test_a_reply_that_is_not_a_chat_completion_is_an_error(server, body, message):
    server.script = [(200, body)]
    with pytest.raises(RlopsError, match=message) as e:
        http_judge(server).prefer(PROMPT, GOOD, GENERIC)
    assert server.url in str(e.value)


def test_an_unreachable_or_slow_endpoint_is_an_error_naming_the_url(server):
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    judge = build_judge({"type": "http", "url": url, "model": "m", "max_retries": 1, "retry_backoff_s": 0}, ROOT)
    with pytest.raises(RlopsError, match=f"{url}/chat/completions failed after 2 attempts"):
        judge.prefer(PROMPT, GOOD, GENERIC)

    server.delay_s = 0.5
    with pytest.raises(RlopsError, match="timed out"):
        http_judge(server, timeout_s=0.1, max_retries=0).prefer(PROMPT, GOOD, GENERIC)


# ---- transformers: a tiny random Llama with the demo tokenizer, made by the base stage's own code ----------------

@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, str]:
    from rlops.train.parent import materialize

    model = yaml.safe_load((ROOT / "pipelines/conf/model/tiny.yaml").read_text())
    root = tmp_path_factory.mktemp("judge-repo")
    materialize({"model": model, "seed": 0}, ROOT, root / "artifacts/judge")
    return root, "artifacts/judge"


def test_transformers_judge_compares_next_token_logits_deterministically_in_both_orders(tiny_model):
    root, rel = tiny_model
    judge = build_judge({"type": "transformers", "model": rel}, root)
    assert judge.name == f"transformers:{rel}"
    forward, backward = judge.margin(PROMPT, GOOD, GENERIC), judge.margin(PROMPT, GENERIC, GOOD)
    # the order matters to the model (the prompts differ), and the same question always gets the same answer
    assert forward != backward
    assert judge.margin(PROMPT, GOOD, GENERIC) == forward
    verdict = judge_pair(judge, PROMPT, GOOD, GENERIC)
    assert verdict == judge_pair(judge, PROMPT, GOOD, GENERIC)
    assert verdict.forward == (FIRST if forward > 0 else SECOND)
    assert verdict.backward == (FIRST if backward > 0 else SECOND)
    assert verdict.winner == {(FIRST, SECOND): "a", (SECOND, FIRST): "b"}.get((verdict.forward, verdict.backward))

    # a margin wider than any difference in log-probability makes every verdict a tie
    wide = build_judge({"type": "transformers", "model": rel, "tie_margin": abs(forward) + abs(backward) + 1}, root)
    assert judge_pair(wide, PROMPT, GOOD, GENERIC) == PairJudgment(None, TIE, TIE)
    assert all(judge.prefer(PROMPT, a, b) in PREFERENCES for a, b in [(GOOD, RUDE), (RUDE, GENERIC)])


# ---- judge types are components: a new one is a settings model, a builder and a register call -------------------

def test_a_judge_type_registered_here_is_built_checked_and_accepted_by_params(monkeypatch):
    from typing import Literal

    from pydantic import Field

    from rlops import components
    from rlops.extract.judges import JudgeConfig, judge_schema

    class Always(JudgeConfig):
        answer: Literal["first", "second", "tie"] = Field(description="what it always answers")

    class AlwaysJudge:
        def __init__(self, answer):
            self.name, self.answer = f"always:{answer}", answer

        def prefer(self, prompt, first, second):
            return self.answer

    monkeypatch.setitem(components._REGISTERED, "judge", dict(components._REGISTERED["judge"]))
    components.register(components.Component("judge", "always", "answers the same whatever it is shown", "nothing",
                                             "a fixed preference", function=lambda s, root: AlwaysJudge(s.answer),
                                             settings=Always))
    judge = build_judge({"type": "always", "answer": "first"}, ROOT)
    assert judge_pair(judge, PROMPT, GOOD, RUDE).winner is None  # position bias yields no pair
    found = problems({"type": "always", "answer": "1", "extra": 2})
    assert "must be one of 'first', 'second' or 'tie'" in found["extract.judge.answer"]
    assert "unknown key for a always judge type" in found["extract.judge.extra"]
    assert "always" in judge_schema()["properties"]["type"]["enum"]
    assert "use one of rubric, transformers, http, always" in problems({"type": "gpt"})["extract.judge.type"]


def test_params_refuse_a_judge_type_that_is_not_registered():
    from rlops.extract.params import _judge

    said = []
    assert _judge({"type": "gpt", "max_pairs": 1, "min_gap": 0.1}, lambda f, m: said.append((f, m))) is None
    assert said == [("extract.judge.type", "'gpt' is not a judge type; use one of none, rubric, transformers, http")]


def test_rlops_validate_checks_a_judge_s_keys_from_the_registry(project, capsys):
    from rlops.cli import main

    repo, _ = project
    spec = repo / "specs/cycles/0001-damaged-orders.yaml"
    text = spec.read_text(encoding="utf-8").replace(
        "  edit_min_chars: 8\n", "  edit_min_chars: 8\n  judge: {type: http, model: judge-1, timeout: 3}\n")
    spec.write_text(text, encoding="utf-8")
    assert main(["validate", "--root", str(repo), str(spec)]) == 2
    out = capsys.readouterr().out
    line = text.splitlines().index("  judge: {type: http, model: judge-1, timeout: 3}") + 1
    assert f"0001-damaged-orders.yaml:{line}: extract.judge.timeout: key 'timeout' is not allowed here: a http judge " \
           "type's keys are type, url, model, api_key_env, timeout_s" in out
    assert f"0001-damaged-orders.yaml:{line}: extract.judge.url: missing required key 'url'" in out
    spec.write_text(text.replace("{type: http, model: judge-1, timeout: 3}", "{type: rubric, rubric: support-quality, "
                                 "max_pairs: 20}"), encoding="utf-8")
    assert main(["validate", "--root", str(repo), str(spec)]) == 0
