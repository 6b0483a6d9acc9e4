"""`tui-tune ls` and `sweep --list` as a user reads them: a sweep's runs told apart by the
values they set, the best combination named, and run ids whole in 80 columns or piped."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import pytest

from tui_tune.config.presets import resolve
from tui_tune.events import encode, make_event
from tui_tune.runs.store import RunStore
from tui_tune.runs.sweep import create_sweep

ANSI = re.compile(r"\x1b\[[0-9;]*m")
LRS = (0.0001, 0.0002, 0.0005)
VAL = {0.0001: 1.5, 0.0002: 0.75, 0.0005: 3.0}


def tui_tune(*args, cwd, env_extra=None):
    env = {**os.environ, **(env_extra or {})}
    result = subprocess.run([sys.executable, "-m", "tui_tune", *args], check=False, cwd=cwd,
                            env=env, capture_output=True, text=True, timeout=120,
                            stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def swept(preset_workdir):
    """A queued sweep over three learning rates whose members completed with fixed losses,
    and a lone run renamed by experiment_name (which brings the name and preset columns)."""
    store = RunStore()
    experiment = resolve("demo-tiny", [f"sweep.training.lr={list(LRS)}"]).experiment
    sweep_dir = create_sweep(store, experiment, "demo-tiny")
    for run_dir in store.run_dirs():
        lr = json.loads((run_dir / "run.json").read_text())["sweep_values"]["training.lr"]
        events = [make_event("start", run_id=run_dir.name, world_size=1, devices=["cpu"],
                             params_total=1, params_trainable=1, steps_total=20, train_rows=1,
                             val_rows=1),
                  make_event("step", step=20, epoch=1.0, loss=VAL[lr] - 0.25, lr=lr,
                             grad_norm=1.0, tokens=10, tokens_per_s=99.0, step_time_s=0.1,
                             mem_allocated_gib=0, mem_reserved_gib=0, mem_peak_gib=0),
                  make_event("eval", step=20, val_loss=VAL[lr], metric="perplexity",
                             metric_value=2 * VAL[lr], perplexity=2 * VAL[lr]),
                  make_event("end", status="completed", best_val_loss=VAL[lr])]
        (run_dir / "events.jsonl").write_text("".join(encode(e) for e in events))
    renamed = resolve("demo-tiny", ['general.experiment_name="a-rather-long-name"']).experiment
    store.create(renamed, "demo-tiny")
    return store, sweep_dir


def lines_of(text: str) -> list[str]:
    return [ANSI.sub("", line).rstrip() for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("columns", [80, 120])
def test_ls_in_a_terminal_keeps_every_run_id_whole_and_tells_sweep_runs_apart(swept, columns):
    store, sweep_dir = swept
    out = tui_tune("ls", cwd=store.root.parent,
                   env_extra={"COLUMNS": str(columns), "TTY_COMPATIBLE": "1"}).stdout
    lines = lines_of(out)
    assert all(len(line) <= columns for line in lines), out
    assert len(lines) == 1 + 1 + 3 + 1  # header, the sweep's row, its runs, the lone run
    ids = [run.name for run in store.run_dirs()]
    for run_id in ids:  # each on one line, whole
        assert sum(line.split()[0] == run_id for line in lines) == 1, out
    header = lines[0].split()
    assert header[:2] == ["run", "swept"]
    by_id = {line.split()[0]: line.split() for line in lines[1:]}
    (summary,) = [line.split() for line in lines if line.startswith(f"sweep {sweep_dir.name}")]
    assert summary[2] == "★lr=0.0002" and "0.75" in summary, out
    assert summary[summary.index("3/3"):][:2] == ["3/3", "ended"]
    assert "loss" in header  # what dropped first: metric, tokens/s, elapsed, name, preset
    assert sorted(by_id[i][1] for i in ids if "-lr" in i) == \
        ["lr=0.0001", "lr=0.0002", "lr=0.0005"]
    members = [line.split()[0] for line in lines[1:]]
    position = members.index("sweep")  # the sweep's row, then its runs in grid order
    assert [by_id[i][1] for i in members[position + 1:position + 4]] == \
        ["lr=0.0001", "lr=0.0002", "lr=0.0005"]


def test_ls_piped_is_one_line_per_row_with_every_column(swept):
    store, _ = swept
    out = tui_tune("ls", cwd=store.root.parent, env_extra={"COLUMNS": "80"}).stdout
    lines = lines_of(out)
    assert len(lines) == 6 and lines[0].split() == [
        "run", "swept", "name", "preset", "status", "step", "loss", "metric", "tokens/s",
        "elapsed", "ETA"]


def test_sweep_list_prints_loss_val_loss_and_metric_per_combination(swept):
    store, sweep_dir = swept
    out = tui_tune("sweep", "--list", cwd=store.root.parent).stdout
    lines = out.splitlines()
    assert lines[0].startswith(sweep_dir.name) and \
        "best val loss 0.75 (lr=0.0002)" in lines[0], out
    rows = {line.split()[1]: line for line in lines[1:]}
    assert len(rows) == 3
    best = [line for line in lines[1:] if line.startswith(" *")]
    assert len(best) == 1 and "lr=0.0002" in best[0]
    assert "loss 0.5  val loss 0.75  perplexity 1.5" in best[0], out


def test_sweep_detach_lists_the_runs_it_queued(preset_workdir, monkeypatch, capsys):
    """In-process, with the runner left out (it would start training): stdout names each run
    the sweep queued with the values it sets, one per line."""
    from tui_tune.cli import main

    monkeypatch.setattr("tui_tune.runs.start.start_runner", lambda sweep_dir: 0)
    assert main(["sweep", "demo-tiny", "--set", "sweep.training.lr=[0.001, 0.002]",
                 "--set", "sweep.adapter.r=[4, 8]", "--detach"]) == 0
    out = capsys.readouterr().out.splitlines()
    queued = sorted(p.name for p in RunStore().run_dirs())
    assert sorted(line.split()[0] for line in out) == queued and len(queued) == 4
    assert sorted(" ".join(line.split()[1:]) for line in out) == [
        "lr=0.001 r=4", "lr=0.001 r=8", "lr=0.002 r=4", "lr=0.002 r=8"]
