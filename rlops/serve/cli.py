"""The `rlops serve` and `rlops deploy render` commands: arguments in, one call, a line out. Standard library only
until a command runs, so `rlops --help` stays light."""

from __future__ import annotations

import argparse
from pathlib import Path

from rlops.errors import EXIT_OK, InvalidInput, Problem


def _pairs(values: list[str], option: str) -> dict[str, dict[str, str]]:
    out = {}
    for value in values:
        version, sep, name = value.partition("=")
        if not sep or not version or not name:
            raise InvalidInput([Problem("command line", None, option, f"{value!r} is not VERSION=MODEL")],
                               hint=f"e.g. {option} v2=support-agent-v2")
        out[version] = {"model": name}
    return out


def cmd_serve(args) -> int:
    from rlops.serve import config, server

    root = Path(args.root).resolve()
    overrides = {"policy": args.policy, "backend": args.backend, "base_url": args.upstream, "logs": args.logs,
                 "device": args.device, "precision": args.precision, "api_key_env": args.api_key_env,
                 "versions": _pairs(args.model, "--model")}
    cfg = config.load(Path(args.config) if args.config else None, overrides)
    server.serve_forever(cfg, root, args.host, args.port)
    return EXIT_OK


def cmd_deploy_render(args) -> int:
    from rlops.registry.manifest import load
    from rlops.serve.render import render

    root = Path(args.root).resolve()
    manifest = load(root, args.policy)
    precision = args.precision or _planned_precision(root)
    written = render(root, manifest, root / args.out, storage=args.storage, base=args.base_model,
                     adapters=args.adapters, url=args.vllm_url, precision=precision, lora_rank=args.lora_rank)
    for path in written:
        print(f"rlops deploy render: wrote {path.relative_to(root) if path.is_relative_to(root) else path}")
    return EXIT_OK


def _planned_precision(root: Path) -> str:
    """params.yaml's runtime.precision (what the cycle trained and evaluated in), fp32 when there is none."""
    import yaml

    path = root / "params.yaml"
    params = yaml.safe_load(path.read_text(encoding="utf-8")) if path.is_file() else None
    return ((params or {}).get("runtime") or {}).get("precision") or "fp32"


def add_commands(sub, common: argparse.ArgumentParser) -> None:
    p = sub.add_parser("serve", parents=[common], help="an OpenAI-compatible endpoint that serves what the manifest "
                                                       "says and records every interaction",
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       description="Serve POST /v1/chat/completions (streaming and tool calls too) for one policy as "
                                   "deployments/<policy>.yaml says: production; a canary for its fraction of users "
                                   "(sticky: by the request's `user`, else the X-Rlops-User header); a shadow that "
                                   "answers the same requests in the background, logged and never returned. Every "
                                   "answer is recorded with rlops.observe.Recorder (off the request path) with its "
                                   "version and stage; the X-Rlops-Interaction-Id response header names it for POST "
                                   "/v1/feedback (Idempotency-Key header). Reloads when the manifest changes (and on "
                                   "SIGHUP) without dropping requests.",
                       epilog="backends:\n  upstream      a recording proxy in front of an OpenAI-compatible endpoint\n"
                              "  transformers  in-process generation (the `train` extra)\n"
                              "  vllm          in-process on a GPU machine (pip install vllm)")
    p.add_argument("--config", metavar="FILE", help="a YAML file of settings (rlops/serve/config.py lists them)")
    p.add_argument("--policy", help="the policy (default: support-agent)")
    p.add_argument("--backend", help="who answers: upstream, transformers or vllm (default: upstream)")
    p.add_argument("--upstream", metavar="URL", help="upstream: the endpoint's base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--model", metavar="VERSION=NAME", action="append", default=[],
                   help="upstream/vllm: the model name a version is served as (repeatable; default: the version)")
    p.add_argument("--api-key-env", metavar="VAR", help="upstream: the variable holding its API key (default: pass "
                                                        "the caller's Authorization header through)")
    p.add_argument("--logs", metavar="DIR", help="the Recorder's folder (default: data/production)")
    p.add_argument("--device", help="transformers/vllm: cpu, cuda, cuda:N or mps (default: cpu)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"], help="transformers/vllm (default: fp32)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    p.set_defaults(func=cmd_serve)

    deploy = sub.add_parser("deploy", help="write the manifest's state as configuration for KServe or vLLM",
                            description="`rlops deploy render`: the deployment manifest as a KServe InferenceService "
                                        "(canaryTrafficPercent) and `vllm serve` arguments (versions as LoRA modules).")
    dsub = deploy.add_subparsers(dest="deploy_command", metavar="SUBCOMMAND", required=True)
    p = dsub.add_parser("render", parents=[common], help="write kserve.yaml, vllm.args and rlops-serve.yaml",
                        description="Write the manifest's state for an existing engine: kserve.yaml (an "
                                    "InferenceService, v1beta1, with canaryTrafficPercent for a canary), vllm.args "
                                    "(`vllm serve` arguments with every served version as a LoRA module) and "
                                    "rlops-serve.yaml (`rlops serve --config` in front of that vLLM). Re-render after "
                                    "each promotion.")
    p.add_argument("--policy", default="support-agent", help="the policy (default: support-agent)")
    p.add_argument("--out", default="deploy", help="output folder (default: deploy/)")
    p.add_argument("--storage", default="pvc://rlops-models", metavar="URI",
                   help="where checkpoints are, as <URI>/<policy>/<version> (default: pvc://rlops-models)")
    p.add_argument("--base-model", default="/models/base", metavar="PATH",
                   help="vLLM: the base weights the adapters apply to (default: /models/base)")
    p.add_argument("--adapters", default="/models/adapters", metavar="PATH",
                   help="vLLM: adapters as <PATH>/<policy>/<version> (default: /models/adapters)")
    p.add_argument("--vllm-url", default="http://127.0.0.1:8000/v1", metavar="URL",
                   help="rlops-serve.yaml: where that vLLM listens (default: http://127.0.0.1:8000/v1)")
    p.add_argument("--precision", choices=["fp32", "bf16", "fp16"],
                   help="the dtype served (default: params.yaml's runtime.precision)")
    p.add_argument("--lora-rank", type=int, default=8, help="vLLM --max-lora-rank (default: 8, the train default)")
    p.set_defaults(func=cmd_deploy_render)
