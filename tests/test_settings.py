"""Settings declared once (rlops/settings.py): the conf defaults, the cycle schema's extract keys and the README
tables are generated from the models, and a committed file that differs fails here."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from rlops import regenerate, settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("rel", sorted(regenerate.generated(ROOT)))
def test_committed_generated_file_matches_the_models(rel):
    assert (ROOT / rel).read_text(encoding="utf-8") == regenerate.generated(ROOT)[rel], \
        f"{rel} differs from what the models generate: run `python -m rlops.regenerate` and commit"


def _copy(tmp_path: Path) -> Path:
    for rel in regenerate.generated(ROOT):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / rel, tmp_path / rel)
    return tmp_path


def test_a_default_changed_in_its_model_reaches_conf_schema_and_readme(tmp_path, monkeypatch):
    root = _copy(tmp_path)
    field = settings.ExtractSettings.model_fields["rating_bad_max"]
    monkeypatch.setattr(field, "default", 0.125)
    monkeypatch.setattr(field, "description", "A changed description of the bad rating threshold.")
    monkeypatch.setattr(field, "metadata", [m for m in field.metadata if not hasattr(m, "le")] + [
        type(next(m for m in field.metadata if hasattr(m, "le")))(0.5)])
    settings.ExtractSettings.model_rebuild(force=True)
    try:
        written = regenerate.regenerate(root)
    finally:  # the model's real field back, for the other tests
        monkeypatch.undo()
        settings.ExtractSettings.model_rebuild(force=True)
    assert sorted(written) == sorted(["pipelines/conf/config.yaml", "README.md", "rlops/spec/schemas/cycle.schema.json"])

    conf = yaml.safe_load((root / "pipelines/conf/config.yaml").read_text())
    assert conf["extract"]["rating_bad_max"] == 0.125
    assert "# A changed description of the bad rating threshold." in (root / "pipelines/conf/config.yaml").read_text()
    schema = yaml.safe_load((root / "rlops/spec/schemas/cycle.schema.json").read_text())
    prop = schema["properties"]["extract"]["properties"]["rating_bad_max"]
    assert prop["description"] == "A changed description of the bad rating threshold." and prop["maximum"] == 0.5
    row = next(line for line in (root / "README.md").read_text().splitlines() if line.startswith("| `rating_bad_max`"))
    assert "`0.125`" in row and "≤ 0.5" in row and "A changed description" in row
    # the rest of each file is kept: the judge part comes from the registry, the gate block is hand-written
    assert "judge" in schema["properties"]["extract"]["properties"] and "gate" in conf


def test_the_conf_defaults_are_the_models_defaults():
    conf = yaml.safe_load((ROOT / "pipelines/conf/config.yaml").read_text())
    assert conf["extract"] == settings.defaults(settings.ExtractSettings)
    methods = [(f"method/{name}.yaml", model) for name, model in settings.method_settings().items()]
    for rel, model in [("evaluate/default.yaml", settings.EvaluateSettings), *methods]:
        values = yaml.safe_load((ROOT / "pipelines/conf" / rel).read_text())
        assert values == {k: v for k, v in settings.defaults(model).items() if k in values}
        assert model.model_validate(values) == model()  # the file validates, to the model's defaults


def test_every_problem_is_reported_at_once_with_its_field():
    _, problems = settings.check(settings.ExtractSettings, {
        "rating_good_min": 0.75, "rating_bad_max": 0.9, "signals": ["edit", "nudge"], "threads": "2",
        "implicit_weights": {"copy": 2}, "memory_limit": "lots", "colour": "red"}, "params.yaml", "extract")
    got = {p.field: p.message for p in problems}
    assert set(got) == {"extract.rating_bad_max", "extract.signals[1]", "extract.threads",
                        "extract.implicit_weights.copy", "extract.memory_limit", "extract.colour"}, got
    assert "must be below rating_good_min (0.75)" in got["extract.rating_bad_max"]
    assert "'nudge'" in got["extract.signals[1]"] and "must be at most 1" in got["extract.implicit_weights.copy"]


def test_a_generated_marker_that_is_gone_is_named():
    with pytest.raises(ValueError, match="config.yaml: the markers"):
        settings.config_text("extract:\n  signals: [edit]\n")
