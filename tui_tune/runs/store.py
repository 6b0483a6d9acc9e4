"""Run directories: create one per launch, find them again, list them with their progress.

runs/<run-id>/ with run-id = <UTC yyyymmdd-hhmmss>-<preset-name>; the root is ./runs unless
--runs-dir or $TUI_TUNE_RUNS says otherwise. Listing never fails because of one broken entry:
foreign files and damaged runs are reported in `warnings` and skipped or shown as far as readable.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tui_tune.config import Experiment, experiment_dict, validate_experiment
from tui_tune.config.presets import experiment_toml
from tui_tune.rundir import RunDir
from tui_tune.runs.files import read_json, write_json_atomic
from tui_tune.runs.listing import (  # noqa: F401 - RUNS_ENV, is_run_dir: re-exported
    RUNS_ENV,
    RunSummary,
    is_run_dir,
    run_notes,
    run_tags,
    runs_root,
    scan_run_dirs,
    swept_values,
)
from tui_tune.runs.memory_check import estimate_error, measured_peak_gib
from tui_tune.runs.status import run_state
from tui_tune.runs.summary import SummaryCache

log = logging.getLogger("tui_tune.runs")
log.addHandler(logging.NullHandler())  # callers show `warnings` themselves; no stray stderr copy
# settings holding file paths, frozen to absolute paths when they exist relative to the cwd
PATH_SETTINGS = (("dataset", "train_file"), ("dataset", "validation_file"),
                 ("dataset", "test_file"), ("general", "backbone"),
                 ("general", "pretrained_weights"), ("environment", "accelerate_config"),
                 ("prediction", "judge_template"))


class RunNotFound(LookupError):
    """No run (or more than one) matches what the user typed."""


def freeze_paths(experiment: Experiment, cwd: Path | None = None) -> Experiment:
    """The experiment with relative file paths that exist here made absolute (hub ids stay)."""
    cwd = cwd or Path.cwd()
    data = experiment_dict(experiment)
    for group, name in PATH_SETTINGS:
        value = data.get(group, {}).get(name)
        if isinstance(value, str) and value and not os.path.isabs(value):
            candidate = cwd / value
            if candidate.exists():
                data[group][name] = str(candidate.resolve())
    return validate_experiment(data)


def _id_label(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:60] or "run"


class RunStore:
    """All runs under one root directory."""

    def __init__(self, root: str | os.PathLike[str] | None = None):
        self.root = runs_root(root)
        self.warnings: list[str] = []
        self._cache = SummaryCache()

    # -- creating ---------------------------------------------------------------------------
    def create(self, experiment: Experiment, preset_name: str, parent: str | None = None,
               sweep_id: str | None = None, label: str | None = None,
               sweep_values: dict[str, Any] | None = None) -> Path:
        """A new queued run directory holding the frozen config.toml and run.json (with the
        values a sweep member sets, `sweep_values`: setting path -> value)."""
        frozen = freeze_paths(experiment)
        run_dir = self._new_dir(_id_label(label or preset_name))
        RunDir(run_dir).config.write_text(experiment_toml(frozen), encoding="utf-8")
        now = time.time()
        info = {"run_id": run_dir.name, "name": frozen.general.experiment_name,
                "preset": preset_name, "status": "queued", "created_at": now,
                "created_at_utc": _utc(now), "host": socket.gethostname(),
                "parent": parent, "sweep_id": sweep_id, "sweep_values": sweep_values}
        write_json_atomic(RunDir(run_dir).run_json, {k: v for k, v in info.items() if v is not None})
        return run_dir

    def _new_dir(self, label: str) -> Path:
        """<UTC time>-<label>, with -2, -3, ... when that name is taken (mkdir is the lock)."""
        self.root.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
        base = f"{stamp}-{label}"
        for n in range(1, 10_000):
            candidate = self.root / (base if n == 1 else f"{base}-{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
        raise RuntimeError(f"cannot create a run directory for {base} in {self.root}")

    # -- finding ----------------------------------------------------------------------------
    def run_dirs(self) -> list[Path]:
        """Directories that look like runs; anything else in the root is reported, not fatal."""
        found, self.warnings = scan_run_dirs(self.root)
        for message in self.warnings:
            log.warning(message)
        return found

    def resolve(self, run_id_or_prefix: str) -> Path:
        """A run directory from its id, a unique prefix of it, or a path to it.

        Only run directories inside the runs folder count: a path must resolve (symlinks too)
        to a direct child of it that holds run.json or config.toml. Anything else is refused,
        so `rm ..` or `rm /some/dir` can never reach outside the runs folder."""
        text = run_id_or_prefix
        if os.sep in text or text.startswith("."):
            return self._resolve_path(text)
        names = [p.name for p in self.run_dirs()]
        if text in names:
            return self.root / text
        matches = [n for n in names if n.startswith(text)] if text else []
        if len(matches) == 1:
            return self.root / matches[0]
        if not matches:
            raise RunNotFound(f"no run matches '{run_id_or_prefix}' in {self.root}; "
                              "`tui-tune ls` lists the runs.")
        shown = ", ".join(matches[:5]) + (" ..." if len(matches) > 5 else "")
        raise RunNotFound(f"'{run_id_or_prefix}' matches {len(matches)} runs ({shown}); "
                          "type more of the run id.")

    def _resolve_path(self, text: str) -> Path:
        real = Path(os.path.realpath(text))
        if real.parent != Path(os.path.realpath(self.root)) or not is_run_dir(real):
            raise RunNotFound(f"'{text}' is not a run directory inside the runs folder "
                              f"{self.root}; only its runs can be named (`tui-tune ls` lists "
                              "them, --runs-dir picks another runs folder).")
        return self.root / real.name

    # -- listing ----------------------------------------------------------------------------
    def list(self) -> list[RunSummary]:
        """Every run, newest first."""
        summaries = []
        for run_dir in self.run_dirs():
            try:
                summaries.append(self.summary(run_dir))
            except Exception as error:  # noqa: BLE001 - one damaged run must not hide the others
                self._warn(f"skipping {run_dir}: {type(error).__name__}: {error}")
        summaries.sort(key=lambda s: (s.created_at or s.started_at or 0.0, s.run_id),
                       reverse=True)
        return summaries

    def summary(self, run_dir: Path) -> RunSummary:
        run_dir = Path(run_dir)
        paths = RunDir(run_dir)
        info = read_json(paths.run_json)
        if info is None:
            if paths.run_json.exists():
                self._warn(f"{paths.run_json} is not readable JSON; showing what the "
                           "events say")
            info = {}
        events = self._cache.summary(paths.events)
        state = run_state(run_dir, info, events)
        now = time.time()
        running = state.status == "running"
        stalled_s = events.stalled_s(now) if running else None
        elapsed_s, eta_s = events.shown_times(running, now)
        created = _number(info.get("created_at"))
        measured = measured_peak_gib(events.end)
        return RunSummary(
            run_id=run_dir.name, path=run_dir,
            name=_text(info.get("name")) or run_dir.name, preset=_text(info.get("preset")) or "?",
            status=state.status, step=events.step, steps_total=events.steps_total,
            last_loss=events.last_loss, tokens_per_s=events.tokens_per_s,
            elapsed_s=elapsed_s, eta_s=eta_s,
            stalled_s=stalled_s,
            started_at=events.first_start_t or created,
            reason=state.reason, created_at=created,
            sweep_id=_text(info.get("sweep_id")), parent=_text(info.get("parent")),
            swept=swept_values(info), best_val_loss=_best_val_loss(events),
            notes=run_notes(info), tags=run_tags(info),
            extra={"lr": events.last_lr, "grad_norm": events.last_grad_norm,
                   "val_loss": events.last_val_loss, "mem_peak_gib": events.mem_peak_gib,
                   "pids": state.pids, "last_checkpoint": events.last_checkpoint},
            environment=events.environment, metrics=dict(events.metrics),
            mem_estimate_gib=events.mem_estimate_gib, mem_measured_gib=measured,
            mem_estimate_error=estimate_error(events.mem_estimate_gib, measured),
            metric=events.metric_name)

    def _warn(self, message: str) -> None:
        self.warnings.append(message)
        log.warning(message)


def _best_val_loss(events: Any) -> float | None:
    """The run's best validation loss: its end event's, else the latest one (still running)."""
    best = _number((events.end or {}).get("best_val_loss"))
    latest = events.last_val_loss
    return best if best is not None else (latest if isinstance(latest, float) else None)


def _text(value: Any) -> str | None:
    """A run.json field meant to be a string; anything else (a hand-edited file) counts as absent."""
    return value if isinstance(value, str) and value else None


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        else None


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="seconds")
