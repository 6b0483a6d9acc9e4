"""A read-only runs folder and a full disk end in one line naming the folder and the cause, in
the CLI (run, resume, rm) and in a worker's end event and run.json; max_steps has a bound."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import read_events, run_worker
from tests.read_only import read_only
from tui_tune.config import ConfigError
from tui_tune.config.presets import resolve
from tui_tune.runs.files import read_run_json, update_run_json
from tui_tune.runs.store import RunStore
from tui_tune.train.disk_full import disk_full_message


def tui_tune(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tui_tune", *args], cwd=cwd, check=False,
                          capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def stopped_run(store: RunStore) -> Path:
    run_dir = store.create(resolve("demo-tiny").experiment, "demo-tiny")
    (run_dir / "events.jsonl").write_text(json.dumps({"v": 1, "t": 2.0, "kind": "end",
                                                      "status": "stopped"}) + "\n")
    update_run_json(run_dir, status="stopped", launched_at=1.0, ended_at=2.0)
    (run_dir / "checkpoints" / "step-1").mkdir(parents=True)
    (run_dir / "checkpoints" / "step-1" / "trainer_state.json").write_text("{}")
    return run_dir


def test_a_read_only_runs_folder_is_one_line_for_run_resume_and_rm(preset_workdir):
    store = RunStore()
    run_dir = stopped_run(store)
    before = sorted(p.name for p in store.root.rglob("*"))
    with read_only(store.root):
        results = {"run": tui_tune("run", "demo-tiny", "--detach", cwd=preset_workdir),
                   "resume": tui_tune("resume", run_dir.name, "--detach", cwd=preset_workdir),
                   "rm": tui_tune("rm", "-y", run_dir.name, cwd=preset_workdir)}
    for command, result in results.items():
        assert result.returncode == 2, (command, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, (command, result.stderr)
        assert lines[0].startswith(f"tui-tune: the runs folder {store.root}: ")
        assert os.strerror(errno.EROFS) in lines[0] or os.strerror(errno.EACCES) in lines[0]
    assert sorted(p.name for p in store.root.rglob("*")) == before


@pytest.fixture
def tiny_disk(tmp_path):
    """A 5 MiB file system: the demo model's first checkpoint (3 MiB weights + optimizer) does
    not fit, the run's other files do."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("a tiny tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=5M", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.slow
def test_a_full_disk_ends_the_run_naming_the_folder_and_the_cause(tiny_disk, make_run_dir):
    run_dir = make_run_dir(tiny_disk / "run", ["training.max_steps=6",
                                               "training.checkpoint_every_steps=3",
                                               "logging.log_every_steps=1"])
    result = run_worker(run_dir)
    assert result.returncode != 0
    expected = (f"No space left on device: cannot write in {run_dir}; free some space, then "
                f"`tui-tune resume {run_dir.name}`")
    info = read_run_json(run_dir)
    assert (info["status"], info["reason"]) == ("failed", expected)
    end = read_events(run_dir, "end")[-1]
    assert (end["error_type"], end["message"]) == ("OSError", expected)
    assert not list((run_dir / "checkpoints").glob("*.tmp"))  # the cut-off save is gone
    listed = json.loads(tui_tune("ls", "--json", "--runs-dir", str(tiny_disk),
                                 cwd=tiny_disk).stdout)
    assert listed[0]["reason"] == f"OSError: {expected}"


def test_errors_whose_root_is_a_full_disk_are_told_as_such(tmp_path):
    def raised_from(cause: BaseException) -> RuntimeError:
        try:
            try:
                raise cause
            except OSError:
                raise RuntimeError("unexpected pos 2205376 vs 2205268")
        except RuntimeError as error:
            return error
    full = raised_from(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))
    assert disk_full_message(full, tmp_path).startswith(
        f"No space left on device: cannot write in {tmp_path};")
    other = raised_from(OSError(errno.EIO, os.strerror(errno.EIO)))
    assert disk_full_message(other, tmp_path) is None  # tmp_path's disk has room
    assert disk_full_message(ValueError("bad column"), tmp_path) is None


def test_max_steps_has_an_upper_bound():
    with pytest.raises(ConfigError, match="training.max_steps"):
        resolve("demo-tiny", ["training.max_steps=1000000000000"])
    assert resolve("demo-tiny", ["training.max_steps=1000000"]).experiment.training.max_steps \
        == 1_000_000
