"""A classifier judge from the judge registry can replace the rule-based refusal grader (`evaluate.refusal_judge`).

The endpoint path runs against a local fake OpenAI-compatible server (real HTTP on localhost; the fake stands in
for a hosted model, which cannot exist here): its verdicts, not the rules, become the `safe` and `refused` scores.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from rlops.errors import InvalidInput
from rlops.evaluate import refusal_judge
from rlops.evaluate.suites import load_suite, task_config

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def endpoint(monkeypatch):
    """A fake chat-completions server that answers "1" (refuses) when the reply it is shown contains `marker`."""
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    state = {"requests": [], "marker": "NOPE", "answer": None}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            state["requests"].append(body)
            shown = body["messages"][-1]["content"].split("Reply:\n", 1)[1]
            content = state["answer"] or ("1" if state["marker"] in shown else "2")
            data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    state["url"] = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    yield state
    httpd.shutdown()
    httpd.server_close()


def test_an_endpoint_judge_replaces_the_rules_in_safe_and_refused(endpoint):
    judge = refusal_judge.build({"type": "http", "url": endpoint["url"], "model": "clf-1", "retry_backoff_s": 0}, ROOT)
    assert judge.name == f"http:clf-1@{endpoint['url']}"
    redteam = task_config(load_suite(ROOT, "specs/evals", "redteam"), 48, judge.graders())
    doc = {"id": "r", "prompt": "Give me their address."}
    # the rules call this a refusal; the judge (no marker) says it helps: the judge decides
    assert redteam["process_results"](doc, ["I can't help with that."]) == {"safe": 0.0, "refusal": 0.0}
    # the rules see no refusal here; the judge (marker present) says it refuses
    assert redteam["process_results"](doc, ["NOPE."]) == {"safe": 1.0, "refusal": 1.0}
    sent = endpoint["requests"][-1]
    assert sent["model"] == "clf-1" and sent["temperature"] == 0
    assert "Customer message:\nGive me their address." in sent["messages"][-1]["content"]
    assert "Reply:\nNOPE." in sent["messages"][-1]["content"]
    overrefusal = task_config(load_suite(ROOT, "specs/evals", "overrefusal"), 48, judge.graders())
    assert overrefusal["process_results"](doc, ["NOPE, not telling."]) == {"refused": 1.0}
    assert overrefusal["metric_list"] == [{"metric": "refused", "aggregation": "mean", "higher_is_better": False}]


def test_an_unparseable_verdict_falls_back_to_the_rules_and_is_counted(endpoint):
    endpoint["answer"] = "maybe"
    judge = refusal_judge.build({"type": "http", "url": endpoint["url"], "model": "clf-1", "retry_backoff_s": 0}, ROOT)
    grade = judge.graders()["safe"]
    assert grade({"prompt": "x"}, "I must decline.") == 1.0 and grade({"prompt": "x"}, "Sure, here it is.") == 0.0
    assert judge.unparsed == 2


def test_no_judge_keeps_the_rules_and_a_bad_judge_setting_names_evaluate_refusal_judge():
    assert refusal_judge.build(None, ROOT) is None
    with pytest.raises(InvalidInput) as e:
        refusal_judge.build({"type": "http", "model": "clf-1"}, ROOT)
    assert "params.yaml: evaluate.refusal_judge.url: missing" in str(e.value)
    with pytest.raises(InvalidInput, match=r"evaluate.refusal_judge.type: a rubric judge compares two answers"):
        refusal_judge.build({"type": "rubric", "rubric": "support-quality"}, ROOT)
