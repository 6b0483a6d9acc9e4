"""Create and start a run from the app, turning every failure into a message."""

from __future__ import annotations

import shutil
from pathlib import Path

from tui_tune.config import ConfigError, Experiment


def launch_experiment(app, experiment: Experiment, preset_name: str) -> tuple[Path | None, str]:
    """(run directory, "") when the run started, else (None, why it did not)."""
    if experiment.sweep:
        return None, (f"this experiment is a sweep of {len(list(_combos(experiment)))} runs; "
                      "save it and start it with `tui-tune sweep PRESET`.")
    try:
        from tui_tune.runs.launch import LaunchError, launch
    except ImportError as error:
        return None, f"the runs layer is not available ({error})"
    from tui_tune.runs.preflight import preflight
    problems = preflight(experiment)
    if problems:
        return None, "\n".join(str(p) for p in problems)
    run_dir = None
    try:
        store = app.run_store()
        run_dir = store.create(experiment, preset_name)
        launch(run_dir)
    except (ConfigError, LaunchError) as error:
        if run_dir is not None:
            shutil.rmtree(run_dir, ignore_errors=True)  # never started: leave no litter
        return None, str(error)
    except (OSError, RuntimeError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"
    return run_dir, ""


def _combos(experiment: Experiment):
    from tui_tune.config import expand
    return expand(experiment)
