"""The run directory contract: the one place that names the files of a run.

The app and the worker talk only through a run's folder, so both sides must agree on every
name in it. Pure pathlib: every layer imports this (config, runs, train, tui, the CLI).

    config.toml          the frozen settings (written at creation, read by the worker)
    run.json             launch facts and the final status (runs/files.py reads and writes it)
    events.jsonl         the worker's event stream (events.py), appended by rank 0
    .summary-cache.json  a folded summary of events.jsonl, so `ls` need not re-read big files
    .step-index          every step line's metrics as binary records, written with events.jsonl
                         (step_index.py), so the monitor opens a long history without decoding it
    .history-cache       a long run's step columns, so the monitor need not decode them again
                         (a run without a usable .step-index: written by hand or an older tui-tune)
    console.log          stdout + stderr of the launcher and every rank
    ranks/rank-R.json    each worker rank's pid and host (proof a process is this run's)
    worker.lock          held by the launch and every rank while any of them lives
    checkpoints/step-N   resumable checkpoints (step-N.tmp while being written)
    final/               the trained model or adapter and its tokenizer
    reference-logps.pt   dpo with training.precompute_reference: the reference model's
                         log-probabilities of every pair, computed once (a resume reuses them)
    predictions.csv      predictions for dataset.test_file (.parquet for a parquet test file),
                         written at the end of a completed run; `tui-tune predict` writes
                         predictions-<file>[-step-N].csv beside it
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

CONFIG = "config.toml"
RUN_JSON = "run.json"
EVENTS = "events.jsonl"
SUMMARY_CACHE = ".summary-cache.json"
HISTORY_CACHE = ".history-cache"
STEP_INDEX = ".step-index"
CONSOLE_LOG = "console.log"
RANKS = "ranks"
WORKER_LOCK = "worker.lock"
CHECKPOINTS = "checkpoints"
CHECKPOINT_PREFIX = "step-"
PARTIAL_SUFFIX = ".tmp"  # a checkpoint being written; renamed when complete
CHECKPOINT_STATE = "trainer_state.json"  # inside a checkpoint: the loop position
FINAL = "final"
REFERENCE_LOGPS = "reference-logps.pt"
PREDICTIONS = "predictions"  # + the output format's suffix (.csv, .parquet)
CHATS = "chats"  # conversations saved from the chat screen, as dataset rows (jsonl)


@dataclass(frozen=True)
class RunDir:
    """The paths of one run directory (nothing is read or created here)."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @classmethod
    def holding(cls, saved: Path) -> RunDir:
        """The run that saved `saved`: its final/ or one of its checkpoints/step-N."""
        saved = Path(saved)
        return cls(saved.parent.parent if saved.parent.name == CHECKPOINTS else saved.parent)

    @property
    def config(self) -> Path:
        return self.root / CONFIG

    @property
    def run_json(self) -> Path:
        return self.root / RUN_JSON

    @property
    def events(self) -> Path:
        return self.root / EVENTS

    @property
    def summary_cache(self) -> Path:
        return self.root / SUMMARY_CACHE

    @property
    def history_cache(self) -> Path:
        return self.root / HISTORY_CACHE

    @property
    def step_index(self) -> Path:
        return self.root / STEP_INDEX

    @property
    def console_log(self) -> Path:
        return self.root / CONSOLE_LOG

    @property
    def ranks(self) -> Path:
        return self.root / RANKS

    def rank_file(self, rank: int) -> Path:
        return self.ranks / f"rank-{rank}.json"

    def rank_files(self) -> list[Path]:
        """The rank files there are now (none before the first worker starts)."""
        return sorted(self.ranks.glob("rank-*.json"))

    def worker_lock(self, node_rank: int | None = None) -> Path:
        """worker.lock; with several nodes sharing the folder, one per node."""
        return self.root / (WORKER_LOCK if node_rank is None else f"worker-node-{node_rank}.lock")

    @property
    def checkpoints(self) -> Path:
        return self.root / CHECKPOINTS

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / f"{CHECKPOINT_PREFIX}{step}"

    def checkpoint_candidates(self) -> list[Path]:
        """Every checkpoints/step-* entry, complete or not (see runs/files.checkpoint_dirs)."""
        return list(self.checkpoints.glob(f"{CHECKPOINT_PREFIX}*"))

    def partial_checkpoints(self) -> list[Path]:
        """Checkpoints cut off while being written: never complete, never resumable."""
        return list(self.checkpoints.glob(f"{CHECKPOINT_PREFIX}*{PARTIAL_SUFFIX}"))

    @property
    def final(self) -> Path:
        return self.root / FINAL

    @property
    def chats(self) -> Path:
        return self.root / CHATS

    @property
    def reference_logps(self) -> Path:
        return self.root / REFERENCE_LOGPS

    def predictions(self, suffix: str, source: str | None = None,
                    checkpoint: str | None = None) -> Path:
        """predictions<suffix> for dataset.test_file; for another file (`tui-tune predict`)
        predictions-<its stem>[-<checkpoint>]<suffix>, so neither replaces the other."""
        parts = [PREDICTIONS] + ([Path(source).stem] if source else []) + (
            [checkpoint] if checkpoint else [])
        return self.root / ("-".join(parts) + suffix)


def checkpoint_step(folder: Path) -> int | None:
    """N of a checkpoints/step-N folder; None for anything else (step-N.tmp included)."""
    name = Path(folder).name
    number = name[len(CHECKPOINT_PREFIX):] if name.startswith(CHECKPOINT_PREFIX) else ""
    return int(number) if number.isdigit() else None
