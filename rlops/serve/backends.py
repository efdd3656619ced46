"""Who answers a request for a version: one class per backend, each registered as a `serve_backend` component
(rlops/components.py) under the name `rlops serve --backend` takes.

Every backend answers in the OpenAI chat format: `complete(version, body)` returns a chat.completion object and
`stream(version, body)` yields chat.completion.chunk objects. `body` is the client's request; the backend replaces
`model` with where the version is served.

| backend        | a version is                                   | needs                                     |
|----------------|------------------------------------------------|-------------------------------------------|
| `upstream`     | a model name (and base URL) at an OpenAI-compatible endpoint | nothing beyond the standard library |
| `transformers` | a checkpoint folder, generated in-process      | the `train` extra (torch, transformers)   |
| `vllm`         | a checkpoint folder or a LoRA adapter on the base weights, in-process | `pip install vllm` on a GPU machine |
"""

from __future__ import annotations

import http.client
import json
import os
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Iterator
from urllib.parse import urlsplit

from rlops.components import Component, get, register
from rlops.errors import RlopsError
from rlops.serve.config import ServeSettings


class BackendError(RlopsError):
    """The backend could not answer; `status` and `body` go back to the client as they are (a proxy's duty)."""

    def __init__(self, status: int, body: dict, message: str):
        super().__init__(message)
        self.status, self.body = status, body


def _error(status: int, message: str) -> BackendError:
    return BackendError(status, {"error": {"message": message, "type": "backend_error"}}, message)


# -- upstream: a recording proxy in front of an OpenAI-compatible endpoint -------------------------------------


class Upstream:
    """Forwards each request to the version's endpoint over a kept-alive connection per thread."""

    def __init__(self, cfg: ServeSettings, root: Path):
        self.cfg = cfg
        self._local = threading.local()
        self.key = os.environ.get(cfg.api_key_env) if cfg.api_key_env else None
        if cfg.api_key_env and not self.key:
            raise RlopsError(f"api_key_env: the environment variable {cfg.api_key_env} is not set",
                             hint=f"export {cfg.api_key_env}=..., or leave api_key_env out to pass the caller's "
                                  "Authorization header through")

    def _where(self, version: str) -> tuple[str, str]:
        target = self.cfg.target(version)
        return (target.base_url or self.cfg.base_url or ""), (target.model or version)

    def _connection(self, url: str) -> http.client.HTTPConnection:
        parts = urlsplit(url)
        pool = self._local.__dict__.setdefault("pool", {})
        key = (parts.scheme, parts.netloc)
        if key not in pool:
            kind = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
            pool[key] = kind(parts.netloc, timeout=self.cfg.timeout_s)
        return pool[key]

    def _post(self, version: str, body: dict, auth: str | None) -> http.client.HTTPResponse:
        base, model = self._where(version)
        url = base.rstrip("/") + "/chat/completions"
        data = json.dumps({**body, "model": model}).encode()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if self.key or auth:
            headers["Authorization"] = f"Bearer {self.key}" if self.key else auth  # type: ignore[assignment]
        for attempt in (0, 1):  # a kept-alive connection the server closed meanwhile: reconnect once
            conn = self._connection(base)
            try:
                conn.request("POST", urlsplit(url).path, body=data, headers=headers)
                response = conn.getresponse()
                break
            except (ConnectionError, http.client.HTTPException, OSError) as e:
                conn.close()
                self._local.pool.pop((urlsplit(base).scheme, urlsplit(base).netloc), None)
                if attempt:
                    raise _error(502, f"upstream {url} for {version}: {e}") from None
        if response.status >= 400:
            raw = response.read()
            try:
                payload = json.loads(raw)
            except ValueError:
                payload = {"error": {"message": raw.decode(errors="replace")[:500], "type": "upstream_error"}}
            raise BackendError(response.status, payload, f"upstream {url} answered {response.status}")
        return response

    def complete(self, version: str, body: dict, auth: str | None = None) -> dict:
        response = self._post(version, {**body, "stream": False}, auth)
        return json.loads(response.read())

    def stream(self, version: str, body: dict, auth: str | None = None) -> Iterator[dict]:
        response = self._post(version, {**body, "stream": True}, auth)
        try:
            while True:
                line = response.readline()
                if not line:
                    return
                line = line.strip()
                if not line.startswith(b"data:"):
                    continue
                data = line[5:].strip()
                if data == b"[DONE]":
                    response.read()  # drain, so the connection can be reused
                    return
                yield json.loads(data)
        finally:
            if not response.isclosed():
                response.close()

    def close(self) -> None:
        pass


# -- transformers: generation in-process (CPU here; cuda from config) -------------------------------------------


def checkpoint(cfg: ServeSettings, root: Path, version: str) -> Path:
    """The checkpoint folder of `version`: its configured path, the base stage's output or the registered weights."""
    from rlops import layout
    from rlops.registry.versions import version_dir

    target = cfg.target(version)
    rel = target.path or (layout.BASE_MODEL if version == "base" else f"{version_dir(cfg.policy, version)}/model")
    path = root / rel
    if not (path / "config.json").is_file():
        fix = ("run `dvc repro base` to make the base model" if version == "base" and not target.path else
               f"fetch it: `dvc pull {version_dir(cfg.policy, version)}/model.dvc`" if not target.path else
               "point versions.<version>.path at a saved checkpoint")
        raise RlopsError(f"{cfg.policy}@{version}: no checkpoint at {rel}", hint=fix)
    return path


class Transformers:
    """Loads each version once (device and precision from the settings) and generates under one lock per model."""

    def __init__(self, cfg: ServeSettings, root: Path):
        self.cfg, self.root = cfg, root
        self.models: dict[str, tuple[Any, Any, threading.Lock]] = {}
        self._loading = threading.Lock()

    def load(self, version: str) -> tuple[Any, Any, threading.Lock]:
        with self._loading:
            if version not in self.models:
                import torch
                from transformers import AutoModelForCausalLM, AutoTokenizer

                if self.cfg.device.startswith("cuda") and not torch.cuda.is_available():
                    raise RlopsError(f"device is {self.cfg.device} but torch sees no CUDA device",
                                     hint="serve with --device cpu here")
                path = checkpoint(self.cfg, self.root, version)
                dtype = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[self.cfg.precision]
                if self.cfg.device == "cuda" and torch.cuda.device_count() > 1:  # spread over every GPU (accelerate)
                    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, device_map="auto").eval()
                else:
                    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(self.cfg.device).eval()
                self.models[version] = (model, AutoTokenizer.from_pretrained(path), threading.Lock())
            return self.models[version]

    def _generate(self, version: str, body: dict, streamer: Any = None) -> tuple[list[int], int]:
        import torch

        model, tok, lock = self.load(version)
        kwargs = {"tools": body["tools"]} if body.get("tools") else {}
        messages = [{"role": m["role"], "content": m.get("content") or ""} for m in body["messages"]]
        enc = tok.apply_chat_template(messages, add_generation_prompt=True, return_dict=True, return_tensors="pt",
                                      **kwargs)
        ids = enc["input_ids"].to(model.device)
        gen = self.cfg.generation
        temperature = body.get("temperature", gen.temperature) or 0.0
        options: dict[str, Any] = {"max_new_tokens": int(body.get("max_tokens") or body.get("max_completion_tokens")
                                                         or gen.max_new_tokens),
                                   "do_sample": temperature > 0, "pad_token_id": tok.pad_token_id or tok.eos_token_id}
        if temperature > 0:
            options["temperature"] = float(temperature)
        with lock, torch.no_grad():
            torch.manual_seed(int(body.get("seed", gen.seed) or 0))
            out = model.generate(ids, attention_mask=enc["attention_mask"].to(model.device), streamer=streamer,
                                 **options)
        return out[0, ids.shape[1]:].tolist(), ids.shape[1]

    def complete(self, version: str, body: dict, auth: str | None = None) -> dict:
        new, prompt = self._generate(version, body)
        _, tok, _ = self.models[version]
        text = tok.decode(new, skip_special_tokens=True)
        return completion(version, text, prompt, len(new))

    def stream(self, version: str, body: dict, auth: str | None = None) -> Iterator[dict]:
        from transformers import TextIteratorStreamer

        _, tok, _ = self.load(version)
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        result: dict[str, Any] = {}

        def run() -> None:
            try:
                result["out"] = self._generate(version, body, streamer)
            except BaseException as e:  # reported after the stream ends
                result["error"] = e
                streamer.end()

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        yield chunk(cid, created, version, {"role": "assistant", "content": ""})
        for piece in streamer:
            if piece:
                yield chunk(cid, created, version, {"content": piece})
        worker.join()
        if "error" in result:
            raise _error(500, f"generation failed: {result['error']}")
        new, prompt = result["out"]
        yield {**chunk(cid, created, version, {}, "stop"),
               "usage": {"prompt_tokens": prompt, "completion_tokens": len(new), "total_tokens": prompt + len(new)}}

    def close(self) -> None:
        self.models.clear()


def completion(model: str, text: str, prompt_tokens: int, completion_tokens: int) -> dict:
    return {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


def chunk(cid: str, created: int, model: str, delta: dict, finish: str | None = None) -> dict:
    return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


# -- vLLM: in-process on a GPU machine (not installed or testable on CPU-only machines) --------------------------


class Vllm:
    """One vLLM engine on the base weights; a version with an `adapter` is served as a LoRA module on it."""

    def __init__(self, cfg: ServeSettings, root: Path):
        try:
            from vllm import LLM
        except ImportError:
            raise RlopsError("the vllm backend needs vLLM, which is not installed",
                             hint="on a GPU machine: pip install vllm; elsewhere use --backend transformers or "
                                  "upstream (a vLLM server you run, with `rlops deploy render` for its arguments)"
                             ) from None
        self.cfg, self.root = cfg, root
        base = checkpoint(cfg, root, "base")
        dtype = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}[cfg.precision]
        self.engine = LLM(model=str(base), dtype=dtype, enable_lora=True, seed=cfg.generation.seed)
        self.lock = threading.Lock()
        self.lora_ids: dict[str, int] = {}

    def _run(self, version: str, body: dict) -> tuple[str, int, int]:
        from vllm import SamplingParams
        from vllm.lora.request import LoRARequest

        target = self.cfg.target(version)
        lora = None
        if target.adapter:  # vLLM tells adapters apart by a positive integer id, stable for the process
            lora_id = self.lora_ids.setdefault(version, len(self.lora_ids) + 1)
            lora = LoRARequest(version, lora_id, str(self.root / target.adapter))
        gen = self.cfg.generation
        params = SamplingParams(temperature=float(body.get("temperature", gen.temperature) or 0.0),
                                max_tokens=int(body.get("max_tokens") or gen.max_new_tokens),
                                seed=int(body.get("seed", gen.seed) or 0))
        with self.lock:
            out = self.engine.chat(body["messages"], params, lora_request=lora, use_tqdm=False)[0]
        return out.outputs[0].text, len(out.prompt_token_ids), len(out.outputs[0].token_ids)

    def complete(self, version: str, body: dict, auth: str | None = None) -> dict:
        return completion(version, *self._run(version, body))

    def stream(self, version: str, body: dict, auth: str | None = None) -> Iterator[dict]:
        text, prompt, done = self._run(version, body)  # the offline engine answers whole; sent as one chunk
        cid, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        yield chunk(cid, created, version, {"role": "assistant", "content": text})
        yield {**chunk(cid, created, version, {}, "stop"),
               "usage": {"prompt_tokens": prompt, "completion_tokens": done, "total_tokens": prompt + done}}

    def close(self) -> None:
        pass


for _name, _cls, _what, _reads in (
        ("upstream", Upstream, "a recording proxy in front of an OpenAI-compatible endpoint",
         "base_url, api_key_env, timeout_s; versions.<v>.model and .base_url"),
        ("transformers", Transformers, "transformers in-process (CPU, or cuda from device)",
         "device, precision, generation; versions.<v>.path"),
        ("vllm", Vllm, "vLLM in-process on a GPU machine, versions as LoRA adapters",
         "precision, generation; the base checkpoint and versions.<v>.adapter")):
    register(Component("serve_backend", _name, _what, reads=_reads, writes="chat completions (OpenAI format)",
                       function=_cls))


def make(cfg: ServeSettings, root: Path):
    """The backend `cfg.backend` names, from the component registry (a plug-in registers its own)."""
    return get("serve_backend", cfg.backend).function(cfg, root)
