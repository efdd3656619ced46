"""`rlops serve --backend transformers` on a tiny random Llama (the demo's tokenizer), made by the base stage's own
code, over real HTTP with the openai client."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
import yaml

from rlops.observe.recorder import read_records
from rlops.registry.manifest import Manifest, manifest_path
from rlops.serve import server as serve_server
from rlops.serve.config import load as load_settings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def tiny_repo(tmp_path_factory) -> Path:
    from rlops.train.parent import materialize

    model = yaml.safe_load((ROOT / "pipelines/conf/model/tiny.yaml").read_text())
    root = tmp_path_factory.mktemp("serve-repo")
    materialize({"model": model, "seed": 0}, ROOT, root / "artifacts/base/model")  # where `base` is served from
    (root / "deployments").mkdir()
    (root / manifest_path("support-agent")).write_text(Manifest("support-agent").text())
    return root


@pytest.mark.slow  # ~30 s: the tiny model's tokenizer comes from the demo's GGUF file
def test_transformers_backend_answers_streams_and_records_deterministically(tiny_repo):
    cfg = load_settings(None, {"backend": "transformers", "fsync": False,
                               "generation": {"max_new_tokens": 6, "temperature": 0.0, "seed": 0}})
    s = serve_server.start(cfg, tiny_repo)
    try:
        client = openai.OpenAI(base_url=s.url, api_key="unused", max_retries=0)
        messages = [{"role": "user", "content": "My parcel arrived damaged."}]
        raw = client.chat.completions.with_raw_response.create(model="x", messages=messages, user="u-1")
        first = raw.parse()
        assert raw.headers["x-rlops-version"] == "base"
        again = client.chat.completions.create(model="x", messages=messages)
        assert first.choices[0].message.content == again.choices[0].message.content  # greedy: the same answer
        assert 0 < first.usage.completion_tokens <= 6
        streamed = "".join(c.choices[0].delta.content or "" for c in
                           client.chat.completions.create(model="x", messages=messages, stream=True) if c.choices)
        assert streamed == first.choices[0].message.content
        s.service.flush()
        recs = list(read_records(tiny_repo / "data/production", "interactions"))
        assert [r["agent"]["version"] for r in recs] == ["base"] * 3
        assert recs[0]["interaction_id"] == raw.headers["x-rlops-interaction-id"]
        assert recs[2]["output_messages"][0]["content"] == streamed
    finally:
        serve_server.stop(s)


def test_a_version_without_a_checkpoint_is_refused_at_start_with_the_fix(tmp_path):
    from rlops.errors import RlopsError

    (tmp_path / "deployments").mkdir()
    (tmp_path / manifest_path("support-agent")).write_text(Manifest("support-agent", production="v4").text())
    cfg = load_settings(None, {"backend": "transformers", "fsync": False})
    with pytest.raises(RlopsError, match="no checkpoint at registry/support-agent/v4/model") as e:
        serve_server.start(cfg, tmp_path)
    assert "dvc pull registry/support-agent/v4/model.dvc" in e.value.hint
