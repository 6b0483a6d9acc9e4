"""`preset import`: other tools' real configs (tests/data, copied with their licence) become
presets that validate and reproduce every mapped value; what has no equivalent is listed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tui_tune.config import ConfigError, validate_experiment
from tui_tune.config.experiment import flatten
from tui_tune.config.foreign_import import import_preset
from tui_tune.config.foreign_values import UNSET, flatten_foreign
from tui_tune.config.presets import resolve
from tui_tune.config.toml_io import read_toml

DATA = Path(__file__).parent / "data"


@pytest.fixture
def cwd(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TUI_TUNE_CONFIG_DIR", str(tmp_path / "config"))
    return tmp_path


def resolved_values(imported) -> dict:
    return flatten(resolve(str(imported.path)).experiment.model_dump())


def check_round_trip(imported, source: Path) -> dict:
    """Every key of the file is mapped or listed; every mapped value is in the resolved preset."""
    values = resolved_values(imported)
    for path, value in imported.settings.items():
        assert values[path] == value, path
    keys = set(flatten_foreign(yaml.safe_load(source.read_text())))
    accounted = {m.key for m in imported.mapped} | {u.key for u in imported.unmapped}
    assert accounted == keys
    return values


def unmapped(imported) -> dict:
    return {u.key: u.value for u in imported.unmapped}


def test_h2o_causal_lm_config(cwd):
    source = DATA / "h2o_cfg_oasst2.yaml"
    imported = import_preset(str(source))
    assert imported.tool == "H2O LLM Studio" and imported.base == "qlora-4bit"
    assert imported.path == cwd / "presets" / "h2o_cfg_oasst2.toml"
    values = check_round_trip(imported, source)
    assert values["general.backbone"] == "h2oai/h2o-danube2-1.8b-base"
    assert values["adapter.method"] == "qlora" and values["architecture.backbone_dtype"] == "int4"
    assert values["adapter.r"] == 4 and values["training.lr"] == 1e-4
    assert values["training.optimizer"] == "adamw" and values["training.schedule"] == "cosine"
    assert values["dataset.validation_strategy"] == "auto"
    assert values["dataset.validation_file"] is None and values["dataset.system_column"] is None
    assert values["dataset.prompt_columns"] == ["instruction"]
    assert values["dataset.prompt_column_separator"] == "\n\n"
    assert values["training.warmup_ratio"] == 0.0 and values["training.grad_clip"] == 0.0
    assert values["environment.mixed_precision"] == "bf16" and values["environment.gpus"] == [0]
    assert values["prediction.metric"] == "perplexity" and values["logging.tracker"] == "none"
    assert values["general.experiment_name"] == "example_oasst2"
    missing = unmapped(imported)
    assert missing["dataset.chatbot_name"] == "h2oGPT"
    assert missing["output_directory"] == "examples/output_oasst2"
    assert missing["prediction.metric_gpt_model"] == "gpt-3.5-turbo-0301"
    assert missing["training.differential_learning_rate"] == 1e-5  # no layers named


def test_h2o_classification_config_keeps_empty_markers_and_the_head_lr(cwd):
    source = DATA / "h2o_cfg_classification.yaml"
    imported = import_preset(str(source), name="physics")
    assert imported.base == "classification"
    values = check_round_trip(imported, source)
    assert values["general.problem_type"] == "classification"
    assert values["dataset.answer_column"] == "Physics" and values["dataset.num_classes"] == 2
    assert values["training.differential_lr"] == {"score": 1e-5}
    assert values["dataset.text_prompt_start"] == "" and values["prediction.metric"] == "accuracy"
    assert values["environment.gpus"] == [0, 1, 2]
    assert "environment.deepspeed_method" in unmapped(imported)


def test_h2o_dpo_keys_map_to_the_dpo_settings(cwd):
    """H2O's DPO experiment: its rejected answer column, beta and preference loss."""
    source = cwd / "cfg.yaml"
    source.write_text("llm_backbone: h2oai/h2o-danube2-1.8b-base\n"
                      "problem_type: text_dpo_modeling\n"
                      "dataset:\n  answer_column: chosen_response\n"
                      "  rejected_answer_column: rejected_response\n"
                      "training:\n  beta: 0.2\n  loss_function: DPOHingeLoss\n"
                      "  simpo_gamma: 1.0\n")
    imported = import_preset(str(source), name="dpo")
    values = check_round_trip(imported, source)
    assert values["general.problem_type"] == "dpo"
    assert values["dataset.rejected_answer_column"] == "rejected_response"
    assert values["training.beta"] == 0.2 and values["training.dpo_loss"] == "hinge"
    assert unmapped(imported) == {"training.simpo_gamma": 1.0}


def test_axolotl_config(cwd):
    source = DATA / "axolotl_llama3_lora_1b.yml"
    imported = import_preset(str(source))
    assert imported.tool == "axolotl" and imported.base == "lora"
    values = check_round_trip(imported, source)
    assert values["general.backbone"] == "NousResearch/Llama-3.2-1B"
    assert values["adapter.r"] == 16 and values["adapter.alpha"] == 32
    assert values["adapter.target_modules"][:2] == ["gate_proj", "down_proj"]
    assert values["training.batch_size"] == 2 and values["training.grad_accumulation"] == 2
    assert values["training.optimizer"] == "adamw_8bit"
    assert values["tokenizer.max_length"] == 2048 and values["training.packing"] is True
    assert values["architecture.attn_implementation"] == "flash_attention_2"
    assert values["training.eval_every_epochs"] == 0.25
    assert values["environment.mixed_precision"] == "bf16"
    assert values["dataset.train_file"] == "teknium/GPT4-LLM-Cleaned"
    assert values["dataset.format"] == "alpaca"
    missing = unmapped(imported)
    assert missing["warmup_steps"] == 10 and missing["special_tokens.pad_token"] == "<|end_of_text|>"
    assert missing["loss_watchdog_threshold"] == 5.0


def test_llamafactory_config(cwd):
    source = DATA / "llamafactory_llama3_lora_sft.yaml"
    imported = import_preset(str(source))
    assert imported.tool == "LLaMA-Factory" and imported.base == "lora"
    values = check_round_trip(imported, source)
    assert values["general.backbone"] == "meta-llama/Meta-Llama-3-8B-Instruct"
    assert values["adapter.target_modules"] == ["all-linear"]
    assert values["training.batch_size"] == 1 and values["training.grad_accumulation"] == 8
    assert values["training.epochs"] == 3.0 and values["training.warmup_ratio"] == 0.1
    assert values["tokenizer.max_length"] == 1024 and values["training.eval_every_steps"] == 500
    assert values["dataset.use_chat_template"] is True
    assert values["dataset.train_file"] == ""  # LLaMA-Factory names datasets, not files
    missing = unmapped(imported)
    assert missing["dataset"] == "identity,alpaca_en_demo" and missing["max_samples"] == 1000


def test_int4_with_lora_becomes_qlora_and_refused_values_are_listed(cwd):
    source = cwd / "q.yml"
    source.write_text("base_model: m\nadapter: lora\nload_in_4bit: true\nlora_dropout: 0.95\n"
                      "optimizer: lion\n")
    imported = import_preset(str(source))
    assert imported.base == "qlora-4bit"
    values = resolved_values(imported)
    assert values["adapter.method"] == "qlora" and values["architecture.backbone_dtype"] == "int4"
    why = {u.key: u.why for u in imported.unmapped}
    assert "adapter.dropout" in why["lora_dropout"] and "0.9" in why["lora_dropout"]
    assert "no tui-tune optimizer for 'lion'" in why["optimizer"]
    assert values["adapter.dropout"] == 0.05  # the base preset's


def test_none_strings_are_unset_and_capitals_are_lowered(cwd):
    source = cwd / "cfg.yaml"
    source.write_text("llm_backbone: m\nproblem_type: text_causal_language_modeling\n"
                      "dataset:\n  system_column: None\n  validation_strategy: custom\n"
                      "  validation_dataframe: val.csv\ntraining:\n  schedule: Linear\n"
                      "  optimizer: SGD\n  lora: false\n  lora_r: 4\n  warmup_epochs: 0.5\n"
                      "environment:\n  mixed_precision: false\n")
    imported = import_preset(str(source))
    values = resolved_values(imported)
    assert imported.base == "full-finetune" and values["adapter.method"] == "full"
    assert values["training.schedule"] == "linear" and values["training.optimizer"] == "sgd"
    assert values["dataset.system_column"] is None and values["dataset.validation_file"] == "val.csv"
    assert values["training.warmup_epochs"] == 0.5 and values["training.warmup_ratio"] == 0.0
    assert values["environment.mixed_precision"] == "no"
    assert "LoRA is off" in {u.key: u.why for u in imported.unmapped}["training.lora_r"]
    assert [m.new_value for m in imported.mapped if m.key == "dataset.system_column"] == [UNSET]


def test_cli_prints_every_unmapped_setting_and_refuses_what_it_cannot_read(tmp_path):
    def cli(*args):
        return subprocess.run([sys.executable, "-m", "tui_tune", "preset", "import", *args],
                              capture_output=True, text=True, cwd=tmp_path, timeout=60,
                              check=False)
    done = cli(str(DATA / "axolotl_llama3_lora_1b.yml"), "--name", "ax")
    assert done.returncode == 0, done.stderr
    assert "read axolotl config; wrote" in done.stdout and "(extends lora)" in done.stdout
    assert "training.lr = 0.0002  <- learning_rate" in done.stdout
    assert "  warmup_steps = 10: " in done.stdout and "  tf32 = False: " in done.stdout
    assert read_toml(tmp_path / "presets" / "ax.toml")["extends"] == "lora"
    again = cli(str(DATA / "axolotl_llama3_lora_1b.yml"), "--name", "ax")
    assert again.returncode == 2 and "already exists" in again.stderr
    other = tmp_path / "other.yaml"
    other.write_text("model: x\n")
    refused = cli(str(other))
    assert refused.returncode == 2 and "not a config tui-tune can import" in refused.stderr
    broken = tmp_path / "broken.yaml"
    broken.write_text("a: [1,\n")
    assert "not valid YAML" in cli(str(broken)).stderr
    toml = tmp_path / "mine.toml"
    toml.write_text('extends = "lora"\n[training]\nlr = 0.0005\n')
    copied = cli(str(toml))
    assert copied.returncode == 0 and read_toml(tmp_path / "presets" / "mine.toml")["training"] \
        == {"lr": 0.0005}


@pytest.mark.parametrize(("key", "suggested"), [
    ("training.learning_rate", "training.lr"), ("training.lora_r", "adapter.r"),
    ("micro_batch_size", "training.batch_size"), ("cutoff_len", "tokenizer.max_length"),
    ("environment.compile_model", "architecture.compile"),
    # another tool's exact name wins over a look-alike of the same group (not 'top_k')
    ("prediction.stop_tokens", "prediction.stop_strings"),
])
def test_did_you_mean_knows_other_tools_names(key, suggested):
    group, _, name = key.rpartition(".")
    data = {group: {name: 1}} if group else {name: 1}
    with pytest.raises(ConfigError) as error:
        validate_experiment(data)
    assert f"Did you mean '{suggested}'?" in str(error.value)
