"""`tui-tune preset ...` as a user runs it: a real subprocess per command."""

import json
import os
import subprocess
import sys

from tui_tune.config.toml_io import read_toml


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "tui_tune", *args], capture_output=True, check=False,
                          text=True, cwd=cwd, timeout=60)


def test_list_shows_builtins():
    out = cli("preset", "list").stdout
    for name in ("demo-tiny", "lora", "qlora-4bit", "dora", "full-finetune", "multi-gpu-fsdp"):
        assert name in out
    assert "built-in" in out


def test_show_applies_set_and_prints_full_toml(tmp_path):
    result = cli("preset", "show", "lora", "--set", "training.lr=2e-4", "--set",
                 "adapter.r=32")
    assert result.returncode == 0, result.stderr
    shown = tmp_path / "shown.toml"
    shown.write_text(result.stdout)
    data = read_toml(shown)
    assert data["training"]["lr"] == 2e-4 and data["adapter"]["r"] == 32
    assert set(data) >= {"general", "dataset", "tokenizer", "environment", "logging"}


def test_validate_lists_every_problem_and_fails(tmp_path):
    (tmp_path / "demo" / "data").mkdir(parents=True)  # the data file lora names, relative to cwd
    (tmp_path / "demo" / "data" / "train.jsonl").write_text('{"prompt": "a", "answer": "b"}\n')
    good = tmp_path / "good.toml"
    good.write_text('extends = "lora"\n')
    bad = tmp_path / "bad.toml"
    bad.write_text('[training]\nlr = -1\nbatch_size = 0\n')
    result = cli("preset", "validate", str(good), str(bad), cwd=tmp_path)
    assert result.returncode == 1
    assert f"ok  {good}" in result.stdout
    assert "training.lr" in result.stdout and "training.batch_size" in result.stdout
    assert cli("preset", "validate", str(good), cwd=tmp_path).returncode == 0


def test_switching_method_with_one_override_warns_about_ignored_settings(tmp_path):
    result = cli("preset", "show", "lora", "--set", 'adapter.method="full"')
    assert result.returncode == 0, result.stderr
    warnings = [x for x in result.stderr.splitlines() if x.startswith("warning:")]
    assert len(warnings) == 2 and "adapter.r: ignored" in warnings[0]
    assert "adapter.alpha: ignored" in warnings[1] and "lora.toml" in warnings[0]
    shown = tmp_path / "shown.toml"
    shown.write_text(result.stdout)
    assert read_toml(shown)["adapter"]["method"] == "full"
    (tmp_path / "demo" / "data").mkdir(parents=True)
    (tmp_path / "demo" / "data" / "train.jsonl").write_text('{"prompt": "a", "answer": "b"}\n')
    full = tmp_path / "full.toml"
    full.write_text('extends = "lora"\n[adapter]\nmethod = "full"\n')
    checked = cli("preset", "validate", str(full), cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout
    assert f"ok  {full}" in checked.stdout and "WARN" in checked.stdout
    assert "adapter.r: ignored" in checked.stdout


def test_run_shows_ignored_settings_before_its_checks(tmp_path):
    env = {**os.environ, "TUI_TUNE_RUNS": str(tmp_path / "runs")}
    result = subprocess.run([sys.executable, "-m", "tui_tune", "run", "lora", "--detach", "--set",
                             'adapter.method="full"'], capture_output=True, text=True, cwd=tmp_path,
                            env=env, timeout=60, check=False)
    assert "warning:" in result.stderr and "adapter.r: ignored" in result.stderr
    # refused for its missing data file, not for r/alpha
    assert "demo/data/train.jsonl" in result.stderr and "adapter.r: applies" not in result.stderr


def test_diff_one_line_per_change():
    lines = cli("preset", "diff", "lora", "dora").stdout.splitlines()
    assert "adapter.method: 'lora' -> 'dora'" in lines
    assert "general.experiment_name: 'lora' -> 'dora'" in lines
    assert len(lines) == 2


def test_new_writes_only_differences(tmp_path):
    result = cli("preset", "new", "mine", "--from", "lora", "--set", "training.epochs=3",
                 cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert read_toml(tmp_path / "presets" / "mine.toml") == {
        "schema_version": 1, "extends": "lora", "training": {"epochs": 3}}
    again = cli("preset", "new", "mine", "--from", "lora", cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_errors_are_messages_not_tracebacks(tmp_path):
    result = cli("preset", "show", "nope")
    assert result.returncode == 2
    assert "no preset named 'nope'" in result.stderr and "Traceback" not in result.stderr


def test_schema_is_json_schema_with_help_and_bounds():
    schema = json.loads(cli("preset", "schema").stdout)
    lr = schema["$defs"]["Training"]["properties"]["lr"]
    assert lr["exclusiveMinimum"] == 0 and "learning rate" in lr["description"].lower()
