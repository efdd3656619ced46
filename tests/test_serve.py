"""`rlops serve` over real HTTP on localhost, driven by the `openai` client. The upstream it proxies is a second
local server (tests/fake_openai.py), standing in for the endpoint a team already runs."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest
from fake_openai import FakeOpenAI

from rlops.observe.recorder import read_records
from rlops.registry.manifest import Manifest, manifest_path
from rlops.serve import server as serve_server
from rlops.serve.config import load as load_settings
from rlops.serve.routing import bucket

POLICY = "support-agent"


def write_manifest(root: Path, **stages) -> None:
    path = root / manifest_path(POLICY)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(Manifest(POLICY, **stages).text(), encoding="utf-8")


@pytest.fixture
def upstream():
    fake = FakeOpenAI()
    yield fake
    fake.close()


@pytest.fixture
def world(tmp_path, upstream):
    """A repository folder with a manifest, and a function that starts `rlops serve` on it (stopped at the end)."""
    started = []

    def start(**overrides):
        cfg = load_settings(None, {"base_url": upstream.url, "reload_poll_s": 0.05, "fsync": False, **overrides})
        s = serve_server.start(cfg, tmp_path)
        started.append(s)
        return s, openai.OpenAI(base_url=s.url, api_key="unused", max_retries=0)

    write_manifest(tmp_path)
    yield tmp_path, start
    for s in started:
        serve_server.stop(s)


def interactions(root: Path) -> list[dict]:
    return list(read_records(root / "data/production", "interactions"))


def feedback(root: Path) -> list[dict]:
    return list(read_records(root / "data/production", "feedback"))


def ask(client, text: str, user: str | None = None, **kw):
    raw = client.chat.completions.with_raw_response.create(
        model="anything", messages=[{"role": "user", "content": text}], **({"user": user} if user else {}), **kw)
    return raw.headers, raw.parse()


def test_production_answers_and_every_interaction_is_recorded_with_version_and_stage(world):
    root, start = world
    write_manifest(root, production="v3")
    s, client = start(fsync=True)  # the writer's group commit (Recorder.sync) runs here
    headers, answer = ask(client, "Where is my order?", user="u-1")
    assert answer.choices[0].message.content == "[v3] echo: Where is my order?"
    assert headers["x-rlops-version"] == "v3" and headers["x-rlops-stage"] == "production"
    s.service.flush()
    [rec] = interactions(root)
    assert rec["interaction_id"] == headers["x-rlops-interaction-id"]
    assert rec["agent"] == {"name": POLICY, "version": "v3", "stage": "production"}
    assert rec["user"] == "u-1"
    assert rec["output_messages"] == [{"role": "assistant", "content": "[v3] echo: Where is my order?"}]
    assert rec["usage"] == {"input_tokens": 7, "output_tokens": 5} and rec["outcome"]["status"] == "ok"


def test_canary_takes_its_fraction_of_users_and_each_user_stays_where_they_were_put(world, upstream):
    root, start = world
    write_manifest(root, production="v1", canary="v2", canary_fraction=0.2)
    s, client = start()
    users = [f"user-{i}" for i in range(300)]
    first = {u: ask(client, "hi", user=u)[0]["x-rlops-version"] for u in users}
    share = sum(v == "v2" for v in first.values()) / len(users)
    assert 0.2 - 0.07 <= share <= 0.2 + 0.07  # ~3.2 standard deviations of a binomial(300, 0.2) share
    assert all(first[u] == ("v2" if bucket(POLICY, u) < 0.2 else "v1") for u in users)
    for u in users[:40]:  # sticky: asked again (the header as the key this time), the same version answers
        headers, _ = ask(client, "again", extra_headers={"X-Rlops-User": u})
        assert headers["x-rlops-version"] == first[u]
        assert headers["x-rlops-stage"] == ("canary" if first[u] == "v2" else "production")
    headers, _ = ask(client, "who am I")  # no user key: production, never a coin flip
    assert headers["x-rlops-version"] == "v1"
    s.service.flush()
    recs = interactions(root)
    assert {(r["agent"]["version"], r["agent"]["stage"]) for r in recs} == {("v1", "production"), ("v2", "canary")}


def test_the_shadow_answers_in_the_background_is_logged_and_never_returned(world, upstream):
    root, start = world
    write_manifest(root, production="v1", shadow="v2")
    s, client = start()
    headers, answer = ask(client, "refund please", user="u-9")
    assert answer.choices[0].message.content == "[v1] echo: refund please"
    s.service.flush()
    recs = {r["agent"]["stage"]: r for r in interactions(root)}
    assert set(recs) == {"production", "shadow"}
    assert recs["shadow"]["agent"]["version"] == "v2"
    assert recs["shadow"]["output_messages"][0]["content"] == "[v2] echo: refund please"
    assert recs["shadow"]["shadow_of"] == headers["x-rlops-interaction-id"]
    assert recs["shadow"]["input_messages"] == recs["production"]["input_messages"]
    assert sorted(upstream.models) == ["v1", "v2"]


def test_a_slow_shadow_never_delays_the_answer(world, upstream, tmp_path):
    root, start = world
    slow = FakeOpenAI(delay_s=1.0)
    try:
        write_manifest(root, production="v1", shadow="v2")
        s, client = start(versions={"v2": {"base_url": slow.url}})
        ask(client, "quick")
        # the answer came back while the shadow was still running: its record is not there yet
        assert not any(r["agent"]["stage"] == "shadow" for r in interactions(root))
        s.service.flush()
        assert any(r["agent"]["stage"] == "shadow" for r in interactions(root))
    finally:
        slow.close()


def test_streaming_is_relayed_and_recorded_whole(world):
    root, start = world
    s, client = start()
    with client.chat.completions.with_streaming_response.create(
            model="x", stream=True, messages=[{"role": "user", "content": "stream me please"}]) as raw:
        iid = raw.headers["x-rlops-interaction-id"]
        pieces = [c.choices[0].delta.content for c in raw.parse() if c.choices and c.choices[0].delta.content]
    assert len(pieces) > 1 and "".join(pieces) == "[base] echo: stream me please"
    s.service.flush()
    [rec] = interactions(root)
    assert rec["interaction_id"] == iid
    assert rec["output_messages"] == [{"role": "assistant", "content": "[base] echo: stream me please"}]
    assert rec["usage"] == {"input_tokens": 7, "output_tokens": 5}


TOOLS = [{"type": "function", "function": {"name": "lookup_order", "description": "Find an order",
                                           "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}}}}]


@pytest.mark.parametrize("stream", [False, True])
def test_tool_calls_pass_through_both_ways(world, stream):
    root, start = world
    s, client = start()
    messages = [{"role": "user", "content": "use a tool to find A-17"}]
    if stream:
        chunks = list(client.chat.completions.create(model="x", messages=messages, tools=TOOLS, stream=True))
        calls = [tc for c in chunks if c.choices for tc in (c.choices[0].delta.tool_calls or [])]
        assert calls[0].function.name == "lookup_order"
        assert "".join(tc.function.arguments for tc in calls) == '{"order_id": "A-17"}'
    else:
        answer = client.chat.completions.create(model="x", messages=messages, tools=TOOLS)
        call = answer.choices[0].message.tool_calls[0]
        assert (call.function.name, call.function.arguments) == ("lookup_order", '{"order_id": "A-17"}')
    s.service.flush()
    [rec] = interactions(root)
    assert rec["tool_definitions"] == TOOLS
    assert rec["output_messages"][0]["tool_calls"] == [
        {"id": "call_1", "type": "function", "function": {"name": "lookup_order", "arguments": '{"order_id": "A-17"}'}}]
    # the tool's result comes back in the next request and is recorded as a tool message
    follow = messages + [{"role": "assistant", "content": None, "tool_calls": rec["output_messages"][0]["tool_calls"]},
                         {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'}]
    client.chat.completions.create(model="x", messages=follow, tools=TOOLS)
    s.service.flush()
    assert interactions(root)[-1]["input_messages"][-1] == {"role": "tool", "content": '{"status": "shipped"}',
                                                           "tool_call_id": "call_1"}


@dataclass
class Reply:
    status_code: int
    body: bytes
    headers: dict

    def json(self):
        return json.loads(self.body)


def post(url: str, body, headers=None) -> Reply:
    """A raw POST (urllib): what a client that is not the openai library sends, malformed bodies included."""
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return Reply(r.status, r.read(), {k.lower(): v for k, v in r.headers.items()})
    except urllib.error.HTTPError as e:
        return Reply(e.code, e.read(), {k.lower(): v for k, v in e.headers.items()})


def test_feedback_is_recorded_once_per_idempotency_key(world):
    root, start = world
    s, client = start()
    headers, _ = ask(client, "my parcel is damaged", user="u-2")
    iid = headers["x-rlops-interaction-id"]
    event = {"interaction_id": iid, "actor": "customer:u-2", "kind": "rating", "rating": {"value": 4, "scale": [1, 5]}}
    first = post(f"{s.url}/feedback", event, {"Idempotency-Key": "k-1"})
    again = post(f"{s.url}/feedback", event, {"Idempotency-Key": "k-1"})
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    other = post(f"{s.url}/feedback", {**event, "rating": {"value": 1, "scale": [1, 5]}}, {"Idempotency-Key": "k-1"})
    assert other.status_code == 422 and "different feedback event" in other.json()["error"]["message"]
    kinds = [
        {"kind": "edit", "actor": "staff:ann", "edit": {"output_messages": [{"role": "assistant", "content": "Sorry!"}]}},
        {"kind": "implicit", "actor": "customer:u-2", "implicit": {"action": "copy"}},
        {"kind": "pairwise", "actor": "customer:u-2", "pairwise": {"chosen_id": iid, "rejected_id": "other-1"}},
    ]
    for i, extra in enumerate(kinds):
        assert post(f"{s.url}/feedback", {"interaction_id": iid, **extra}, {"Idempotency-Key": f"k-{i + 2}"}).status_code == 200
    s.service.flush()
    recs = feedback(root)
    assert [r["kind"] for r in recs] == ["rating", "edit", "implicit", "pairwise"]
    assert recs[0]["event_id"] == first.json()["event_id"] and recs[0]["idempotency_key"] == "k-1"


def test_a_repeat_after_a_restart_writes_nothing(world):
    root, start = world
    s, _ = start()
    event = {"interaction_id": "i-1", "actor": "customer:c", "kind": "implicit", "implicit": {"action": "abandon"}}
    first = post(f"{s.url}/feedback", event, {"Idempotency-Key": "k-restart"}).json()
    serve_server.stop(s)
    s2, _ = start()
    again = post(f"{s2.url}/feedback", event, {"Idempotency-Key": "k-restart"})
    assert again.status_code == 200 and again.json()["event_id"] == first["event_id"]
    s2.service.flush()
    assert len(feedback(root)) == 1


@pytest.mark.parametrize("body, field", [
    (b"{not json", ""),
    ({"messages": []}, "messages"),
    ({"messages": [{"role": "robot", "content": "hi"}]}, "messages[0].role"),
    ({"messages": [{"role": "user"}]}, "messages[0].content"),
    ({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"}, "stream"),
    ({"messages": [{"role": "user", "content": "hi"}], "user": "u" * 201}, "user"),
    ({"messages": [{"role": "user", "content": "hi"}], "tools": [{"name": "lookup_order"}]}, "tools[0]"),
])
def test_a_malformed_chat_request_is_a_400_naming_the_field_and_nothing_is_written(world, upstream, body, field):
    root, start = world
    s, _ = start()
    r = post(f"{s.url}/chat/completions", body)
    assert r.status_code == 400
    error = r.json()["error"]
    assert error["problems"] and error["problems"][0]["field"] == field and error["message"]
    s.service.flush()
    assert interactions(root) == [] and upstream.models == []


@pytest.mark.parametrize("body, field", [
    ({"actor": "customer:x", "kind": "rating", "rating": {"value": 1, "scale": [0, 1]}}, "interaction_id"),
    ({"interaction_id": "i-1", "actor": "customer:x", "kind": "stars"}, "kind"),
    ({"interaction_id": "i-1", "actor": "customer:x", "kind": "rating"}, "rating"),
    ({"interaction_id": "i-1", "actor": "nobody", "kind": "implicit", "implicit": {"action": "copy"}}, "actor"),
    ([1, 2], ""),
])
def test_malformed_feedback_is_a_400_naming_the_field_and_nothing_is_written(world, body, field):
    root, start = world
    s, _ = start()
    r = post(f"{s.url}/feedback", body, {"Idempotency-Key": "k"})
    assert r.status_code == 400
    assert field in [p["field"] for p in r.json()["error"]["problems"]]
    s.service.flush()
    assert feedback(root) == []
    # the key was not spent on the bad event: the corrected one is accepted and written
    good = {"interaction_id": "i-1", "actor": "customer:x", "kind": "rating", "rating": {"value": 1, "scale": [0, 1]}}
    assert post(f"{s.url}/feedback", good, {"Idempotency-Key": "k"}).status_code == 200
    s.service.flush()
    assert [r["idempotency_key"] for r in feedback(root)] == ["k"]


def test_the_manifest_reloads_while_requests_are_in_flight_and_none_fails(world, upstream):
    root, start = world
    upstream.delay_s = 0.05
    write_manifest(root, production="v1")
    s, client = start()
    results, errors = [], []

    def worker(n: int) -> None:
        for i in range(12):
            try:
                headers, answer = ask(client, f"q{n}-{i}", user=f"u{n}")
                results.append(headers["x-rlops-version"])
            except Exception as e:  # noqa: BLE001 - any failure is the finding
                errors.append(e)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    while len(results) < 8:
        time.sleep(0.01)
    write_manifest(root, production="v2")  # a promotion merged and pulled
    for t in threads:
        t.join()
    assert errors == []
    assert len(results) == 48 and results[0] == "v1" and results[-1] == "v2" and set(results) == {"v1", "v2"}
    assert s.service.counts["reloads"] == 1
    s.service.flush()
    assert len(interactions(root)) == 48


def test_a_broken_manifest_keeps_the_last_good_one_serving(world):
    root, start = world
    write_manifest(root, production="v1")
    s, client = start()
    (root / manifest_path(POLICY)).write_text("policy: support-agent\nproduction: [not, a, version]\n")
    for _ in range(500):  # polls for up to ~10 s (a count, not the clock: tests assert on no wall-clock time)
        if s.service.counts["reload_errors"]:
            break
        time.sleep(0.02)
    assert "production" in s.service.last_reload_error
    headers, _ = ask(client, "still there?")
    assert headers["x-rlops-version"] == "v1"


def test_the_rlops_serve_command_serves_and_reloads_on_sighup(tmp_path, upstream):
    """The real command in its own process: it starts, answers, and a SIGHUP makes it read a changed manifest."""
    import os
    import signal
    import socket
    import subprocess
    import sys

    from conftest import env_for

    write_manifest(tmp_path, production="v1")
    with socket.socket() as sock:  # a free port for the child
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    home = tmp_path / "home"
    home.mkdir()
    (tmp_path / "serve.yaml").write_text("reload_poll_s: 3600\n")  # no polling during the test: only SIGHUP reloads
    cmd = [sys.executable, "-m", "rlops.cli", "serve", "--root", str(tmp_path), "--upstream", upstream.url,
           "--port", str(port), "--model", "v2=renamed-v2", "--config", str(tmp_path / "serve.yaml")]
    child = subprocess.Popen(cmd, env=env_for(home), stderr=subprocess.PIPE, text=True)
    try:
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused", max_retries=0)
        for attempt in range(600):  # up to ~60 s for the child to start
            try:
                headers, answer = ask(client, "hello")
                break
            except openai.APIConnectionError:
                assert attempt < 599 and child.poll() is None, "rlops serve did not start"
                time.sleep(0.1)
        assert answer.choices[0].message.content == "[v1] echo: hello"
        write_manifest(tmp_path, production="v2")
        os.kill(child.pid, signal.SIGHUP)
        for _ in range(400):  # up to ~20 s
            if ask(client, "hello")[0]["x-rlops-version"] == "v2":
                break
            time.sleep(0.05)
        assert ask(client, "hello")[0]["x-rlops-version"] == "v2", "SIGHUP did not reload the manifest"
        assert ask(client, "hello")[1].choices[0].message.content == "[renamed-v2] echo: hello"  # --model mapped it
    finally:
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
    assert "manifest changed" in err
    assert {r["agent"]["version"] for r in interactions(tmp_path)} == {"v1", "v2"}


def test_a_stuck_log_writer_never_blocks_a_request_and_overflow_is_counted(world):
    root, start = world
    s, _ = start(queue_size=2)
    client = openai.OpenAI(base_url=s.url, api_key="unused", max_retries=0, timeout=10)  # a request that waited fails
    entered, release = threading.Event(), threading.Event()
    real = s.service.records.recorder.record_interaction

    def stuck(record):  # a disk that stops answering
        entered.set()
        release.wait()
        return real(record)

    s.service.records.recorder.record_interaction = stuck
    try:
        versions = [ask(client, "q0")[0]["x-rlops-version"]]
        assert entered.wait(10)  # the writer holds the first record and is stuck
        versions += [ask(client, f"q{i}")[0]["x-rlops-version"] for i in range(1, 6)]
        assert versions == ["base"] * 6  # answered although nothing is written
        assert s.service.status()["records_dropped"] == 3  # one held by the writer, two queued, three dropped
        assert interactions(root) == []
    finally:
        release.set()
    s.service.flush()
    status = s.service.status()
    assert status["records_written"] + status["records_dropped"] == 6
    assert len(interactions(root)) == status["records_written"]


def test_serving_through_the_upstream_backend_imports_nothing_heavy(tmp_path, upstream):
    """A proxy in front of an endpoint needs no torch: a fresh interpreter serves and answers one request."""
    import subprocess
    import sys

    from conftest import env_for

    write_manifest(tmp_path, production="v1")
    probe = f"""
import json, sys, urllib.request
from pathlib import Path
from rlops.serve import server
from rlops.serve.config import load
s = server.start(load(None, {{"base_url": {upstream.url!r}, "fsync": False}}), Path({str(tmp_path)!r}))
req = urllib.request.Request(s.url + "/chat/completions", method="POST", headers={{"Content-Type": "application/json"}},
                             data=json.dumps({{"messages": [{{"role": "user", "content": "hi"}}]}}).encode())
answer = json.loads(urllib.request.urlopen(req).read())["choices"][0]["message"]["content"]
server.stop(s)
heavy = sorted(m for m in ("torch", "transformers", "trl", "lm_eval", "dvc") if m in sys.modules)
print(json.dumps({{"answer": answer, "heavy": heavy}}))
"""
    home = tmp_path / "home"
    home.mkdir()
    p = subprocess.run([sys.executable, "-c", probe], env=env_for(home), text=True, capture_output=True, timeout=60)
    result = json.loads(p.stdout.strip().splitlines()[-1])
    assert result == {"answer": "[v1] echo: hi", "heavy": []}, p.stderr


def test_an_upstream_error_reaches_the_caller_as_it_is_and_nothing_is_recorded(world):
    root, start = world
    write_manifest(root, production="v1")
    s, client = start(versions={"v1": {"model": "overloaded"}})
    with pytest.raises(openai.APIStatusError) as e:
        ask(client, "hello")
    assert e.value.status_code == 503 and "model overloaded" in str(e.value)
    for stream in (True, False):  # an endpoint that is not there: 502 naming it
        s2, client2 = start(base_url="http://127.0.0.1:9/v1", logs=f"logs-{stream}")  # one Recorder per folder
        with pytest.raises(openai.APIStatusError) as e:
            client2.chat.completions.create(model="x", messages=[{"role": "user", "content": "hi"}], stream=stream)
        assert e.value.status_code == 502 and "127.0.0.1:9" in str(e.value)
    s.service.flush()
    assert interactions(root) == [] and s.service.counts["backend_errors"] == 1


def test_a_backend_registered_by_a_plug_in_is_served_by_name(world):
    from rlops.components import Component, register
    from rlops.serve.backends import completion

    class Canned:  # a plug-in's backend: answers every version with the same text
        def __init__(self, cfg, root):
            pass

        def complete(self, version, body, auth=None):
            return completion(version, f"canned {version}", 1, 2)

        def stream(self, version, body, auth=None):
            raise NotImplementedError

        def close(self):
            pass

    register(Component("serve_backend", "test-canned", "answers with canned text", reads="nothing",
                       writes="chat completions", function=Canned))
    root, start = world
    s, client = start(backend="test-canned")
    assert ask(client, "hi")[1].choices[0].message.content == "canned base"
    with pytest.raises(Exception, match="not a serving backend; use one of: upstream, transformers, vllm, test-canned"):
        load_settings(None, {"backend": "nope"})


@pytest.mark.parametrize("fraction", [0, 1.5])
def test_a_canary_fraction_outside_0_to_1_is_refused_at_start_naming_the_field(world, fraction):
    from rlops.errors import InvalidInput

    root, start = world
    write_manifest(root, production="v1", canary="v2", canary_fraction=fraction)
    with pytest.raises(InvalidInput, match="canary.fraction") as e:
        start()
    assert "deployments/support-agent.yaml" in str(e.value)
