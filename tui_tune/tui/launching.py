"""Create and start a run from the app, turning every failure into a message."""

from __future__ import annotations

import shutil
from pathlib import Path

from tui_tune.config import ConfigError, Experiment


def launch_experiment(app, experiment: Experiment, preset_name: str) -> tuple[Path | None, str]:
    """(run directory, "") when the run started, else (None, why it did not)."""
    try:
        from tui_tune.runs.launch import LaunchError, launch
    except ImportError as error:
        return None, f"the runs layer is not available ({error})"
    run_dir = None  # launch() runs the preflight (it reads every data file: once is enough)
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


def launch_sweep(app, experiment: Experiment, preset_name: str) -> tuple[int, str]:
    """(number of runs queued, "") once the detached sweep runner started, else (0, why)."""
    from tui_tune.config import expand
    from tui_tune.runs.preflight import preflight
    try:
        members = list(expand(experiment))
        problems = [p for member in members[:1] for p in preflight(member)]
        if problems:
            return 0, "\n".join(str(p) for p in problems)
        from tui_tune.runs.sweep import create_sweep, start_runner
        sweep_dir = create_sweep(app.run_store(), experiment, preset_name)
        start_runner(sweep_dir)
    except ImportError as error:
        return 0, f"the runs layer is not available ({error})"
    except ConfigError as error:
        return 0, str(error)
    except (OSError, RuntimeError, ValueError) as error:
        return 0, f"{type(error).__name__}: {error}"
    return len(members), ""
