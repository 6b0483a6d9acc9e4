"""The settings schema and presets. Pure Python: safe to import from the app."""

from tui_tune.config.errors import ConfigError, Problem
from tui_tune.config.experiment import (
                                        GROUPS,
                                        SCHEMA_VERSION,
                                        Experiment,
                                        expand,
                                        experiment_dict,
                                        setting_paths,
                                        validate_experiment,
)
from tui_tune.config.rules import ignored_settings

__all__ = [
                                        "GROUPS",
                                        "SCHEMA_VERSION",
                                        "ConfigError",
                                        "Experiment",
                                        "Problem",
                                        "expand",
                                        "experiment_dict",
                                        "ignored_settings",
                                        "setting_paths",
                                        "validate_experiment",
]
