"""`tui-tune ls | logs | stop | rm | export | run | sweep` as a user types them (real processes)."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

import psutil
import pytest

from tui_tune.config.presets import resolve
from tui_tune.events import encode, make_event
from tui_tune.runs.files import update_run_json
from tui_tune.runs.procs import marker_env
from tui_tune.runs.store import RunStore


def tui_tune(*args, cwd, env_extra=None, timeout=120):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "tui_tune", *args], check=False, cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def run_env(run_dir):
    """The environment launch gives a run's processes: fake runs here carry the same marker."""
    return {**os.environ, **marker_env(run_dir)}


@pytest.fixture
def workdir(preset_workdir):
    return preset_workdir


def finished_run(store: RunStore, steps: int = 20, end: dict | None = None):
    """A run directory as a worker leaves it (files only): completed unless `end` says else;
    end={} leaves out the end event (the worker vanished)."""
    run_dir = store.create(resolve("demo-tiny").experiment, "demo-tiny")
    now = time.time()
    update_run_json(run_dir, launched_at=now - 30)
    events = [make_event("start", run_id=run_dir.name, world_size=1, devices=["cpu"],
                         params_total=1, params_trainable=1, steps_total=steps, train_rows=1,
                         val_rows=1),
              make_event("step", step=steps, epoch=1.0, loss=0.5, lr=1e-4, grad_norm=1.0,
                         tokens=10, tokens_per_s=99.0, step_time_s=0.1, mem_allocated_gib=0,
                         mem_reserved_gib=0, mem_peak_gib=0),
              make_event("end", **({"status": "completed"} if end is None else end))]
    if end == {}:
        events.pop()
    (run_dir / "events.jsonl").write_text("".join(encode(e) for e in events))
    (run_dir / "console.log").write_text("hello from the worker\n")
    (run_dir / "final").mkdir()
    (run_dir / "final" / "model.safetensors").write_bytes(b"weights")
    (run_dir / "checkpoints" / "step-10").mkdir(parents=True)
    return run_dir


def test_ls_lists_runs_and_reports_foreign_entries(workdir):
    store = RunStore()
    run_dir = finished_run(store)
    (store.root / "stray.txt").write_text("x")
    result = tui_tune("ls", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert run_dir.name in result.stdout and "completed" in result.stdout
    assert "20/20" in result.stdout
    assert "stray.txt" in result.stderr
    rows = json.loads(tui_tune("ls", "--json", cwd=workdir).stdout)
    assert rows[0]["run_id"] == run_dir.name and rows[0]["last_loss"] == 0.5


def test_runs_dir_option_and_environment(workdir):
    other = RunStore(workdir / "elsewhere")
    run_dir = finished_run(other)
    assert run_dir.name in tui_tune("ls", "--runs-dir", "elsewhere", cwd=workdir).stdout
    assert run_dir.name in tui_tune("--runs-dir", "elsewhere", "ls", cwd=workdir).stdout
    assert run_dir.name in tui_tune("--runs-dir=elsewhere", "ls", cwd=workdir).stdout
    assert run_dir.name in tui_tune("ls", "--runs-dir=elsewhere", cwd=workdir).stdout
    assert run_dir.name in tui_tune("ls", cwd=workdir,
                                    env_extra={"TUI_TUNE_RUNS": str(other.root)}).stdout
    assert "no runs" in tui_tune("ls", cwd=workdir).stdout


def test_logs_export_and_rm_by_prefix(workdir):
    run_dir = finished_run(RunStore())
    prefix = run_dir.name[:12]
    assert tui_tune("logs", prefix, cwd=workdir).stdout == "hello from the worker\n"
    result = tui_tune("export", prefix, "-o", str(workdir), cwd=workdir)
    archive = workdir / f"{run_dir.name}.tar.gz"
    assert result.returncode == 0 and result.stdout.strip() == str(archive)
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {f"{run_dir.name}/{n}" for n in ("config.toml", "run.json", "events.jsonl",
                                            "final/model.safetensors")} <= names
    assert not any("checkpoints" in n or "console.log" in n for n in names)
    assert tui_tune("rm", prefix, "-y", cwd=workdir).returncode == 0
    assert not run_dir.exists()


def test_unknown_or_ambiguous_run_is_a_clear_error(workdir):
    store = RunStore()
    finished_run(store)
    finished_run(store)
    result = tui_tune("logs", "2", cwd=workdir)
    assert result.returncode == 2 and "matches 2 runs" in result.stderr
    result = tui_tune("stop", "nothing-like-this", cwd=workdir)
    assert result.returncode == 2 and "no run or sweep matches" in result.stderr


def test_rm_refuses_a_live_run_unless_forced(workdir):
    run_dir = RunStore().create(resolve("demo-tiny").experiment, "demo-tiny")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                               start_new_session=True, env=run_env(run_dir))
    try:
        update_run_json(run_dir, launched_at=time.time(), pid=sleeper.pid,
                        pid_start_time=psutil.Process(sleeper.pid).create_time())
        result = tui_tune("rm", run_dir.name, cwd=workdir)
        assert result.returncode == 2 and "is running" in result.stderr
        assert run_dir.exists()
        assert tui_tune("rm", run_dir.name, "--force", "-y", cwd=workdir).returncode == 0
        assert not run_dir.exists()
        assert sleeper.wait(timeout=30) is not None  # the "run" was ended, not orphaned
    finally:
        if sleeper.poll() is None:
            sleeper.kill()


def test_run_refuses_what_cannot_start_and_leaves_nothing(workdir):
    result = tui_tune("run", "demo-tiny", "--set", 'dataset.train_file="missing.jsonl"',
                      "--detach", cwd=workdir)
    assert result.returncode == 2
    assert "dataset.train_file" in result.stderr and "missing.jsonl" in result.stderr
    result = tui_tune("run", "demo-tiny", "--set", 'environment.mixed_precision="fp16"',
                      "--detach", cwd=workdir)
    assert result.returncode == 2 and "fp16 needs a CUDA GPU" in result.stderr
    result = tui_tune("run", "demo-tiny", "--set", 'training.lrr=1', cwd=workdir)
    assert result.returncode == 2 and "training.lrr" in result.stderr
    result = tui_tune("run", "demo-tiny", "--set", "sweep.training.lr=[0.1, 0.2]", cwd=workdir)
    assert result.returncode == 2 and "tui-tune sweep" in result.stderr
    assert not (workdir / "runs").exists() or not list((workdir / "runs").iterdir())


def test_sweep_checks_every_member_before_queueing_any(workdir):
    result = tui_tune("sweep", "demo-tiny", "--set", 'sweep.dataset.train_file='
                      '["demo/data/train.jsonl", "missing.jsonl"]', "--detach", cwd=workdir)
    assert result.returncode == 2, result.stderr
    assert "dataset.train_file" in result.stderr and "missing.jsonl" in result.stderr
    assert not (workdir / "runs").exists() or not list((workdir / "runs").iterdir())


@pytest.mark.parametrize(("end", "status", "code"), [
    (None, "completed", 0),
    ({"status": "failed", "error_type": "ValueError", "message": "bad column"}, "failed", 1),
    ({"status": "stopped"}, "stopped", 3),
    ({"status": "oom", "error_type": "OutOfMemoryError", "message": "CUDA out of memory",
      "phase": "backward"}, "oom", 4),
    ({}, "died", 5),
])
def test_watch_exit_code_follows_the_run_status(workdir, end, status, code):
    run_dir = finished_run(RunStore(), end=end)
    result = tui_tune("watch", run_dir.name, cwd=workdir)
    assert result.returncode == code, result.stderr
    assert f"{run_dir.name}: {status}" in result.stderr
    assert "step 20/20" in result.stdout
    if status == "oom":
        assert "OutOfMemoryError: CUDA out of memory" in result.stderr
        assert "during backward" in result.stderr and "training.batch_size" in result.stderr
    if status == "died":
        assert "hello from the worker" in result.stderr  # the console.log tail says why
    listed = json.loads(tui_tune("ls", "--json", cwd=workdir).stdout)
    assert listed[0]["status"] == status


def test_ls_survives_hand_edited_run_json_and_warns_once(workdir):
    store = RunStore()
    good = finished_run(store)
    odd = finished_run(store)
    (odd / "run.json").write_text(json.dumps({
        "name": {"not": "text"}, "preset": 7, "sweep_id": {"a": 1}, "parent": ["x"],
        "created_at": "yesterday", "launched_at": "soon", "pid": "abc", "host": 5}))
    (store.root / "stray.txt").write_text("x")
    os.symlink(workdir / "nowhere", store.root / "dangling")
    result = tui_tune("ls", cwd=workdir, env_extra={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert good.name in result.stdout and odd.name in result.stdout
    assert result.stderr.count("stray.txt") == 1 and result.stderr.count("dangling") == 1
    (row,) = [r for r in json.loads(tui_tune("ls", "--json", cwd=workdir).stdout)
              if r["run_id"] == odd.name]
    assert (row["status"], row["step"], row["sweep_id"], row["preset"]) == \
        ("completed", 20, None, "?")


def test_ls_names_sweep_members_and_shows_eta_of_a_live_run(workdir):
    store = RunStore()
    experiment = resolve("demo-tiny", ['general.experiment_name="lr-probe"']).experiment
    run_dir = store.create(experiment, "demo-tiny")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                               start_new_session=True, env=run_env(run_dir))
    try:
        now = time.time()
        update_run_json(run_dir, launched_at=now - 60, pid=sleeper.pid,
                        pid_start_time=psutil.Process(sleeper.pid).create_time())
        step = {"epoch": 0.1, "loss": 0.5, "lr": 1e-4, "grad_norm": 1.0, "tokens": 10,
                "tokens_per_s": 99.0, "step_time_s": 1.0, "mem_allocated_gib": 0,
                "mem_reserved_gib": 0, "mem_peak_gib": 0}
        events = [{**make_event("start", run_id=run_dir.name, world_size=1, devices=["cpu"],
                                params_total=1, params_trainable=1, steps_total=1000,
                                train_rows=1, val_rows=1), "t": now - 50}]
        events += [{**make_event("step", step=i, **step), "t": now - 50 + i} for i in range(1, 41)]
        (run_dir / "events.jsonl").write_text("".join(encode(e) for e in events))
        (row,) = json.loads(tui_tune("ls", "--json", cwd=workdir).stdout)
        assert row["status"] == "running"
        assert row["eta_s"] == pytest.approx(960 - 10, abs=5)  # 960 steps at 1 s, 10 s gone
        table = tui_tune("ls", cwd=workdir, env_extra={"COLUMNS": "200"}).stdout
        header, line = table.splitlines()[:2]
        assert header.split() == ["run", "name", "preset", "status", "step", "loss",
                                  "tokens/s", "elapsed", "ETA"]
        assert line.split()[1:5] == ["lr-probe", "demo-tiny", "running", "40/1000"]
        assert re.fullmatch(r"1[45]:\d\d", line.split()[-1])  # ~15:50, as the app shows it
    finally:
        sleeper.kill()
        sleeper.wait()


STUBBORN_RANK = ("import signal, time\n"
                 "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
                 "print('ready', flush=True)\n"
                 "time.sleep(120)\n")
LAUNCHER_WITH_HELPER = ("import subprocess, sys, time\n"
                        "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
                        "time.sleep(120)\n")


def test_stop_kills_what_ignores_sigterm_after_the_grace(workdir):
    """A rank that never checkpoints is killed after --grace; the launcher's orphaned helper
    (same session, other parent) goes too; the run is `stopped` and says it was killed."""
    run_dir = RunStore().create(resolve("demo-tiny").experiment, "demo-tiny")
    launcher = subprocess.Popen([sys.executable, "-c", LAUNCHER_WITH_HELPER],
                                start_new_session=True, env=run_env(run_dir))
    rank = subprocess.Popen([sys.executable, "-c", STUBBORN_RANK], stdout=subprocess.PIPE,
                            text=True, start_new_session=True, env=run_env(run_dir))
    helpers: list[psutil.Process] = []
    try:
        assert rank.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + 30
        while not helpers and time.monotonic() < deadline:
            time.sleep(0.1)
            helpers = psutil.Process(launcher.pid).children()
        (helper,) = helpers
        update_run_json(run_dir, launched_at=time.time(), pid=launcher.pid,
                        pid_start_time=psutil.Process(launcher.pid).create_time())
        (run_dir / "ranks").mkdir()
        (run_dir / "ranks" / "rank-0.json").write_text(json.dumps(
            {"rank": 0, "pid": rank.pid, "host": None,
             "start_time": psutil.Process(rank.pid).create_time()}))
        result = tui_tune("stop", run_dir.name, "--grace", "1", cwd=workdir)
        assert result.returncode == 0, result.stderr
        assert f"{run_dir.name}: stopped" in result.stderr
        assert rank.wait(timeout=10) == -9  # SIGKILL: it ignored SIGTERM
        assert launcher.wait(timeout=10) is not None
        assert not helper.is_running() or helper.status() == psutil.STATUS_ZOMBIE
        info = json.loads((run_dir / "run.json").read_text())
        assert info["status"] == "stopped" and "killed" in info["reason"]
    finally:
        for proc in (launcher, rank):
            if proc.poll() is None:
                proc.kill()
        psutil.wait_procs(helpers, timeout=0)
        for proc in helpers:
            if proc.is_running():
                proc.kill()


def test_rm_refuses_a_run_live_on_another_machine(workdir):
    run_dir = finished_run(RunStore(), end={})
    update_run_json(run_dir, host="node-7", launched_at=time.time(), pid=1, pid_start_time=1.0)
    result = tui_tune("rm", run_dir.name, cwd=workdir)
    assert result.returncode == 2 and "is running" in result.stderr and "node-7" in result.stderr
    assert run_dir.exists()
    assert tui_tune("rm", run_dir.name, "--force", "-y", cwd=workdir).returncode == 0
    assert not run_dir.exists()


def test_export_of_a_run_without_final_weights_warns(workdir):
    run_dir = finished_run(RunStore(), end={"status": "stopped"})
    shutil.rmtree(run_dir / "final")
    result = tui_tune("export", run_dir.name, cwd=workdir)
    assert result.returncode == 0 and "no final/ weights (stopped)" in result.stderr
    with tarfile.open(result.stdout.strip()) as tar:
        assert f"{run_dir.name}/events.jsonl" in tar.getnames()
    assert not list(workdir.glob(".*.partial"))


def live_fake_run(store: RunStore):
    """A run whose "launcher" is a sleeping process: alive until the test kills it."""
    run_dir = finished_run(store, end={})
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                               start_new_session=True, env=run_env(run_dir))
    update_run_json(run_dir, launched_at=time.time(), pid=sleeper.pid,
                    pid_start_time=psutil.Process(sleeper.pid).create_time())
    return run_dir, sleeper


def test_logs_follow_prints_new_output_until_the_run_ends(workdir):
    run_dir, sleeper = live_fake_run(RunStore())
    logs = subprocess.Popen([sys.executable, "-m", "tui_tune", "logs", "-f", run_dir.name],
                            cwd=workdir, stdout=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        assert logs.stdout.readline() == "hello from the worker\n"
        with open(run_dir / "console.log", "a") as handle:
            handle.write("step 21\n")
        assert logs.stdout.readline() == "step 21\n"
        with open(run_dir / "console.log", "a") as handle:
            handle.write("last words\n")
        sleeper.kill()  # the run ends: -f stops after printing what is left
        sleeper.wait()
        assert logs.wait(timeout=30) == 0
        assert logs.stdout.read() == "last words\n"
    finally:
        for proc in (sleeper, logs):
            if proc.poll() is None:
                proc.kill()


def test_ctrl_c_in_watch_detaches_and_leaves_the_run_alone(workdir):
    run_dir, sleeper = live_fake_run(RunStore())
    watch = subprocess.Popen([sys.executable, "-m", "tui_tune", "watch", run_dir.name],
                             cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, stdin=subprocess.DEVNULL)
    try:
        assert watch.stdout.readline().startswith("step 20/20")
        watch.send_signal(signal.SIGINT)
        _, err = watch.communicate(timeout=30)
        assert watch.returncode == 0 and "detached" in err
        assert sleeper.poll() is None  # watch is read-only: the run goes on
    finally:
        for proc in (sleeper, watch):
            if proc.poll() is None:
                proc.kill()


def fake_sweep_runner(sweep_dir) -> subprocess.Popen:
    """A sleeping stand-in whose command line names the runner module and the sweep, which is
    what proves a sweep runner before it is signalled."""
    from tui_tune.runs.sweep import RUNNER_MODULE

    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "-m",
                             RUNNER_MODULE, str(sweep_dir)], start_new_session=True)


def test_watch_of_a_queued_sweep_member_waits_for_its_turn(workdir):
    from tui_tune.runs.sweep import SWEEP_JSON, sweeps_root

    store = RunStore()
    sweep_dir = sweeps_root(store) / "20260101-000000-demo-tiny"
    sweep_dir.mkdir(parents=True)
    run_dir = store.create(resolve("demo-tiny").experiment, "demo-tiny", sweep_id=sweep_dir.name)
    runner = fake_sweep_runner(sweep_dir)
    (sweep_dir / SWEEP_JSON).write_text(json.dumps({
        "runs": [run_dir.name], "runner_pid": runner.pid,
        "runner_start_time": psutil.Process(runner.pid).create_time()}))
    watch = subprocess.Popen([sys.executable, "-m", "tui_tune", "watch", run_dir.name],
                             cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, stdin=subprocess.DEVNULL)
    try:
        time.sleep(7)  # past the 5 s a plain run gets to show up as started
        assert watch.poll() is None
        update_run_json(run_dir, launched_at=time.time() - 1)
        (run_dir / "events.jsonl").write_text(encode(make_event("end", status="completed")))
        _, err = watch.communicate(timeout=30)
        assert watch.returncode == 0 and f"{run_dir.name}: completed" in err
    finally:
        for proc in (runner, watch):
            if proc.poll() is None:
                proc.kill()


def test_stop_of_a_sweep_ends_its_runner_and_runs_and_cancels_the_queue(workdir):
    from tui_tune.runs.sweep import SWEEP_JSON, sweeps_root

    store = RunStore()
    sweep_dir = sweeps_root(store) / "20260101-000000-demo-tiny"
    sweep_dir.mkdir(parents=True)
    running, sleeper = live_fake_run(store)
    queued = store.create(resolve("demo-tiny").experiment, "demo-tiny", sweep_id=sweep_dir.name)
    runner = fake_sweep_runner(sweep_dir)
    (sweep_dir / SWEEP_JSON).write_text(json.dumps({
        "runs": [running.name, queued.name], "runner_pid": runner.pid,
        "runner_start_time": psutil.Process(runner.pid).create_time()}))
    try:
        result = tui_tune("stop", sweep_dir.name[:12], "--grace", "1", cwd=workdir)
        assert result.returncode == 0, result.stderr
        assert runner.wait(timeout=10) is not None and sleeper.wait(timeout=10) is not None
        assert f"{running.name}: stopped" in result.stdout
        assert f"{queued.name}: stopped" in result.stdout
        assert "before this run started" in json.loads((queued / "run.json").read_text())["reason"]
    finally:
        for proc in (runner, sleeper):
            if proc.poll() is None:
                proc.kill()


def test_live_view_shows_the_numbers_that_matter(workdir):
    from rich.console import Console

    from tui_tune.cli.view import live_panel

    run_dir, sleeper = live_fake_run(RunStore())
    try:
        console = Console(record=True, width=120, color_system=None)
        console.print(live_panel(RunStore().summary(run_dir)))
        text = console.export_text()
    finally:
        sleeper.kill()
        sleeper.wait()
    header, values = [line.split() for line in text.splitlines()[2:4]]
    assert text.splitlines()[0].split() == [run_dir.name, "running"]
    assert header == ["step", "loss", "lr", "grad", "norm", "val", "loss", "tokens/s", "elapsed",
                      "ETA"]
    assert values[:5] == ["20/20", "0.5", "0.0001", "1", "-"] and values[5] == "99"


def with_eval(run_dir, metric: str, value: float, **others) -> None:
    """Append an eval event naming its metric, as a labelling run's worker writes it."""
    with open(run_dir / "events.jsonl", "a", encoding="utf-8") as handle:
        handle.write(encode(make_event("eval", step=20, val_loss=0.4, metric=metric,
                                       metric_value=value, **{metric: value}, **others)))


def test_ls_and_watch_show_the_eval_metric_by_its_name(workdir):
    from rich.console import Console

    from tui_tune.cli.view import live_panel, plain_line, runs_table
    from tui_tune.runs.summary import EventSummary

    store = RunStore()
    classified, regressed, plain = finished_run(store), finished_run(store), finished_run(store)
    with_eval(classified, "accuracy", 0.875, confusion=[[7, 1], [0, 8]], labels=["no", "yes"])
    with_eval(regressed, "mse", 0.0125)
    by_dir = {s.path: s for s in store.list()}
    console = Console(record=True, width=160, color_system=None)
    console.print(runs_table(list(by_dir.values())))
    table = console.export_text().splitlines()
    assert table[0].split() == ["run", "status", "step", "loss", "metric", "tokens/s",
                                "elapsed", "ETA"]
    rows = {line.split()[0]: line.split() for line in table[1:]}
    assert rows[classified.name][4:6] == ["accuracy", "0.875"]
    assert rows[regressed.name][4:6] == ["MSE", "0.0125"]
    assert rows[plain.name][4] == "-"  # no eval yet
    narrow = Console(record=True, width=80, color_system=None)  # no room: the ids stay whole
    narrow.print(runs_table(list(by_dir.values()), width=80))
    text = narrow.export_text()
    assert "metric" not in text and classified.name in text
    assert "metric" in tui_tune("ls", cwd=workdir, env_extra={"COLUMNS": "120"}).stdout
    console = Console(record=True, width=160, color_system=None)
    console.print(live_panel(by_dir[regressed]))
    header, values = [line.split() for line in console.export_text().splitlines()[2:4]]
    assert header[header.index("loss", 2) + 1] == "MSE" and values[5] == "0.0125"
    assert "MSE 0.0125" in plain_line(by_dir[regressed])
    assert "accuracy 0.875" in plain_line(by_dir[classified])
    listed = {r["run_id"]: r for r in json.loads(tui_tune("ls", "--json", cwd=workdir).stdout)}
    assert listed[classified.name]["metric"] == "accuracy"
    assert listed[classified.name]["metrics"]["metric_value"] == 0.875
    assert listed[plain.name]["metric"] is None
    summary = store.summary(classified)
    cached = EventSummary.from_dict(json.loads(json.dumps(  # the disk cache of a big run
        EventSummary(metric_name=summary.metric).to_dict(), default=str)))
    assert cached.metric_name == "accuracy"


def test_ls_says_status_and_times_as_the_app_does(workdir):
    """One palette and one duration format (tui_tune/display.py) for the CLI and the app."""
    from rich.console import Console

    from tui_tune.cli.view import runs_table
    from tui_tune.tui.formatting import STATUS_COLOURS, duration

    store = RunStore()
    for status in ("completed", "failed", "stopped"):
        finished_run(store, end={"status": status})
    summaries = store.list()
    table = runs_table(summaries)
    column = {c.header: c for c in table.columns}
    assert [cell.style for cell in column["status"].cells] == \
        [f"bold {STATUS_COLOURS[s.status]}" for s in summaries]
    console = Console(record=True, width=200, color_system=None)
    console.print(table)
    rows = [line.split() for line in console.export_text().splitlines()[1:]]
    assert [row[-2] for row in rows] == [duration(s.elapsed_s) for s in summaries]
    assert all(re.fullmatch(r"\d+:\d\d", row[-2]) for row in rows)


def test_commands_never_reach_outside_the_runs_folder(workdir):
    """`rm ..`, `rm ../..`, `rm -y /any/dir`, a link out of the runs folder: all refused, naming
    the runs folder, and nothing is deleted (even a look-alike holding a config.toml)."""
    runs = workdir / "runs"
    run_dir = finished_run(RunStore(runs))
    victim = workdir / "victim"
    victim.mkdir()
    (victim / "config.toml").write_text("# looks like a run, lives elsewhere\n")
    (runs / "escape").symlink_to(victim)
    cwd = workdir / "deep" / "inside"
    cwd.mkdir(parents=True)
    env = {"TUI_TUNE_RUNS": str(runs)}
    attempts = [("rm", ".."), ("rm", "../.."), ("rm", "-y", str(victim)),
                ("rm", "-y", f"{runs}/../victim"), ("rm", "-y", "escape"),
                ("rm", "-y", str(runs / "escape")), ("rm", "-y", "--force", str(workdir)),
                ("export", ".."), ("logs", "../.."), ("watch", str(victim)),
                ("resume", "--detach", str(victim)), ("stop", str(victim))]
    for args in attempts:
        result = tui_tune(*args, cwd=cwd, env_extra=env)
        assert result.returncode == 2, (args, result.stderr)
        assert str(runs) in result.stderr, (args, result.stderr)
        assert (victim / "config.toml").exists() and cwd.is_dir() and run_dir.is_dir(), args
    assert "escape" not in tui_tune("ls", cwd=cwd, env_extra=env).stdout
    result = tui_tune("logs", str(run_dir), cwd=cwd, env_extra=env)  # a path inside is fine
    assert result.stdout == "hello from the worker\n"


def test_rm_without_a_terminal_and_without_yes_deletes_nothing(workdir):
    run_dir = finished_run(RunStore())
    result = tui_tune("rm", run_dir.name, cwd=workdir)  # stdin is /dev/null
    assert result.returncode == 2 and "-y" in result.stderr and str(run_dir) in result.stderr
    assert run_dir.is_dir()
    assert tui_tune("rm", run_dir.name, "-y", cwd=workdir).returncode == 0
    assert not run_dir.exists()


SESSION_WITH_CHILD = ("import subprocess, sys, time\n"
                      "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(120)'])\n"
                      "print('ready', flush=True)\n"
                      "time.sleep(120)\n")


def test_a_forged_run_json_never_gets_an_unrelated_process_killed(workdir):
    """run.json (and a rank file) pointing at a process of someone else's session, with the
    right start times: stop, rm --force and the status ignore it; it and its session live on."""
    run_dir = finished_run(RunStore(), end={})
    bystander = subprocess.Popen([sys.executable, "-c", SESSION_WITH_CHILD], text=True,
                                 stdout=subprocess.PIPE, start_new_session=True)
    child = None
    try:
        assert bystander.stdout.readline().strip() == "ready"
        (child,) = psutil.Process(bystander.pid).children()
        started = psutil.Process(bystander.pid).create_time()
        update_run_json(run_dir, launched_at=time.time(), pid=bystander.pid,
                        pid_start_time=started)
        (run_dir / "ranks").mkdir()
        (run_dir / "ranks" / "rank-0.json").write_text(json.dumps(
            {"rank": 0, "pid": child.pid, "host": None, "start_time": child.create_time()}))
        assert RunStore().summary(run_dir).status == "died"  # not taken for this run's launcher
        result = tui_tune("stop", run_dir.name, "--grace", "1", cwd=workdir)
        assert f"{run_dir.name}: died" in result.stderr, result.stderr
        assert tui_tune("rm", "--force", "-y", run_dir.name, cwd=workdir).returncode == 0
        time.sleep(1.0)
        assert bystander.poll() is None and child.is_running()
        assert child.status() != psutil.STATUS_ZOMBIE
    finally:
        bystander.kill()
        bystander.wait()
        if child is not None and child.is_running():
            child.kill()


def test_stop_ends_every_process_of_the_run_also_unrecorded_ones(workdir):
    """A second worker of the run (not in run.json nor ranks/, own session) is stopped too,
    with or without a recorded launcher alive."""
    run_dir = finished_run(RunStore(), end={})
    launcher = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                start_new_session=True, env=run_env(run_dir))
    strays = [subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                               start_new_session=True, env=run_env(run_dir)) for _ in range(2)]
    try:
        update_run_json(run_dir, launched_at=time.time(), pid=launcher.pid,
                        pid_start_time=psutil.Process(launcher.pid).create_time())
        result = tui_tune("stop", run_dir.name, "--grace", "1", cwd=workdir)
        assert launcher.wait(timeout=30) is not None and strays[0].wait(timeout=30) is not None
        assert f"{run_dir.name}: stopped" in result.stderr
        late = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"],
                                start_new_session=True, env=run_env(run_dir))
        strays.append(late)
        tui_tune("stop", run_dir.name, "--grace", "1", cwd=workdir)  # nothing on record alive
        assert late.wait(timeout=30) is not None and strays[1].poll() is not None
    finally:
        for proc in (launcher, *strays):
            if proc.poll() is None:
                proc.kill()


def test_ps_lists_orphans_whose_folder_is_gone_and_stop_ends_them(workdir):
    """Processes of a deleted run: `ps` shows each with its run directory, and `stop` takes the
    pid or the directory it printed."""
    gone = workdir / "runs" / "20260101-000000-gone"
    other = workdir / "elsewhere" / "20260101-000000-other"
    sleep = [sys.executable, "-c", "import time; time.sleep(120)"]
    orphans = [subprocess.Popen(sleep, start_new_session=True, env=run_env(gone)),
               subprocess.Popen(sleep, start_new_session=True, env=run_env(other))]
    try:
        listing = tui_tune("ps", cwd=workdir)
        assert listing.returncode == 0, listing.stderr
        rows = {line.split()[0]: line for line in listing.stdout.splitlines()[1:]}
        assert str(gone) in rows[str(orphans[0].pid)] and "deleted" in rows[str(orphans[0].pid)]
        listed = json.loads(tui_tune("ps", "--json", cwd=workdir).stdout)
        assert {(r["pid"], r["run_dir"], r["dir_exists"]) for r in listed} >= \
            {(orphans[0].pid, str(gone), False), (orphans[1].pid, str(other), False)}
        result = tui_tune("stop", str(orphans[0].pid), "--grace", "5", cwd=workdir)
        assert result.returncode == 0, result.stderr
        assert orphans[0].wait(timeout=30) is not None and orphans[1].poll() is None
        result = tui_tune("stop", str(other), "--grace", "5", cwd=workdir)
        assert result.returncode == 0, result.stderr
        assert orphans[1].wait(timeout=30) is not None
        assert str(other) not in tui_tune("ps", cwd=workdir).stdout
    finally:
        for proc in orphans:
            if proc.poll() is None:
                proc.kill()
