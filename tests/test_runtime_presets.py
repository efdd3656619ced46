"""The runtime presets (pipelines/conf/runtime/, each naming an accelerate config in pipelines/conf/accelerate/),
`runtime.launcher` and `runtime.report_to` checks, and the checkpoint folder's key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, run

from rlops import settings
from rlops.errors import StageFailed

SPEC = "specs/cycles/0001-damaged-orders.yaml"
PRESETS = ("cpu", "cuda", "cpu-ddp", "ddp", "fsdp2", "deepspeed-zero3")


def runtime(name: str) -> dict:
    return yaml.safe_load((ROOT / f"pipelines/conf/runtime/{name}.yaml").read_text())


def test_every_runtime_preset_is_valid_and_its_accelerate_config_is_accelerate_s():
    from accelerate.commands.config.config_args import ClusterConfig

    found = sorted(p.stem for p in (ROOT / "pipelines/conf/runtime").glob("*.yaml"))
    assert sorted(PRESETS) == found
    kinds = {}
    for name in PRESETS:
        values = runtime(name)
        assert settings.problems(settings.RuntimeSettings, values) == [], name
        words = values["launcher"].split()
        if words[0] == "accelerate":
            config = ClusterConfig.from_yaml_file(ROOT / words[words.index("--config_file") + 1])
            kinds[name] = (str(config.distributed_type).split(".")[-1], config.num_processes)
    assert kinds["cpu-ddp"] == ("MULTI_GPU", 2)  # torchrun starts the two processes; use_cpu makes them gloo
    assert runtime("cpu-ddp")["device"] == "cpu"
    assert kinds["fsdp2"][0] == "FSDP" and kinds["deepspeed-zero3"][0] == "DEEPSPEED" and kinds["ddp"][0] == "MULTI_GPU"


@pytest.mark.parametrize("launcher, says", [
    ("torchrun --nproc_per_node 2", "is not a launcher: use python, or `accelerate launch --config_file"),
    ("accelerate launch --multi_gpu", "name an accelerate config with --config_file pipelines/conf/accelerate/"),
    ("accelerate launch --config_file /etc/ddp.yaml", "must be a file in pipelines/conf/accelerate/"),
])
def test_a_launcher_outside_the_presets_is_refused_with_the_fix(launcher, says):
    [(loc, _, message)] = settings.problems(settings.RuntimeSettings, runtime("cpu") | {"launcher": launcher})
    assert loc == ("launcher",) and says in message


def test_plan_refuses_a_missing_accelerate_config_and_a_bad_tracker_list_at_once(project):
    repo, env = project
    (repo / "pipelines/conf/runtime/mine.yaml").write_text(yaml.safe_dump(runtime("cpu") | {
        "launcher": "accelerate launch --config_file pipelines/conf/accelerate/nope.yaml", "report_to": ["wandb", "none"]}))
    p = run(["rlops", "plan", SPEC, "runtime=mine"], repo, env, check=False)
    assert p.returncode == 2, p.stderr
    assert "runtime.launcher: the accelerate config pipelines/conf/accelerate/nope.yaml does not exist; available: " \
           "cpu-ddp, ddp, deepspeed-zero3, fsdp2" in p.stderr
    assert "runtime.report_to: ['wandb', 'none']: list each tracker once, without none" in p.stderr


def test_a_tracker_whose_package_is_missing_names_the_pip_package(monkeypatch):
    from rlops.train import runtime as rt_module

    rt = rt_module.Runtime.from_mapping(runtime("cpu") | {"report_to": ["tensorboard", "wandb"]})
    # which trackers are installed is this machine's business: say both are missing, then that one is present
    monkeypatch.setattr(rt_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(StageFailed) as e:
        rt.trackers()
    assert "tensorboard, wandb" in str(e.value) and e.value.hint.startswith("pip install tensorboard wandb")
    assert rt_module.Runtime.from_mapping(runtime("cpu")).trackers() == []  # none: nothing to check


def test_report_to_and_checkpoints_reach_the_trl_config(tmp_path, monkeypatch):
    from trl import DPOConfig

    from rlops.train import common
    from rlops.train import runtime as rt_module
    from rlops.train.dpo import DPOSettings

    monkeypatch.setattr(rt_module.importlib.util, "find_spec", lambda name: object())  # "installed" (see above)
    (tmp_path / "start").mkdir()
    (tmp_path / "start/model.safetensors").write_bytes(b"weights")
    (tmp_path / "pairs.jsonl").write_text("{}\n")
    params = {"train": {"method": "dpo"}, "runtime": runtime("cpu"), "seed": 0}

    def config(rt_values: dict):
        rt = rt_module.Runtime.from_mapping(rt_values)
        ctx = common.TrainContext(params=params | {"runtime": rt_values}, root=tmp_path, settings=DPOSettings(),
                                  runtime=rt, seed=0, start=tmp_path / "start", inputs={"pairs": tmp_path / "pairs.jsonl"},
                                  out_dir=tmp_path / "artifacts/train")
        return common.trl_config(DPOConfig, ctx, tmp_path / "scratch")

    off = config(runtime("cpu") | {"checkpoint_steps": None})
    assert off.report_to == [] and off.save_strategy == "no" and off.output_dir == str(tmp_path / "scratch")
    on = config(runtime("cpu") | {"report_to": "mlflow", "checkpoint_steps": 3})
    assert on.report_to == ["mlflow"] and on.save_steps == 3
    assert Path(on.output_dir).parent == tmp_path / ".rlops/checkpoints"
    # the key follows what decides the weights, not where the run is watched
    watched = config(runtime("cpu") | {"report_to": "tensorboard", "checkpoint_steps": 5})
    assert watched.output_dir == on.output_dir
    other_precision = config(runtime("cpu") | {"checkpoint_steps": 3, "precision": "bf16"})
    assert other_precision.output_dir != on.output_dir
    (tmp_path / "pairs.jsonl").write_text("{}\n{}\n")
    assert config(runtime("cpu") | {"checkpoint_steps": 3}).output_dir != on.output_dir  # other data, other folder


def test_only_a_checkpoint_marked_complete_is_resumed(tmp_path):
    from rlops.train.checkpoints import COMPLETE, Checkpoints

    ck = Checkpoints(tmp_path / "run", every=2)
    assert ck.resume_from() is None  # nothing saved yet: start from step 0
    for step in (2, 4, 10):
        (ck.folder / f"checkpoint-{step}").mkdir(parents=True)
    (ck.folder / "checkpoint-2" / COMPLETE).write_text("2\n")
    (ck.folder / "checkpoint-10" / COMPLETE).write_text("10\n")
    (ck.folder / "checkpoint-12").mkdir()  # a save a SIGKILL cut short: no marker
    assert ck.resume_from() == str(ck.folder / "checkpoint-10")  # by step number, not by name order
    assert Checkpoints(tmp_path / "run", every=None).resume_from() is None  # checkpoints off: never resume
    ck.finish()
    assert not ck.folder.exists()
