"""`Experiment`: every setting of a fine-tuning run, validated as one object."""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tui_tune.config.data_groups import Augmentation, Dataset, Tokenizer
from tui_tune.config.errors import (
    ConfigError,
    Problem,
    RuleViolations,
    did_you_mean,
    problems_from_validation,
    unknown_key_problems,
)
from tui_tune.config.foreign_names import foreign_names
from tui_tune.config.model_groups import Adapter, Architecture, General, Quantization
from tui_tune.config.problem_types import default_metric
from tui_tune.config.rules import cross_field_problems
from tui_tune.config.runtime_groups import Environment, Logging
from tui_tune.config.training_groups import Prediction, Training

SCHEMA_VERSION = 1


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", title="Experiment")

    schema_version: int = Field(SCHEMA_VERSION, description="Version of this settings layout.")
    general: General = Field(default_factory=General)
    dataset: Dataset = Field(default_factory=Dataset)
    tokenizer: Tokenizer = Field(default_factory=Tokenizer)
    architecture: Architecture = Field(default_factory=Architecture)
    adapter: Adapter = Field(default_factory=Adapter)
    quantization: Quantization = Field(default_factory=Quantization)
    training: Training = Field(default_factory=Training)
    augmentation: Augmentation = Field(default_factory=Augmentation)
    prediction: Prediction = Field(default_factory=Prediction)
    environment: Environment = Field(default_factory=Environment)
    logging: Logging = Field(default_factory=Logging)
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict, description="Grid search: setting path -> values; one run per "
        "combination, for example \"training.lr\" = [1e-4, 2e-4].")

    @model_validator(mode="before")
    @classmethod
    def _metric_of_the_problem_type(cls, data: Any) -> Any:
        """prediction.metric left unset takes the problem type's default (perplexity is no
        classification metric); a metric that is set is checked by the rules."""
        if not isinstance(data, dict):
            return data
        general, prediction = data.get("general"), data.get("prediction")
        kind = general.get("problem_type") if isinstance(general, dict) else None
        if kind is None or (isinstance(prediction, dict) and "metric" in prediction):
            return data
        if prediction is not None and not isinstance(prediction, dict):
            return data
        return {**data, "prediction": {**(prediction or {}), "metric": default_metric(kind)}}

    @field_validator("sweep", mode="before")
    @classmethod
    def _flatten_sweep(cls, value: Any) -> Any:
        return flatten(value) if isinstance(value, dict) else value

    @model_validator(mode="after")
    def _check_rules(self) -> Experiment:
        problems = cross_field_problems(self) + _sweep_problems(self)
        if problems:
            raise RuleViolations(problems)
        return self


GROUPS: dict[str, type[BaseModel]] = {
    name: field.annotation for name, field in Experiment.model_fields.items()
    if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel)
}


def setting_paths() -> dict[str, Any]:
    """Every leaf setting as 'group.field' -> its pydantic FieldInfo."""
    return {f"{g}.{name}": info for g, model in GROUPS.items()
            for name, info in model.model_fields.items()}


def _leaf_index() -> dict[str, str]:
    """A setting's own name -> its path, then other tools' names for it (foreign_names)."""
    return {**foreign_names(), **{path.split(".", 1)[1]: path for path in setting_paths()}}


def flatten(data: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and path not in ("training.differential_lr",) and value:
            out.update(flatten(value, f"{path}."))
        else:
            out[path] = value
    return out


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    *parents, leaf = path.split(".")
    for part in parents:
        node = data.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError([Problem(path, f"'{part}' is a value, not a table.")])
        data = node
    data[leaf] = value


def _sweep_problems(exp: Experiment) -> list[Problem]:
    known, problems = setting_paths(), []
    for path, values in exp.sweep.items():
        if path not in known:
            problems.append(Problem(f"sweep.{path}", "is not a setting." +
                                    did_you_mean(path, list(known))))
        elif not values:
            problems.append(Problem(f"sweep.{path}", "needs at least one value."))
    return problems


def validate_experiment(data: dict[str, Any]) -> Experiment:
    """Validate a merged dict, raising ConfigError with every problem found."""
    unknown = unknown_key_problems(data, Experiment, all_leaves=_leaf_index())
    if unknown:
        raise ConfigError([_secret_hint(p) for p in unknown])
    try:
        return Experiment.model_validate(data)
    except ValidationError as error:
        raise ConfigError(problems_from_validation(error)) from None


def _secret_hint(problem: Problem) -> Problem:
    if re.search(r"(api_?key|token|secret|password)$", problem.key):
        return Problem(problem.key, "secrets are never stored in presets: export the tracker's "
                       "environment variable (WANDB_API_KEY, NEPTUNE_API_TOKEN, ...) instead.")
    return problem


def experiment_dict(exp: Experiment) -> dict[str, Any]:
    """A TOML-ready dict: None values dropped, since TOML has no null."""
    return _drop_none(exp.model_dump(mode="json"))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


def _format_value(value: Any) -> str:
    text = f"{value:g}" if isinstance(value, float) else str(value)
    if isinstance(value, list):
        text = "+".join(str(v) for v in value)
    return re.sub(r"[^A-Za-z0-9.+-]+", "", text)[:24]


def expand(exp: Experiment) -> Iterator[Experiment]:
    """One experiment per combination of the sweep grid, named after the values it sets."""
    if not exp.sweep:
        yield exp
        return
    paths = list(exp.sweep)
    base = experiment_dict(exp)
    base.pop("sweep")
    for combo in itertools.product(*(exp.sweep[p] for p in paths)):
        data = _copy(base)
        for path, value in zip(paths, combo):
            set_path(data, path, value)
        suffix = "-".join(f"{p.rsplit('.', 1)[1]}{_format_value(v)}" for p, v in zip(paths, combo))
        data["general"]["experiment_name"] = f"{exp.general.experiment_name}-{suffix}"[:80]
        try:
            yield validate_experiment(data)
        except ConfigError as error:
            raise ConfigError([Problem(f"sweep ({suffix}) {p.key}".strip(), p.message)
                               for p in error.problems]) from None


def _copy(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_copy(v) for v in data]
    return data
