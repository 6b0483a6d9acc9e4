"""Malformed presets: each gives one clear problem naming the setting and the file."""

import pytest

from tui_tune.config import ConfigError
from tui_tune.config.presets import new_preset, resolve, save_preset

# (id, file text, the key the problem must name, words the message must hold)
CASES = [
    ("bad-toml", "[training\nlr = 1\n", "", "not valid TOML"),
    ("binary", b"\xff\xfe\x00lr", "", "TOML"),
    ("wrong-type", '[training]\nlr = "fast"\n', "training.lr", "number"),
    ("lr-zero", "[training]\nlr = 0\n", "training.lr", "greater than 0"),
    ("lr-huge", "[training]\nlr = 2.0\n", "training.lr", "less than or equal"),
    ("batch-zero", "[training]\nbatch_size = 0\n", "training.batch_size", "greater than"),
    ("batch-float", "[training]\nbatch_size = 1.5\n", "training.batch_size", "integer"),
    ("unknown-key", "[training]\nlrr = 0.1\n", "training.lrr", "Did you mean 'lr'"),
    ("unknown-table", "[trainig]\nlr = 0.1\n", "trainig", "Did you mean 'training'"),
    ("key-in-wrong-place", "lr = 0.1\n", "lr", "Did you mean 'training.lr'"),
    ("bad-choice", '[training]\noptimizer = "adamm"\n', "training.optimizer", "adamw"),
    ("bad-schedule", '[training]\nschedule = "cosinee"\n', "training.schedule", "cosine"),
    ("dropout-range", "[adapter]\ndropout = 1.5\n", "adapter.dropout", "less than"),
    ("two-warmups", "[training]\nwarmup_epochs = 1.0\nwarmup_ratio = 0.1\n",
     "training.warmup_epochs", "not both"),
    ("qlora-float", '[adapter]\nmethod = "qlora"\n', "architecture.backbone_dtype", "int4"),
    ("unfreeze-last-layer", '[adapter]\nmethod = "last_layer"\nunfreeze_layers = ["lm_head"]\n',
     "adapter.unfreeze_layers", "needs an adapter"),
    ("fsdp-one-proc", '[environment]\ndistributed_backend = "fsdp"\nnum_processes = 1\n',
     "environment.distributed_backend", "one process"),
    ("custom-no-file", '[dataset]\nvalidation_strategy = "custom"\n',
     "dataset.validation_file", "needs a validation_file"),
    ("newer-schema", "schema_version = 99\n", "schema_version", "reads up to 1"),
    ("schema-text", 'schema_version = "one"\n', "schema_version", "not a version"),
    ("secret", '[logging]\napi_key = "abc"\n', "logging.api_key", "environment variable"),
    ("bad-tracker", '[logging]\ntracker = "comet"\n', "logging.tracker", "wandb"),
    ("gpu-twice", "[environment]\ngpus = [0, 0]\n", "environment.gpus", "twice"),
    ("multinode-no-ip", "[environment]\nnum_nodes = 2\n", "environment.main_process_ip",
     "node 0"),
    ("short-max-length", "[tokenizer]\nmax_length = 4\n", "tokenizer.max_length", "greater"),
    ("extends-number", "extends = 3\n", "extends", "preset name"),
    ("extends-missing", 'extends = "no-such-preset"\n', "", "no preset named"),
    ("extends-traversal", 'extends = "../etc/passwd"\n', "name", "not a valid preset name"),
    ("empty-sweep", "[sweep]\n\"training.lr\" = []\n", "sweep.training.lr", "at least one"),
    ("betas-short", "[training]\nbetas = [0.9]\n", "training.betas", "at least 2"),
    ("grpo-weights", ('[general]\nproblem_type = "grpo"\n[prediction]\nmetric = "reward"\n'
                      '[training]\nreward_weights = [1.0, 2.0]\n'), "training.reward_weights",
     "2 weights for 1"),
    ("table-as-value", "training = 3\n", "training", "dictionary"),
]


# settings that do not apply to the chosen choice: the preset loads, a warning names them
IGNORED = [
    ("constant-min-lr", '[training]\nschedule = "constant"\nmin_lr_ratio = 0.1\n',
     "training.min_lr_ratio", "does not decay"),
    ("unfreeze-full", '[adapter]\nmethod = "full"\nunfreeze_layers = ["lm_head"]\n',
     "adapter.unfreeze_layers", "every layer"),
    ("parent-prob", "[augmentation]\nskip_parent_probability = 0.2\n",
     "augmentation.skip_parent_probability", "parent_id_column"),
]


@pytest.mark.parametrize("case_id,text,key,words", IGNORED, ids=[c[0] for c in IGNORED])
def test_ignored_setting_is_a_warning_naming_key_and_file(tmp_path, case_id, text, key, words):
    path = tmp_path / f"{case_id}.toml"
    path.write_text(text)
    [warning] = resolve(str(path)).warnings
    assert (warning.key, warning.source) == (key, str(path))
    assert words in warning.message and "ignored" in warning.message


@pytest.mark.parametrize("case_id,text,key,words", CASES, ids=[c[0] for c in CASES])
def test_malformed_preset_names_key_and_file(tmp_path, case_id, text, key, words):
    path = tmp_path / f"{case_id}.toml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    before = path.read_bytes()
    with pytest.raises(ConfigError) as info:
        resolve(str(path))
    problems = info.value.problems
    assert len(problems) == 1, problems
    assert problems[0].key == key
    assert words in problems[0].message
    assert problems[0].source == str(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_extends_cycle_names_the_chain(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "presets").mkdir()
    (tmp_path / "presets" / "a.toml").write_text('extends = "b"\n')
    (tmp_path / "presets" / "b.toml").write_text('extends = "a"\n')
    with pytest.raises(ConfigError) as info:
        resolve("a")
    assert "cycle: a.toml -> b.toml -> a.toml" in str(info.value)


def test_problem_in_base_names_the_base_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "presets").mkdir()
    base = tmp_path / "presets" / "base.toml"
    base.write_text("[training]\nlr = -1\n")
    (tmp_path / "presets" / "child.toml").write_text('extends = "base"\n')
    with pytest.raises(ConfigError) as info:
        resolve("child")
    assert info.value.problems[0].source == str(base)


def test_bad_override_names_set(tmp_path):
    with pytest.raises(ConfigError) as info:
        resolve("lora", ["training.lr=abc"])
    assert info.value.problems[0].source == "--set"
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        resolve("lora", ["training.lr"])


def test_invalid_preset_is_never_written(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "presets" / "bad.toml"
    with pytest.raises(ConfigError):
        save_preset(target, {"training": {"lr": -1}})
    with pytest.raises(ConfigError):
        new_preset("bad", "lora", ["adapter.method=qlora"])
    assert not target.exists()
    assert not any((tmp_path / "presets").glob("*")) if (tmp_path / "presets").exists() else True


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "keep.toml"
    save_preset(target, {"training": {"lr": 0.001}})
    before = target.read_text()
    with pytest.raises(ConfigError):
        save_preset(target, {"training": {"lr": 0.002}, "general": {"experiment_name": object()}})
    assert target.read_text() == before
    assert [p.name for p in tmp_path.iterdir()] == ["keep.toml"]
