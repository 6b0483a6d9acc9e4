"""Built-in presets load, validate, and survive save/load byte for byte."""

from pathlib import Path

import pytest

from tui_tune.config import Experiment, validate_experiment
from tui_tune.config.presets import builtin_dir, experiment_toml, list_presets, new_preset, resolve
from tui_tune.config.toml_io import dumps, read_toml

BUILTINS = sorted(p.stem for p in builtin_dir().glob("*.toml"))
REQUIRED = {"demo-tiny", "lora", "qlora-4bit", "dora", "full-finetune", "multi-gpu-fsdp"}


def test_required_builtins_exist():
    assert REQUIRED <= set(BUILTINS)


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_file_is_byte_stable(name):
    path = builtin_dir() / f"{name}.toml"
    assert dumps(read_toml(path)) == path.read_text()


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_resolves_and_round_trips(name, tmp_path):
    first = experiment_toml(resolve(name).experiment)
    saved = tmp_path / f"{name}.toml"
    saved.write_text(first)
    second = experiment_toml(resolve(str(saved)).experiment)
    assert first == second
    assert resolve(str(saved)).experiment == resolve(name).experiment


def test_builtin_shapes():
    assert resolve("qlora-4bit").experiment.architecture.backbone_dtype == "int4"
    assert resolve("qlora-4bit").experiment.adapter.r == 16  # inherited from lora
    assert resolve("dora").experiment.adapter.method == "dora"
    assert resolve("multi-gpu-fsdp").experiment.environment.distributed_backend == "fsdp"
    assert resolve("demo-tiny").experiment.adapter.method == "full"


def test_overrides_are_toml_typed():
    exp = resolve("lora", ["training.lr=2e-4", "adapter.target_modules=['q_proj','v_proj']",
                           "general.backbone=my/model", "training.packing=true"]).experiment
    assert exp.training.lr == 2e-4
    assert exp.adapter.target_modules == ["q_proj", "v_proj"]
    assert exp.general.backbone == "my/model"
    assert exp.training.packing is True


def test_new_preset_holds_only_differences(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = new_preset("mine", "lora", ["training.lr=3e-4"])
    assert path == tmp_path / "presets" / "mine.toml"
    assert read_toml(path) == {"schema_version": 1, "extends": "lora", "training": {"lr": 3e-4}}
    exp = resolve("mine").experiment
    assert exp.training.lr == 3e-4 and exp.adapter.r == 16
    assert [p.source for p in list_presets() if p.name == "mine"] == ["local"]


def test_local_preset_shadows_builtin_and_may_extend_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "lora.toml").write_text(
        'schema_version = 1\nextends = "lora"\n[adapter]\nr = 4\n')
    exp = resolve("lora").experiment
    assert exp.adapter.r == 4 and exp.adapter.alpha == 32


def test_user_config_dir_is_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("TUI_TUNE_CONFIG_DIR", str(tmp_path / "cfg"))
    (tmp_path / "cfg" / "presets").mkdir(parents=True)
    (tmp_path / "cfg" / "presets" / "team.toml").write_text(
        'extends = "demo-tiny"\n[training]\nlr = 0.01\n')
    assert resolve("team").experiment.training.lr == 0.01
    assert ("team", "user") in {(p.name, p.source) for p in list_presets()}


def test_defaults_follow_the_seeds():
    exp = Experiment()
    assert (exp.adapter.r, exp.adapter.alpha) == (8, 16)
    assert 0.05 <= exp.adapter.dropout <= 0.1
    assert exp.training.grad_clip > 0 and exp.training.warmup_ratio > 0
    assert validate_experiment({}) == exp


def test_every_field_has_help_text():
    from tui_tune.config import setting_paths
    missing = [path for path, info in setting_paths().items() if not info.description]
    assert not missing


def test_sanitized_name_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from tui_tune.config import ConfigError
    for bad in ("../evil", "a/b", "..", ".hidden", ""):
        with pytest.raises(ConfigError):
            new_preset(bad, "lora", [])
    assert not (tmp_path / "presets").exists() or not any((tmp_path / "presets").iterdir())
    assert not Path(tmp_path.parent / "evil.toml").exists()


def test_foreign_preset_with_remote_code_or_outside_paths_needs_confirmation(tmp_path,
                                                                           monkeypatch):
    from tui_tune.config.presets import confirmation_reasons
    work = tmp_path / "work"
    (work / "presets").mkdir(parents=True)
    monkeypatch.chdir(work)
    foreign = tmp_path / "downloads" / "shared.toml"
    foreign.parent.mkdir()
    foreign.write_text('extends = "lora"\n[general]\ntrust_remote_code = true\n'
                       '[dataset]\ntrain_file = "/etc/passwd"\n')
    reasons = confirmation_reasons(resolve(str(foreign)))
    assert len(reasons) == 2
    assert "trust_remote_code" in reasons[0] and "dataset.train_file" in reasons[1]
    (work / "presets" / "shared.toml").write_text(foreign.read_text())
    assert confirmation_reasons(resolve("shared")) == []
    assert confirmation_reasons(resolve("lora")) == []
