"""Stopping, deleting and exporting runs.

Stop reaches the ranks themselves: under `--multi_gpu` torch's elastic agent starts every rank
in its own session (so signalling the launcher's group misses them), and under the one-process
`--cpu` launcher signalling only the launcher orphans the worker. The worker records each rank's
pid and start time in ranks/; stop sends those SIGTERM (the worker checkpoints and writes `end`),
waits, then ends the launcher and finally SIGKILLs anything of the run still alive.
"""

from __future__ import annotations

import shutil
import signal
import tarfile
import time
from pathlib import Path

import psutil

from tui_tune.rundir import CONFIG, EVENTS, FINAL, RUN_JSON, RunDir
from tui_tune.runs.children import reap_children
from tui_tune.runs.files import read_run_json, update_run_json
from tui_tune.runs.follow import EventFollower
from tui_tune.runs.procs import (
    all_processes,
    launcher_process,
    main_processes,
    rank_processes,
    signal_all,
    wait_gone,
)
from tui_tune.runs.status import END_STATUSES, run_state, run_status
from tui_tune.runs.store import is_run_dir
from tui_tune.runs.summary import SummaryCache

POLL_S = 0.2
LAUNCHER_GRACE_S = 10.0  # the elastic agent takes a moment to notice its ranks are gone


class RunBusy(Exception):
    """The run is alive and the action needs it stopped (or forced)."""


class NotARun(Exception):
    """A path handed to delete that is no run directory: never removed."""


def stop(run_dir: Path, grace_s: float = 60.0) -> str:
    """Stop a run gracefully and return its final status; afterwards none of its processes lives
    (only processes that prove they belong to the run are ever signalled, see procs.py)."""
    run_dir = Path(run_dir)
    if main_processes(run_dir):
        _stop_launch(run_dir, grace_s)
    else:
        end_processes(all_processes(run_dir), grace_s)  # strays: no launch on record is alive
    reap_children()
    return run_status(run_dir)


def _stop_launch(run_dir: Path, grace_s: float) -> None:
    launched_at = read_run_json(run_dir).get("launched_at")
    ranks = rank_processes(run_dir)
    # before the worker has recorded its ranks it has nothing to save: end the whole tree
    signal_all(ranks or all_processes(run_dir), signal.SIGTERM)
    ended = _wait_for_end(run_dir, launched_at, grace_s)
    launcher = launcher_process(run_dir)
    if launcher is not None:
        signal_all([launcher], signal.SIGTERM)
        wait_gone([launcher], LAUNCHER_GRACE_S)
    leftovers = all_processes(run_dir)  # helpers, and a worker of any other launch
    signal_all(leftovers, signal.SIGKILL)
    wait_gone(leftovers, 10.0)
    if not ended:
        update_run_json(run_dir, status="stopped", ended_at=time.time(),
                        reason=f"killed: no clean end within {grace_s:g} s of SIGTERM, so "
                        "the newest checkpoint may be older than the last step")


def end_processes(procs: list[psutil.Process], grace_s: float) -> None:
    """SIGTERM (a worker checkpoints if it still can), then SIGKILL whatever is left."""
    if not procs:
        return
    signal_all(procs, signal.SIGTERM)
    wait_gone(procs, grace_s)
    signal_all(procs, signal.SIGKILL)  # psutil checks each is still the same process
    wait_gone(procs, 10.0)


def _wait_for_end(run_dir: Path, launched_at: object, grace_s: float) -> bool:
    """Wait until the worker's `end` of this launch appears, or no rank of it is left."""
    follower = EventFollower(RunDir(run_dir).events, from_start=False)
    deadline = time.monotonic() + grace_s
    had_ranks = bool(rank_processes(run_dir))
    try:
        while time.monotonic() < deadline:
            if any(e["kind"] == "end" and e.get("status") in END_STATUSES
                   for e in follower.poll()):
                wait_gone(rank_processes(run_dir), 5.0)  # let the ranks exit after writing it
                return True
            ranks_left = rank_processes(run_dir)
            if (had_ranks and not ranks_left) or not main_processes(run_dir):
                return end_event_since(run_dir, launched_at)
            had_ranks = had_ranks or bool(ranks_left)
            time.sleep(POLL_S)
    finally:
        follower.close()
    return end_event_since(run_dir, launched_at)


def end_event_since(run_dir: Path, launched_at: object) -> bool:
    """Did the worker write an `end` event after the given launch time?"""
    end = SummaryCache().summary(RunDir(run_dir).events).end
    if end is None or end.get("status") not in END_STATUSES:
        return False
    t = end.get("t")
    return not isinstance(launched_at, (int, float)) or not isinstance(t, (int, float)) \
        or t >= launched_at - 2.0


def delete(run_dir: Path, force: bool = False) -> None:
    """Remove a run directory; a live run is refused unless forced (then it is stopped first).

    Live includes a run launched on another machine sharing this folder: its processes cannot be
    checked from here, so only --force deletes it (and cannot stop it)."""
    run_dir = Path(run_dir)
    check_deletable(run_dir, force)
    if all_processes(run_dir):  # forced, or strays of an ended run: none outlives its folder
        stop(run_dir, grace_s=5.0)
    shutil.rmtree(run_dir)


def check_deletable(run_dir: Path, force: bool = False) -> str:
    """The run's status if delete may go ahead; NotARun / RunBusy say why not."""
    run_dir = Path(run_dir)
    if run_dir.is_symlink() or not is_run_dir(run_dir):
        raise NotARun(f"{run_dir} is not a run directory (no run.json or config.toml inside, "
                      "or a link): not deleted.")
    state = run_state(run_dir)
    if state.status == "running" and not force:
        where = f" ({state.reason})" if state.reason else ""
        raise RunBusy(f"{run_dir.name} is running{where}; stop it first or delete with "
                      "--force.")
    return state.status


EXPORTED = (CONFIG, RUN_JSON, EVENTS, FINAL)


def export(run_dir: Path, destination: Path | None = None) -> Path:
    """Pack config, run.json, events and final/ into <run-id>.tar.gz for sharing."""
    run_dir = Path(run_dir)
    target = Path(destination) if destination else Path.cwd() / f"{run_dir.name}.tar.gz"
    if target.is_dir():
        target = target / f"{run_dir.name}.tar.gz"
    partial = target.with_name(f".{target.name}.partial")
    try:
        with tarfile.open(partial, "w:gz") as archive:
            for name in EXPORTED:
                if (run_dir / name).exists():
                    archive.add(run_dir / name, arcname=f"{run_dir.name}/{name}")
        partial.replace(target)
    except BaseException:
        partial.unlink(missing_ok=True)  # no half archive left behind (disk full, Ctrl-C)
        raise
    return target
