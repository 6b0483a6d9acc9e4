"""Run monitor: charts, generations and log fill from an events.jsonl written live by another
process; the health line; read-only watch; leaving never stops anything."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from tests.tui.conftest import fixed_events, wait_for, write_run
from tui_tune.tui.app import TuneApp
from tui_tune.tui.screens.dialogs import TextDialog
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.widgets.braille_chart import BrailleChart

WRITER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from tui_tune.event_writer import EventWriter
    run = Path(sys.argv[1])
    with EventWriter(run / "events.jsonl", flush_every_s=0.1) as w:
        w.write("start", run_id=run.name, world_size=1, devices=["cpu"], params_total=10,
                params_trainable=10, steps_total=60, train_rows=100, val_rows=10)
        for step in range(1, 61):
            w.write("step", step=step, epoch=step / 60, loss=3.0 / step, lr=1e-3, grad_norm=1.0,
                    tokens=64, tokens_per_s=1000.0, step_time_s=0.05, mem_allocated_gib=0.1,
                    mem_reserved_gib=0.2, mem_peak_gib=0.15)
            if step % 20 == 0:
                w.write("eval", step=step, val_loss=3.5 / step, perplexity=2.0,
                        metric="perplexity", metric_value=2.0)
                w.write("sample", step=step, prompt="What is 2 + 2?",
                        generation=f"answer-at-{step}", reference="4")
            time.sleep(0.05)
        w.write("end", status="completed")
""")


async def test_charts_and_generations_fill_from_a_live_writer(workdir):
    run_dir = workdir / "runs" / "live-run"
    run_dir.mkdir(parents=True)
    (run_dir / "console.log").write_text("[info] hello from the worker\n")
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(120, 40)) as pilot:
        writer = subprocess.Popen([sys.executable, "-c", WRITER, str(run_dir)])  # noqa: ASYNC220
        try:
            screen = app.screen
            loss = screen.query_one("#chart-loss", BrailleChart)
            await wait_for(pilot, lambda: 0 < loss.series.get("train").x.size < 60
                           if "train" in loss.series else False, timeout=20)
            partial = loss.series["train"].x.size
            await wait_for(pilot, lambda: loss.series["train"].x.size == 60, timeout=20)
            assert partial < 60  # it grew while the other process wrote
            assert loss.series["val"].x.size == 3
            await wait_for(pilot, lambda: "answer-at-60" in
                           str(screen.query_one("#generations-text").render()))
            await pilot.press("left_square_bracket")
            assert "answer-at-40" in str(screen.query_one("#generations-text").render())
            assert "hello from the worker" in str(screen.query_one("#log-text").render())
            assert "step 60/60" in str(screen.query_one("#monitor-header").render())
        finally:
            writer.wait(timeout=30)


async def test_health_line_flags_nan_loss(workdir):
    events = fixed_events(steps=60, status=None)
    events.append({**events[-1], "step": 61, "loss": "nan"})
    run_dir = write_run(workdir / "runs", "nan-run", events=events)
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: "nan" in str(app.screen.query_one("#health").render()))


async def test_watch_is_read_only_and_back_leaves_run_files_alone(workdir):
    run_dir = write_run(workdir / "runs", "20260101-000000-demo-tiny")
    before = (run_dir / "events.jsonl").read_bytes()
    app = TuneApp(watch="20260101")
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        screen = app.screen
        assert screen.read_only
        bindings = {b.binding.action for b in screen.active_bindings.values()}
        assert "stop_run" not in bindings and "resume_run" not in bindings
        await pilot.press("x")  # disabled: no confirmation appears
        await pilot.pause()
        assert app.screen is screen
    assert (run_dir / "events.jsonl").read_bytes() == before


async def test_chart_toggles(workdir):
    run_dir = write_run(workdir / "runs", "toggles")
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(80, 24)) as pilot:
        chart = app.screen.query_one("#chart-loss", BrailleChart)
        await wait_for(pilot, lambda: "train" in chart.series)
        await pilot.press("l", "s", "z")
        assert chart.log_scale and chart.smoothing > 0 and chart.window
        await pilot.press("b")
        await pilot.pause()
        assert chart.size.width > 70  # the loss chart alone fills the width
        assert not app.screen.query_one("#chart-lr").display


async def test_log_tail_shows_the_last_lines_of_console_log(workdir):
    console = "".join(f"[info] line {i} " + "word " * 20 + "\n" for i in range(1, 101))
    run_dir = write_run(workdir / "runs", "long-log", console=console + "[info] the very end\n")
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(120, 40)) as pilot:
        tail = app.screen.query_one("#log-tail")
        await wait_for(pilot, lambda: "the very end" in str(tail.query_one("#log-text").render()))
        await pilot.pause(0.3)
        assert tail.max_scroll_y > 0 and tail.scroll_y == tail.max_scroll_y
        await pilot.resize_terminal(80, 24)  # more wrapped lines: still showing the end
        await pilot.pause(0.3)
        assert tail.scroll_y == tail.max_scroll_y


async def test_log_tail_is_at_the_end_when_opened_from_the_runs_list(make_run):
    console = "\n=== launch: " + "--some-flag value " * 12 + "\n[info] data ready\n[info] the end\n"
    make_run("20260101-000000-demo-tiny", console=console)
    app = TuneApp()
    async with app.run_test(size=(100, 30)) as pilot:
        await wait_for(pilot, lambda: len(app.screen.summaries) == 1)
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))
        tail = app.screen.query_one("#log-tail")
        await wait_for(pilot, lambda: "the end" in str(tail.query_one("#log-text").render()))
        await pilot.pause(0.5)
        assert tail.max_scroll_y > 0 and tail.scroll_y == tail.max_scroll_y


async def test_i_shows_what_the_run_ran_on(workdir):
    events = fixed_events()
    events[0] = {**events[0], "method": "lora", "environment": {
        "python": "3.11.7", "torch": "2.13.0", "cuda": "12.8", "transformers": "5.24.0",
        "peft": "0.21.2", "accelerate": "1.15.0", "bitsandbytes": None,
        "gpus": ["NVIDIA H100 80GB HBM3"] * 2, "driver": "570.124.06", "tui_tune": "0.1.0",
        "git_commit": "0123456789abcdef0123", "git_dirty": True}}
    run_dir = write_run(workdir / "runs", "env-run", events=events)
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(100, 40)) as pilot:
        await wait_for(pilot, lambda: app.screen.series.environment)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog))
        body = app.screen.body
        for line in ("torch        2.13.0", "CUDA         12.8", "bitsandbytes -",
                     "GPUs         2 x NVIDIA H100 80GB HBM3", "driver       570.124.06",
                     "tui-tune     0.1.0, commit 0123456789ab with uncommitted changes",
                     "method       lora", "parameters   900,000 trainable of 900,000"):
            assert line in body.splitlines(), body
        await pilot.press("escape")
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen))


async def test_i_on_a_run_from_before_environments_says_so(workdir):
    run_dir = write_run(workdir / "runs", "old-run")
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: app.screen.series.start)
        await pilot.press("i")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog))
        assert "No environment recorded" in app.screen.body


async def test_the_monitor_draws_its_charts_without_colours(workdir, monkeypatch):
    """NO_COLOR (monochrome terminals): Textual's colour filter met chart segments that had no
    style at all and the monitor crashed on its first frame."""
    monkeypatch.setenv("NO_COLOR", "1")
    run_dir = write_run(workdir / "runs", "mono-run", events=fixed_events(steps=60))
    app = TuneApp(start=lambda: MonitorScreen(run_dir, sample_gpus=False))
    async with app.run_test(size=(80, 24)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, MonitorScreen)
                       and not app.screen.history_loading)
        await pilot.pause()
        charts = list(app.screen.query(BrailleChart))
        assert charts and any(c.series for c in charts)
        lines = app.export_screenshot()
        assert "loss" in lines
