"""Snapshots of every screen at 80x24 and 120x40, from fixed run directories (no clocks,
no random values), so they match on any machine. Update with `--snapshot-update`."""

from __future__ import annotations

import pytest

from tests.tui.conftest import classification_events, wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.compare import CompareScreen
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.help import HelpScreen
from tui_tune.tui.screens.monitor import MonitorScreen
from tui_tune.tui.screens.presets import PresetsScreen
from tui_tune.tui.screens.runs import RunsScreen

SIZES = [(80, 24), (120, 40)]


def _picture(app) -> list:
    return [(segment.text, segment.style) for strip in app.screen._compositor.render_strips()
            for segment in strip]


async def settled(pilot, step_s: float = 0.3, tries: int = 20) -> None:
    """Until two frames `step_s` apart are the same (charts redraw on a 4 Hz timer, and a
    busy machine can be a frame or two late: a fixed pause alone was once too short)."""
    before = None
    for _ in range(tries):
        await pilot.pause(step_s)
        now = _picture(pilot.app)
        if now == before:
            return
        before = now


@pytest.fixture
def two_runs(make_run):
    a = make_run("20260101-000000-demo-tiny", console="[info] loading demo/model\n"
                 "[info] step 120: loss 0.52\n[info] stopping: checkpoint saved\n")
    b = make_run("20260101-000100-lora", preset="lora")
    return a, b


@pytest.mark.parametrize("size", SIZES)
def test_runs_screen(snap_compare, two_runs, size):
    app = TuneApp()

    async def loaded(pilot):
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and len(app.screen.summaries) == 2)
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=loaded)


@pytest.mark.parametrize("size", SIZES)
def test_monitor_screen(snap_compare, two_runs, size):
    app = TuneApp(start=lambda: MonitorScreen(two_runs[0], sample_gpus=False))

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.screen.series.step_values("step").size == 120
                       and "GPU sampling off" in str(app.screen.query_one("#gpu-text").render())
                       and "checkpoint saved" in str(app.screen.query_one("#log-text").render()))
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=loaded)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("classes", [3, 20])
def test_classification_monitor_screen(snap_compare, make_run, size, classes):
    """The confusion matrix in the samples' place: 3 classes whole; 20 folded to what fits."""
    labels = ("negative", "neutral", "positive") if classes == 3 else \
        tuple(f"class-{i:02d}" for i in range(classes))
    run = make_run("20260101-000000-demo-classify", preset="demo-classify",
                   events=classification_events(labels))
    app = TuneApp(start=lambda: MonitorScreen(run, sample_gpus=False))

    async def loaded(pilot):
        await wait_for(pilot, lambda: app.screen.series.confusion is not None
                       and not app.screen.history_loading
                       and "GPU sampling off" in str(app.screen.query_one("#gpu-text").render())
                       and "training" in str(app.screen.query_one("#log-text").render()))
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=loaded)


@pytest.mark.parametrize("size", SIZES)
def test_compare_screen(snap_compare, two_runs, size):
    app = TuneApp(start=lambda: CompareScreen(list(two_runs)))

    async def loaded(pilot):
        await wait_for(pilot, lambda: len(app.screen.query_one("#compare-train").series) == 2
                       and len(app.screen.statuses) == 2)  # live: each run's status shows
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=loaded)


@pytest.mark.parametrize("size", SIZES)
def test_editor_screen_with_a_problem(snap_compare, workdir, size):
    state = EditorState.from_preset("demo-tiny")
    state.set_value("training.lr", "fast")
    app = TuneApp(start=lambda: EditorScreen(state))

    async def shown(pilot):
        await pilot.press("f8", "f8", "f8", "f8", "f8", "f8")
        await pilot.pause()
        for field in app.screen.query("Input"):
            field.cursor_blink = False  # a blinking cursor would make the picture time-dependent
        app.screen.query_one("#field-training-lr").focus()
        await settled(pilot)  # let the scroll to the focused field finish

    assert snap_compare(app, terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", SIZES)
def test_presets_screen(snap_compare, workdir, size):
    (workdir / "presets" / "mine.toml").write_text(
        'schema_version = 1\nextends = "lora"\n\n[training]\nlr = 0.0005\n')
    app = TuneApp(start=PresetsScreen)

    async def shown(pilot):
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", SIZES)
def test_help_screen(snap_compare, workdir, size):
    app = TuneApp()

    async def shown(pilot):
        # listed (and its table focused) first: the keys shown are those active behind
        await wait_for(pilot, lambda: isinstance(app.screen, RunsScreen)
                       and "No runs yet" in str(app.screen.query_one("#runs-empty").render()))
        await settled(pilot)
        await pilot.press("f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", SIZES)
def test_editor_screen_with_an_estimate(snap_compare, workdir, monkeypatch, size):
    from tests.tui.test_tui_editor_estimate import lora_state
    from tui_tune.monitor import gpu

    monkeypatch.setattr(gpu, "sample_gpus", list)
    monkeypatch.setattr(gpu, "gpu_unavailable_reason", lambda: "no GPU: NVML unavailable")
    state = lora_state(workdir)
    app = TuneApp(start=lambda: EditorScreen(state))

    async def shown(pilot):
        await wait_for(pilot, lambda: app.screen.last_estimate is not None)
        for field in app.screen.query("Input"):
            field.cursor_blink = False
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=shown)


@pytest.mark.parametrize("size", SIZES)
def test_dataset_preview(snap_compare, workdir, demo_assets, monkeypatch, size):
    import os

    from tui_tune.monitor import gpu
    from tui_tune.tui.screens.editor_preview import DataPreviewScreen

    monkeypatch.setattr(gpu, "sample_gpus", list)  # the estimate behind: the same anywhere
    monkeypatch.setattr(gpu, "gpu_unavailable_reason", lambda: "no GPU: NVML unavailable")
    os.symlink(demo_assets, workdir / "demo")  # demo-tiny's relative paths
    state = EditorState.from_preset("demo-tiny")
    state.set_value("tokenizer.max_length", 16)
    app = TuneApp(start=lambda: EditorScreen(state))

    async def shown(pilot):
        await pilot.press("f6")
        await wait_for(pilot, lambda: isinstance(app.screen, DataPreviewScreen)
                       and app.screen.result is not None, timeout=30)
        await settled(pilot)

    assert snap_compare(app, terminal_size=size, run_before=shown)
