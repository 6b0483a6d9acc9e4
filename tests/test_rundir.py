"""The run directory contract: the names the app and the worker agree on (tui_tune/rundir.py)."""

from __future__ import annotations

from pathlib import Path

from tui_tune.rundir import RunDir, checkpoint_step
from tui_tune.runs.files import checkpoint_dirs, continue_weights
from tui_tune.train.disk_full import remove_partial_checkpoints


def test_paths_sit_where_the_worker_and_the_app_look(tmp_path):
    run = RunDir(str(tmp_path))
    assert run == RunDir(tmp_path) and run.root == tmp_path
    assert [p.relative_to(tmp_path).as_posix() for p in (
        run.config, run.run_json, run.events, run.summary_cache, run.console_log,
        run.rank_file(3), run.worker_lock(), run.worker_lock(1), run.checkpoint(40),
        run.final, run.history_cache, run.step_index)] == [
        "config.toml", "run.json", "events.jsonl", ".summary-cache.json", "console.log",
        "ranks/rank-3.json", "worker.lock", "worker-node-1.lock", "checkpoints/step-40",
        "final", ".history-cache", ".step-index"]


def test_the_run_that_saved_a_folder():
    run = RunDir("/runs/a")
    assert RunDir.holding(run.checkpoint(7)) == run
    assert RunDir.holding(run.final) == run


def test_checkpoints_complete_partial_and_foreign(tmp_path):
    """Only step-N with its state file is a checkpoint; step-N.tmp is a save cut off midway."""
    run = RunDir(tmp_path)
    for step in (10, 9, 100):
        run.checkpoint(step).mkdir(parents=True)
        (run.checkpoint(step) / "trainer_state.json").write_text("{}")
    partial = run.checkpoints / "step-11.tmp"
    for odd in (partial, run.checkpoints / "step-x", run.checkpoint(12)):  # 12: no state file
        odd.mkdir()
    assert checkpoint_dirs(tmp_path) == [run.checkpoint(9), run.checkpoint(10),
                                         run.checkpoint(100)]
    assert [checkpoint_step(p) for p in (run.checkpoint(5), partial, run.final)] == [5, None, None]
    assert run.partial_checkpoints() == [partial]
    remove_partial_checkpoints(tmp_path)
    assert not partial.exists() and run.checkpoint(12).exists()
    assert continue_weights(tmp_path) == run.checkpoint(100)
    run.final.mkdir()
    assert continue_weights(tmp_path) == run.final


def test_predictions_files_for_the_test_file_and_for_later_files():
    run = RunDir("/runs/a")
    assert [p.as_posix() for p in (
        run.predictions(".csv"), run.predictions(".parquet", "/data/new.parquet"),
        run.predictions(".csv", "later.jsonl", "step-40"))] == [
        "/runs/a/predictions.csv", "/runs/a/predictions-new.parquet",
        "/runs/a/predictions-later-step-40.csv"]


def _set_many(run_dir: str, key: str, times: int) -> None:
    from tui_tune.runs.files import update_run_json

    for n in range(times):
        update_run_json(Path(run_dir), **{key: n})


def test_two_processes_updating_run_json_never_undo_each_others_keys(tmp_path):
    """The app writes notes/tags while the worker writes its status: each read-modify-write
    holds the folder's lock, so the last value of each writer's key survives."""
    import multiprocessing

    from tui_tune.runs.files import read_run_json, update_run_json

    update_run_json(tmp_path, status="running")
    context = multiprocessing.get_context("spawn")
    writers = [context.Process(target=_set_many, args=(str(tmp_path), key, 300))
               for key in ("notes_counter", "status_counter")]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(120)
        assert writer.exitcode == 0
    data = read_run_json(tmp_path)
    assert data["notes_counter"] == 299 and data["status_counter"] == 299
    assert data["status"] == "running"
