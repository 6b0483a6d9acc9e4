"""Problem types in the settings: each type's metric default, metrics and settings that fit
it, and label settings that must agree."""

import pytest

from tui_tune.config import ConfigError, ignored_settings, validate_experiment
from tui_tune.config.experiment import setting_paths
from tui_tune.config.problem_types import METRICS, ONLY_FOR, default_metric


@pytest.fixture
def all_types_supported(monkeypatch):
    """The label types' rules, whichever of them the worker trains yet."""
    monkeypatch.setattr("tui_tune.config.rules.SUPPORTED_PROBLEM_TYPES", tuple(METRICS))


def problems(data):
    with pytest.raises(ConfigError) as info:
        validate_experiment(data)
    return {p.key: p.message for p in info.value.problems}


def test_an_unset_metric_is_the_problem_types_default(all_types_supported):
    for kind in METRICS:
        exp = validate_experiment({"general": {"problem_type": kind},
                                   "prediction": {"max_new_tokens": 9}})
        assert exp.prediction.metric == default_metric(kind)
        assert exp.prediction.max_new_tokens == 9  # the rest of the group is kept


def test_a_metric_of_another_problem_type_is_refused_with_the_choices(all_types_supported):
    found = problems({"general": {"problem_type": "regression"},
                      "prediction": {"metric": "accuracy"}})
    assert found["prediction.metric"] == ("'accuracy' is not a regression metric; pick one of "
                                          "mse, mae, r2.")
    assert "prediction.metric" in problems({"prediction": {"metric": "auc"}})  # causal_lm


def test_packing_is_refused_for_one_example_per_row_types(all_types_supported):
    found = problems({"general": {"problem_type": "classification"},
                      "training": {"packing": True}})
    assert "turn it off" in found["training.packing"]


def test_label_counts_must_agree(all_types_supported):
    multilabel = {"general": {"problem_type": "classification"},
                  "dataset": {"label_columns": ["toxic", "spam", "angry"]}}
    assert validate_experiment(multilabel).dataset.num_classes == 0
    found = problems({**multilabel, "dataset": {**multilabel["dataset"], "num_classes": 2}})
    assert "3 label columns" in found["dataset.num_classes"]
    found = problems({**multilabel, "training": {"class_weights": [1.0, 2.0]}})
    assert found["training.class_weights"].startswith("2 weights for 3 classes")
    validate_experiment({**multilabel, "training": {"class_weights": [1.0, 2.0, 0.5]}})


def test_settings_of_another_problem_type_are_ignored_not_refused(all_types_supported):
    exp = validate_experiment({"dataset": {"num_classes": 4, "tags_column": "ner"},
                               "training": {"regression_loss": "huber"}})
    found = {p.key: p.message for p in ignored_settings(exp)}
    assert set(found) == {"dataset.num_classes", "dataset.tags_column",
                          "training.regression_loss"}
    assert found["dataset.num_classes"] == "ignored: not read for problem type 'causal_lm'."


def test_type_only_settings_exist():
    assert set(ONLY_FOR) <= set(setting_paths())
