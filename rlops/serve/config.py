"""`rlops serve`'s settings, declared once (type, default, help): a YAML file (`--config serve.yaml`), command-line
options over it.

    # serve.yaml: a recording proxy in front of an OpenAI-compatible endpoint the team already runs
    policy: support-agent
    backend: upstream
    base_url: http://127.0.0.1:8000/v1       # where every version is served unless it names its own
    versions:                                # version -> where it is served; a version not listed is the model
      base: {model: support-agent-base}      #   of its own name at base_url
      v2: {model: support-agent-v2, base_url: http://10.0.0.7:8000/v1}
    logs: data/production                    # rlops.observe.Recorder's folder

For the transformers backend a version is a checkpoint folder: `path` (default: the base stage's
artifacts/base/model for `base`, registry/<policy>/<vN>/model for a registered version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, field_validator

from rlops import settings
from rlops.components import Settings
from rlops.errors import InvalidInput, Problem


class Target(Settings):
    """Where one version is served."""

    model: str | None = Field(None, min_length=1, description="upstream/vllm: the model name the endpoint serves "
                                                               "this version as (default: the version's name).")
    base_url: str | None = Field(None, pattern=r"^https?://", description="upstream: this version's endpoint "
                                                                           "(default: the top-level base_url).")
    path: str | None = Field(None, min_length=1, description="transformers/vllm: the checkpoint folder, relative to "
                                                             "the repository root.")
    adapter: str | None = Field(None, min_length=1, description="vllm: a LoRA adapter folder served on the base "
                                                                "model's weights.")


class Generation(Settings):
    """How the in-process backends generate; a request's own max_tokens/temperature/seed win."""

    max_new_tokens: int = Field(128, ge=1, description="Tokens generated at most, when the request sets no max_tokens.")
    temperature: float = Field(0.0, ge=0, description="0: greedy (deterministic); above 0: sampling.")
    seed: int = Field(0, description="Seed for sampling, set before every generation (reproducible answers).")


class ServeSettings(Settings):
    """`rlops serve`: one policy, served as deployments/<policy>.yaml says."""

    policy: str = Field("support-agent", min_length=1, description="The policy; its manifest is "
                                                                   "deployments/<policy>.yaml.")
    backend: str = Field("upstream", description="Who answers, a serve_backend component: upstream (an "
                                                 "OpenAI-compatible endpoint), transformers (in-process) or vllm "
                                                 "(in-process, GPU), or one a plug-in registers.")
    base_url: str | None = Field(None, pattern=r"^https?://", description="upstream: the endpoint's base URL, e.g. "
                                                                          "http://127.0.0.1:8000/v1.")
    api_key_env: str | None = Field(None, min_length=1, description="upstream: the environment variable holding its "
                                                                    "API key (default: pass the caller's "
                                                                    "Authorization header through).")
    timeout_s: float = Field(120.0, gt=0, description="upstream: seconds to wait for an answer.")
    versions: dict[str, Target] = Field(default_factory=dict, description="Version -> where it is served.")
    generation: Generation = Field(default_factory=Generation, description="transformers/vllm generation settings.")
    device: str = Field("cpu", pattern=settings.DEVICE_PATTERN, description="transformers/vllm: cpu, cuda, cuda:N "
                                                                            "or mps.")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="transformers/vllm: fp32, bf16 or fp16.")
    logs: str = Field("data/production", min_length=1, description="The Recorder's folder for interactions and "
                                                                   "feedback.")
    queue_size: int = Field(10_000, ge=1, description="Records waiting to be written at most; past it a record is "
                                                      "dropped and counted, never waited for.")
    reload_poll_s: float = Field(1.0, gt=0, description="How often the manifest's modification time is checked.")
    fsync: bool = Field(True, description="The log writer flushes each batch of records to disk (a group commit).")

    @field_validator("backend")
    @classmethod
    def _known_backend(cls, value: str) -> str:
        from rlops.components import names

        if value not in names("serve_backend"):
            raise ValueError(f"{value!r} is not a serving backend; use one of: {', '.join(names('serve_backend'))}")
        return value

    def target(self, version: str) -> Target:
        return self.versions.get(version) or Target()


def load(path: Path | None, overrides: dict[str, Any]) -> ServeSettings:
    """The settings from `path` (or the defaults) with `overrides` (the command line's, None values skipped)."""
    values: dict[str, Any] = {}
    file = str(path) if path else "command line"
    if path is not None:
        if not path.is_file():
            raise InvalidInput([Problem(str(path), None, "", "no such file")], hint="give --config an existing "
                                                                                    "YAML file, or leave it out")
        loaded = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        if not isinstance(loaded, dict):
            raise InvalidInput([Problem(str(path), None, "", "must be a mapping of settings")])
        values.update(loaded)
    extra = overrides.get("versions") or {}
    values.update({k: v for k, v in overrides.items() if v is not None and k != "versions"})
    if extra:  # `--model v2=name` adds to the file's versions (and wins for a version both name)
        found = values.get("versions") if isinstance(values.get("versions"), dict) else {}
        values["versions"] = {**found, **{k: {**(found.get(k) or {}), **v} for k, v in extra.items()}}
    typed, problems = settings.check(ServeSettings, values, file, "")
    if problems:
        problems = [Problem(p.file, p.line, p.field.lstrip("."), p.message) for p in problems]
        raise InvalidInput(problems, hint="the settings are listed in `rlops serve --help` and rlops/serve/config.py")
    assert typed is not None
    if typed.backend == "upstream" and not typed.base_url:  # then every version must name its own
        if not typed.versions or not all(t.base_url for t in typed.versions.values()):
            raise InvalidInput([Problem(file, None, "base_url", "the upstream backend needs the endpoint's URL")],
                               hint="--upstream http://HOST:PORT/v1, or base_url: in the config file")
    return typed  # type: ignore[return-value]
