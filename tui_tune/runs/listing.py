"""Finding run directories and the row that describes one: the light part of the runs layer.

Nothing here imports the settings schema (pydantic, ~0.25 s), so the runs screen can list a
thousand runs by their folders and run.json before the rest of the runs layer is loaded.
RunStore (runs/store.py) builds on it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tui_tune.rundir import CONFIG, RUN_JSON, RunDir

RUNS_ENV = "TUI_TUNE_RUNS"


def runs_root(root: str | os.PathLike[str] | None = None) -> Path:
    return Path(root or os.environ.get(RUNS_ENV) or Path.cwd() / "runs")


def is_run_dir(path: Path) -> bool:
    """A directory holding run.json or config.toml (what every run has from its creation)."""
    run = RunDir(path)
    return run.root.is_dir() and (run.run_json.exists() or run.config.exists())


def _holds_run_files(folder: str) -> bool:
    """is_run_dir for a folder already known to be one: a single stat for almost every run
    (a thousand of them list in milliseconds, and each file check in a thread waits for the
    interpreter again, which a busy UI thread can make take milliseconds)."""
    return os.path.exists(os.path.join(folder, RUN_JSON)) or \
        os.path.exists(os.path.join(folder, CONFIG))


def scan_run_dirs(root: Path) -> tuple[list[Path], list[str]]:
    """(directories that look like runs, what was skipped and why): one broken or foreign
    entry is reported, never fatal; a link leading out of the runs folder is not a run."""
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except FileNotFoundError:
        return [], []
    except OSError as error:
        return [], [f"cannot read the runs folder {root}: {error}"]
    found, warnings, real_root = [], [], Path(os.path.realpath(root))
    for entry in entries:
        if entry.name.startswith("."):
            continue  # .sweeps and editor/OS litter
        path = Path(entry.path)
        if not entry.is_dir():
            warnings.append(f"skipping {path}: not a run directory")
        elif not _holds_run_files(entry.path):
            warnings.append(f"skipping {path}: no run.json or config.toml inside")
        elif entry.is_symlink() and Path(os.path.realpath(path)).parent != real_root:
            warnings.append(f"skipping {path}: a link to {os.path.realpath(path)}, outside "
                            "the runs folder")
        else:
            found.append(path)
    return found, warnings


def swept_values(info: dict[str, Any]) -> dict[str, Any]:
    """run.json's `sweep_values` (setting path -> value), if it is one; else empty."""
    values = info.get("sweep_values")
    return {k: v for k, v in values.items() if isinstance(k, str)} \
        if isinstance(values, dict) else {}


MAX_NOTES = 500  # characters of a run's notes (runs/notes.py): a note, not a diary
MAX_TAG = 40


def run_notes(info: dict[str, Any]) -> str:
    """run.json's notes (runs/notes.py), if they are text."""
    value = info.get("notes")
    return value[:MAX_NOTES] if isinstance(value, str) else ""


def run_tags(info: dict[str, Any]) -> tuple[str, ...]:
    """run.json's tags, the texts among them."""
    value = info.get("tags")
    if not isinstance(value, list):
        return ()
    return tuple(t[:MAX_TAG] for t in value if isinstance(t, str) and t)


def swept_text(swept: dict[str, Any]) -> str:
    """A sweep member's values as short words: `lr=0.0001 r=8` (the setting's last part)."""
    return swept_forms(swept)[0]


def setting_name(path: str) -> str:
    """The last part of a setting's path (`training.batch_size` -> `batch_size`)."""
    return path.rsplit(".", 1)[-1]


def swept_forms(swept: dict[str, Any]) -> list[str]:
    """swept_text, then shorter forms of it for a narrow column: the names by their initials
    (`batch_size=4` -> `bs=4`, a name kept whole where initials would clash), then the values
    alone (`0.0001 4`: the sweep's own row names the settings)."""
    names = [setting_name(path) for path in swept]
    values = [_short(value) for value in swept.values()]
    initials = ["".join(part[:1] for part in name.split("_") if part) if name.count("_") else
                name for name in names]
    initials = [short if initials.count(short) == 1 and short not in names[:i] + names[i + 1:]
                else name for i, (name, short) in enumerate(zip(names, initials, strict=True))]
    forms = [" ".join(f"{n}={v}" for n, v in zip(names, values, strict=True)),
             " ".join(f"{n}={v}" for n, v in zip(initials, values, strict=True)),
             " ".join(values)]
    return list(dict.fromkeys(forms))


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "+".join(_short(v) for v in value)
    return str(value)


@dataclass
class RunSummary:
    run_id: str
    path: Path
    name: str
    preset: str
    status: str
    step: int
    steps_total: int | None
    last_loss: float | None
    tokens_per_s: float | None
    elapsed_s: float | None
    eta_s: float | None
    started_at: float | None  # unix seconds: first `start` event, else creation
    reason: str = ""
    created_at: float | None = None
    sweep_id: str | None = None
    parent: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # lr, grad_norm, val_loss, mem_peak
    metrics: dict[str, float] = field(default_factory=dict)  # latest of each events.METRICS
    metric: str | None = None  # the name of metrics["metric_value"] (prediction.metric)
    environment: dict[str, Any] | None = None  # what the latest start ran on (events.py)
    stalled_s: float | None = None  # running, but no progress for this long (runs/stall.py)
    mem_estimate_gib: float | None = None  # the estimated peak per GPU; measured: metrics
    # the GPU peak the end event measured (None on CPU: runs/memory_check.py), and the
    # estimate's error against it, (estimate - measured) / measured
    mem_measured_gib: float | None = None
    mem_estimate_error: float | None = None
    swept: dict[str, Any] = field(default_factory=dict)  # a sweep member's values (run.json)
    best_val_loss: float | None = None  # the end event's best, else the latest val loss
    notes: str = ""  # the user's words about the run (run.json; runs/notes.py)
    tags: tuple[str, ...] = ()  # the user's tags, without their `#`

    @property
    def shown_status(self) -> str:
        """The status as lists show it: a running run that stopped making progress is
        `stalled` (its status stays `running`: it is alive and can be stopped)."""
        return "stalled" if self.stalled_s is not None else self.status

    @property
    def short_reason(self) -> str:
        """Why the run failed, went out of memory or died, in a word or two (a list's cell:
        the error's type); empty for other runs. `reason` has the whole story."""
        if self.status == "oom":
            return "out of memory"
        if self.status == "died":
            return "no end event"
        if self.status == "failed":
            return self.reason.split(":", 1)[0].strip() or "no reason given"
        return ""

    @property
    def reason_line(self) -> str:
        """The whole reason on one line (its lines joined with ` | `), for a detail line."""
        return " | ".join(line.strip() for line in self.reason.splitlines() if line.strip())
