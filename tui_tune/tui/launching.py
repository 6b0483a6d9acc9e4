"""Start a run or a sweep from the app (runs/start.py, as the CLI does), every failure a message."""

from __future__ import annotations

from pathlib import Path

from tui_tune.config import ConfigError, Experiment


def launch_experiment(app, experiment: Experiment, preset_name: str) -> tuple[Path | None, str]:
    """(run directory, "") when the run started, else (None, why it did not); a run that did
    not start leaves no folder behind."""
    try:
        from tui_tune.runs.launch import LaunchError
        from tui_tune.runs.start import start_run
    except ImportError as error:
        return None, f"the runs layer is not available ({error})"
    try:
        return start_run(app.run_store(), experiment, preset_name), ""
    except (ConfigError, LaunchError) as error:
        return None, str(error)
    except (OSError, RuntimeError, ValueError) as error:
        return None, f"{type(error).__name__}: {error}"


def launch_sweep(app, experiment: Experiment, preset_name: str) -> tuple[int, str]:
    """(number of runs queued, "") once the detached sweep runner started, else (0, why); every
    member is checked before anything is queued."""
    try:
        from tui_tune.runs.launch import LaunchError
        from tui_tune.runs.start import start_sweep
    except ImportError as error:
        return 0, f"the runs layer is not available ({error})"
    try:
        _, count = start_sweep(app.run_store(), experiment, preset_name)
    except (ConfigError, LaunchError) as error:
        return 0, str(error)
    except (OSError, RuntimeError, ValueError) as error:
        return 0, f"{type(error).__name__}: {error}"
    return count, ""
