"""`rlops deploy render`, checked against what the engines publish: KServe's InferenceService CRD schema and vLLM's
`vllm serve` argument names (both vendored in tests/data/serving/ with their source and commit)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from rlops.cli import main
from rlops.registry.manifest import Manifest, manifest_path
from rlops.serve.render import kserve, vllm_args

DATA = Path(__file__).parent / "data" / "serving"
KSERVE = json.loads((DATA / "kserve_inferenceservice_v1beta1.schema.json").read_text())
VLLM = json.loads((DATA / "vllm_serve_flags.json").read_text())


def vllm_parser() -> argparse.ArgumentParser:
    """`vllm serve`'s parser, for the flags render uses, as vLLM declares them (exit_on_error off: errors raise)."""
    p = argparse.ArgumentParser(prog="vllm serve", exit_on_error=False, allow_abbrev=False)
    p.add_argument("model_tag")
    for flag, spec in VLLM["flags"].items():
        kwargs = {k: v for k, v in spec.items() if k in ("nargs", "choices", "action")}
        if "type" in spec:
            kwargs["type"] = {"int": int, "str": str}[spec["type"]]
        p.add_argument(flag, **kwargs)
    return p


def parse_lora(item: str) -> tuple[str, str]:
    """vLLM's LoRAParserAction: `name=path` when there is a '=' and no ','; otherwise it must be JSON."""
    if "=" in item and "," not in item:
        name, path = item.split("=")  # exactly one '=': vLLM unpacks two
        return name, path
    data = json.loads(item)
    return data["name"], data["path"]


MANIFESTS = [
    Manifest("support-agent", production="base"),
    Manifest("support-agent", production="v2"),
    Manifest("support-agent", production="v2", canary="v3", canary_fraction=0.05),
    Manifest("support-agent", production="v2", shadow="v3"),
]


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: "-".join(f"{k}={v}" for k, v in m.stages().items()))
def test_rendered_inference_service_validates_against_kserve_s_crd_schema(manifest):
    isvc = kserve(manifest, "s3://models", "bf16")
    jsonschema.validate(isvc, KSERVE)
    predictor = isvc["spec"]["predictor"]
    served = manifest.canary or manifest.production
    assert predictor["model"]["storageUri"] == f"s3://models/support-agent/{served}"
    if manifest.canary:
        assert predictor["canaryTrafficPercent"] == 5
    else:
        assert "canaryTrafficPercent" not in predictor


def test_the_vendored_schema_catches_a_misspelt_or_mistyped_field():
    isvc = kserve(MANIFESTS[2], "s3://models", "bf16")
    predictor = isvc["spec"]["predictor"]
    predictor["canaryTraficPercent"] = predictor.pop("canaryTrafficPercent")
    with pytest.raises(jsonschema.ValidationError, match="canaryTraficPercent"):
        jsonschema.validate(isvc, KSERVE)
    predictor["canaryTrafficPercent"] = "5%"
    del predictor["canaryTraficPercent"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(isvc, KSERVE)


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda m: "-".join(f"{k}={v}" for k, v in m.stages().items()))
def test_rendered_vllm_arguments_parse_with_vllm_s_flags(manifest):
    args = vllm_args(manifest, "/models/base", "/models/adapters", "bf16", 8)
    assert args[0] == "serve"
    ns = vllm_parser().parse_args(args[1:])
    assert ns.model_tag == "/models/base" and ns.dtype == "bfloat16"
    lora = dict(parse_lora(item) for item in ns.lora_modules or [])
    expected = {f"support-agent-{v}": f"/models/adapters/support-agent/{v}"
                for v in dict.fromkeys(manifest.stages().values()) if v != "base"}
    assert lora == expected
    assert ns.enable_lora == bool(expected)
    if expected:
        assert ns.max_loras == len(expected) and ns.max_lora_rank == 8


def test_an_unknown_vllm_flag_is_refused_by_the_parser():
    with pytest.raises((argparse.ArgumentError, SystemExit)):
        vllm_parser().parse_args(["/m", "--enable-loras"])


def test_deploy_render_writes_the_three_files_from_the_manifest(tmp_path, capsys):
    (tmp_path / "deployments").mkdir()
    (tmp_path / manifest_path("support-agent")).write_text(
        Manifest("support-agent", production="v1", canary="v2", canary_fraction=0.1).text())
    assert main(["deploy", "render", "--root", str(tmp_path), "--out", "out", "--precision", "fp16"]) == 0
    isvc = yaml.safe_load((tmp_path / "out/kserve.yaml").read_text())
    jsonschema.validate(isvc, KSERVE)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    args = (tmp_path / "out/vllm.args").read_text().split()
    assert vllm_parser().parse_args(args[1:]).dtype == "float16"
    cfg = yaml.safe_load((tmp_path / "out/rlops-serve.yaml").read_text())
    assert cfg["versions"] == {"v1": {"model": "support-agent-v1"}, "v2": {"model": "support-agent-v2"}}
    from rlops.serve.config import load

    assert load(tmp_path / "out/rlops-serve.yaml", {}).target("v2").model == "support-agent-v2"
    assert "wrote out/kserve.yaml" in capsys.readouterr().out
