"""Cross-field rules, sweeps and diffs."""

import pytest

from tui_tune.config import ConfigError, expand, ignored_settings, validate_experiment
from tui_tune.config.diff import diff_experiments
from tui_tune.config.presets import resolve


def problems(data):
    with pytest.raises(ConfigError) as info:
        validate_experiment(data)
    return {p.key: p.message for p in info.value.problems}


def ignored(data):
    """Settings reported as ignored; the experiment itself must validate."""
    return {p.key: p.message for p in ignored_settings(validate_experiment(data))}


def test_min_lr_ratio_without_decay_is_ignored():
    found = ignored({"training": {"schedule": "constant", "min_lr_ratio": 0.1}})
    assert "ignored" in found["training.min_lr_ratio"]
    assert "constant" in found["training.min_lr_ratio"]
    assert ignored({"training": {"schedule": "cosine", "min_lr_ratio": 0.1}}) == {}


def test_adapter_options_that_do_not_apply_are_ignored_not_refused():
    found = ignored({"adapter": {"method": "full", "r": 16, "alpha": 32,
                                 "unfreeze_layers": ["lm_head"], "target_modules": ["q_proj"]}})
    assert "not to method 'full'" in found["adapter.r"] and "ignored" in found["adapter.r"]
    assert set(found) == {"adapter.r", "adapter.alpha", "adapter.unfreeze_layers",
                          "adapter.target_modules"}
    assert set(ignored({"adapter": {"method": "lora", "freeze_layers": ["embed"]}})) == {
        "adapter.freeze_layers"}
    assert set(ignored({"adapter": {"method": "ssf", "use_rslora": True}})) == {
        "adapter.use_rslora"}
    # defaults repeated by a full resolved file are not reported
    assert ignored({"adapter": {"method": "full", "r": 8, "alpha": 16}}) == {}
    # last_layer cannot honour unfreeze_layers (it would train less than asked): still refused
    found = problems({"adapter": {"method": "last_layer", "unfreeze_layers": ["embed_tokens"]}})
    assert "freeze_layers" in found["adapter.unfreeze_layers"]


def test_switching_the_builtin_lora_preset_to_full_with_one_override():
    resolved = resolve("lora", ["adapter.method=\"full\""])
    assert resolved.experiment.adapter.method == "full"
    keys = {w.key: w for w in resolved.warnings}
    assert set(keys) == {"adapter.r", "adapter.alpha"}
    assert keys["adapter.r"].source.endswith("lora.toml")  # where the ignored value was set


def test_data_settings_for_another_choice_are_ignored():
    found = ignored({"dataset": {"validation_file": "v.jsonl"},
                     "augmentation": {"skip_parent_probability": 0.2}})
    assert "custom" in found["dataset.validation_file"]
    assert "parent_id_column" in found["augmentation.skip_parent_probability"]


def test_h2o_chain_settings_without_a_chain_are_ignored():
    found = ignored({"dataset": {"limit_chained_samples": True, "only_last_answer": True,
                                 "use_chat_template": True, "add_eos_to_system": True}})
    assert "parent_id_column" in found["dataset.limit_chained_samples"]
    assert "mask_prompt_labels" in found["dataset.only_last_answer"]
    assert "text markers" in found["dataset.add_eos_to_system"]
    chained = ignored({"dataset": {"parent_id_column": "parent", "limit_chained_samples": True,
                                   "only_last_answer": True}})
    assert not chained


def test_quantized_method_needs_quantized_backbone_and_back():
    assert "int4" in problems({"adapter": {"method": "qlora"}})["architecture.backbone_dtype"]
    found = problems({"architecture": {"backbone_dtype": "int4"}})
    assert "'qlora'" in found["adapter.method"]
    found = problems({"architecture": {"backbone_dtype": "int8"}, "adapter": {"method": "full"}})
    assert "cannot be trained directly" in found["adapter.method"]


def test_fsdp_with_one_process():
    found = problems({"environment": {"distributed_backend": "fsdp", "num_processes": 1}})
    assert "one process" in found["environment.distributed_backend"]


def test_problem_type_not_supported_yet(monkeypatch):
    from tui_tune.config import rules

    monkeypatch.setattr(rules, "SUPPORTED_PROBLEM_TYPES", ("causal_lm",))
    assert "not supported yet" in problems({"general": {"problem_type": "grpo"}})[
        "general.problem_type"]


def test_grpo_reward_functions_and_weights():
    found = problems({"general": {"problem_type": "grpo"}, "prediction": {"metric": "reward"},
                      "training": {"reward_functions": ["exact_match", "nomodule", "m:f"],
                                   "reward_weights": [1.0]}})
    assert "'nomodule' is neither a built-in" in found["training.reward_functions"]
    assert "1 weights for 3 reward functions" in found["training.reward_weights"]
    validate_experiment({"general": {"problem_type": "grpo"}, "prediction": {"metric": "reward"},
                         "training": {"reward_functions": ["exact_match", "m:f"],
                                      "reward_weights": [1.0, 0.5], "beta": 0.0}})
    assert "above 0" in problems({"general": {"problem_type": "dpo"},
                                  "prediction": {"metric": "preference_accuracy"},
                                  "training": {"beta": 0.0}})["training.beta"]


def test_several_problems_reported_together():
    found = problems({"training": {"warmup_epochs": 1, "warmup_ratio": 0.1},
                      "dataset": {"validation_strategy": "custom"},
                      "prediction": {"min_new_tokens": 10, "max_new_tokens": 5}})
    assert {"dataset.validation_file", "training.warmup_epochs",
            "prediction.min_new_tokens"} <= set(found)


def test_sweep_expands_every_combination_with_readable_names():
    exp = validate_experiment({"general": {"experiment_name": "s"},
                               "sweep": {"training": {"lr": [1e-4, 2e-4]}, "adapter.r": [8, 16]}})
    runs = list(expand(exp))
    assert [(e.training.lr, e.adapter.r) for e in runs] == [
        (1e-4, 8), (1e-4, 16), (2e-4, 8), (2e-4, 16)]
    assert runs[0].general.experiment_name == "s-lr0.0001-r8"
    assert all(not e.sweep for e in runs)


def test_sweep_value_that_breaks_a_rule_names_the_combination():
    exp = validate_experiment({"sweep": {"adapter.method": ["lora", "qlora"]}})
    with pytest.raises(ConfigError) as info:
        list(expand(exp))
    assert "method" in str(info.value) and "int4" in str(info.value)


def test_sweep_unknown_path():
    found = problems({"sweep": {"training.lrr": [1, 2]}})
    assert "training.lr" in found["sweep.training.lrr"]


def test_diff_lists_changed_settings_with_old_and_new():
    a = validate_experiment({})
    b = validate_experiment({"training": {"lr": 2e-4}, "general": {"revision": "dev"}})
    assert [str(c) for c in diff_experiments(a, b)] == [
        "general.revision: (unset) -> 'dev'", "training.lr: 0.0001 -> 0.0002"]


def test_padding_and_truncation_settings_that_a_type_does_not_read_are_ignored():
    """seq2seq keeps the source's start and pads right, QA cuts windows: both ignored the three
    settings silently before; the types that read them do not warn."""
    changed = {"tokenizer": {"padding_side": "left", "padding_quantile": 0.9,
                             "truncation_side": "right"}}
    for kind in ("seq2seq", "extractive_qa"):
        found = ignored({"general": {"problem_type": kind}, **changed})
        assert {"tokenizer.padding_side", "tokenizer.padding_quantile",
                "tokenizer.truncation_side"} <= set(found), kind
        assert kind in found["tokenizer.padding_side"]
    assert "tokenizer.truncation_side" not in ignored(
        {"general": {"problem_type": "token_classification"}, **changed})
    for kind in ("causal_lm", "classification", "dpo"):
        assert not {k for k in ignored({"general": {"problem_type": kind}, **changed})
                    if k.startswith("tokenizer.")}, kind


def test_grpo_refuses_a_sharded_backend_by_name():
    found = problems({"general": {"problem_type": "grpo"},
                      "environment": {"distributed_backend": "fsdp"}})
    assert "ddp" in found["environment.distributed_backend"]
    assert "environment.distributed_backend" not in {
        p.key for p in ignored_settings(validate_experiment({"general": {
            "problem_type": "grpo"}}))}
