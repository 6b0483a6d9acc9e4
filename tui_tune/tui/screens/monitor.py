"""Run monitor: live charts, header, health line, GPUs, generations and console.log; for a
classification run also the confusion matrix of the latest evaluation (in the samples' place;
`v` switches between them); a multimodal run's samples show their images (`h` hides them).

A RunFeed (tui/live.py), run as this screen's thread worker, reads the run directory and posts
messages; this screen (app thread) keeps the numpy series and hands views of them to the
charts, which redraw at most 4 Hz.
Leaving the screen or closing the app never stops the run; only `x` (confirmed) does.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Grid, Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Label, Static

from tui_tune.tui import run_actions
from tui_tune.tui.health import health_warnings
from tui_tune.tui.live import RunBatch, RunFeed, RunLoaded, RunSideInfo
from tui_tune.tui.monitor_view import (
    chart_choices,
    chart_title,
    chart_values,
    header_markup,
    run_info_text,
)
from tui_tune.tui.run_data import RunSeries
from tui_tune.tui.screens.dialogs import ChoiceDialog, TextDialog
from tui_tune.tui.widgets.braille_chart import BrailleChart, empty_text_for
from tui_tune.tui.widgets.confusion_panel import ConfusionPanel
from tui_tune.tui.widgets.fitting_footer import FittingFooter
from tui_tune.tui.widgets.panels import GenerationsPanel, LogTail, gpu_text

# chart id -> title, [(series name, source ("step"/"eval"), column, colour)]; the last one,
# "picked", shows any metric the events carry (`c` picks it; the run's eval metric at first,
# titled by its name: accuracy, MSE, perplexity)
CHARTS = {
    "loss": ("loss", [("train", "step", "loss", "cyan"), ("val", "eval", "val_loss", "yellow")]),
    "lr": ("learning rate", [("lr", "step", "lr", "green")]),
    "grad": ("grad norm", [("grad", "step", "grad_norm", "magenta")]),
    "tps": ("tokens/s", [("tok/s", "step", "tokens_per_s", "blue")]),
    "mem": ("memory GiB", [("alloc", "step", "mem_allocated_gib", "cyan"),
                           ("reserved", "step", "mem_reserved_gib", "yellow"),
                           ("peak", "step", "mem_peak_gib", "red")]),
    "metric": ("eval metric", [("metric", "eval", "metric_value", "green")]),
}
PICKED_CHART, PICKED_DEFAULT = "metric", "eval.metric_value"


def line_name(choice: str) -> str:
    """A picked metric's name in the legend: as the fixed charts call it, else its own."""
    kind, column = choice.split(".", 1)
    return next((name for _, lines in CHARTS.values() for name, source, col, _ in lines
                 if (source, col) == (kind, column)), column)


class MonitorScreen(Screen):
    HELP_TITLE = "Run monitor"
    VERTICAL_BREAKPOINTS: ClassVar[list[tuple[int, str]]] = [(0, "-short"), (36, "-tall")]
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("z", "zoom", "Zoom", id="monitor.zoom"),
        Binding("l", "log_scale", "Log scale", id="monitor.log"),
        Binding("s", "smoothing", "Smoothing", id="monitor.smoothing"),
        Binding("b", "focus_loss", "Big loss chart", id="monitor.focus_loss"),
        Binding("g", "pick_chart", "Pick chart", id="monitor.pick_chart"),
        Binding("left_square_bracket", "generations(-1)", "Earlier samples",
                id="monitor.samples_earlier"),
        Binding("right_square_bracket", "generations(1)", "Later samples",
                id="monitor.samples_later"),
        Binding("v", "toggle_matrix", "Confusion/samples", id="monitor.matrix"),
        Binding("h", "toggle_images", "Images", id="monitor.images"),
        Binding("x", "stop_run", "Stop run", id="monitor.stop"),
        Binding("r", "resume_run", "Resume run", id="monitor.resume"),
        Binding("i", "run_info", "Run info", id="monitor.info"),
        Binding("t", "chat", "Chat", id="monitor.chat"),
        Binding("escape", "back", "Back", id="monitor.back"),
    ]

    def __init__(self, run_dir: Path, read_only: bool = False, sample_gpus: bool = True):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.read_only = read_only
        self.series = RunSeries()
        self.status = "?"
        self.times: tuple[float | None, float | None] = (None, None)  # elapsed, ETA (live.py)
        self.history_loading = True
        self.picked = PICKED_DEFAULT  # what the last chart shows ("kind.metric")
        self.matrix_wanted = True  # the confusion matrix over the samples, where there is one
        self.has_images = False  # a multimodal run's samples name images (`h` shows/hides them)
        self.feed = RunFeed(self.run_dir, self.post_message, sample_gpus=sample_gpus)

    def compose(self) -> ComposeResult:
        yield Label(f"{self.run_dir.name}  loading...", id="monitor-header", markup=True)
        yield Label("", id="health")
        with Grid(id="charts"):
            for chart_id, (title, lines) in CHARTS.items():
                chart = BrailleChart(title, id=f"chart-{chart_id}")
                chart.empty_text = empty_text_for(f"{lines[0][1]}.{lines[0][2]}")
                yield chart
        with Horizontal(id="bottom"):
            with VerticalScroll(id="gpu-panel"):
                yield Static("[dim]reading GPUs...[/dim]", id="gpu-text")
            yield GenerationsPanel(id="generations")
            yield ConfusionPanel(id="confusion")
            yield LogTail(id="log-tail")
        yield FittingFooter()

    def on_mount(self) -> None:
        # a worker of this screen: Textual cancels it when the screen closes or the app ends
        self.run_worker(self.feed.run, name=f"watch-{self.run_dir.name}", group="run-feed",
                        thread=True, exclusive=True, exit_on_error=False)

    # -- data from the feed -----------------------------------------------------------------
    @on(RunLoaded)
    def _loaded(self, message: RunLoaded) -> None:
        self.series = message.series
        self.history_loading = message.partial
        self._show_series()
        if message.partial:  # draw now, then let the feed load the older history
            for chart in self._charts():
                chart.redraw_now()
            self.call_after_refresh(self.feed.first_drawn.set)

    @on(RunBatch)
    def _batch(self, message: RunBatch) -> None:
        self.series.extend_from(message.series)
        self._show_series()

    @on(RunSideInfo)
    def _side(self, message: RunSideInfo) -> None:
        if message.times is not None:
            self.times = message.times
        if message.status:
            self.status = message.status
            self._show_header()
            self._show_health()  # a stall shows while no event arrives
        if message.console is not None:
            self.query_one(LogTail).set_text(message.console)
        if message.gpus is not None:
            self.query_one("#gpu-text", Static).update(gpu_text(message.gpus, message.gpu_note))

    def _show_series(self) -> None:
        for chart_id, (_, lines) in CHARTS.items():
            if chart_id == PICKED_CHART:
                continue
            chart = self.query_one(f"#chart-{chart_id}", BrailleChart)
            for name, source, column, colour in lines:
                chart.set_series(name, *chart_values(self.series, f"{source}.{column}"), colour)
        self._show_picked()
        self.query_one(GenerationsPanel).set_samples(self.series.samples)
        self._note_images()
        self._show_matrix()
        self._show_header()
        self._show_health()

    def _show_picked(self) -> None:
        chart = self.query_one(f"#chart-{PICKED_CHART}", BrailleChart)
        name = line_name(self.picked)
        if set(chart.series) - {name}:
            chart.clear()
        chart.set_series(name, *chart_values(self.series, self.picked), "green")
        chart.title = chart_title(self.series, self.picked)
        chart.empty_text = empty_text_for(self.picked)

    def _show_matrix(self) -> None:
        """A classification run's latest confusion matrix, in the samples' place (`v`); other
        runs have none, and neither the panel nor the key shows."""
        panel = self.query_one(ConfusionPanel)
        if (panel.matrix is None) != (self.series.confusion is None):
            self.refresh_bindings()  # `v` appears in the footer (or goes: a rewritten file)
        panel.set_matrix(self.series.confusion)
        shown = panel.matrix is not None and self.matrix_wanted
        self.set_class(panel.matrix is not None, "-matrix")  # a taller bottom row (app.tcss)
        if panel.display != shown:
            panel.display = shown
            self.query_one(GenerationsPanel).display = not shown

    def _note_images(self) -> None:
        """`h` is in the footer once a sample names an image (runs without any keep theirs)."""
        has_images = any(s.images for s in self.series.samples)
        if has_images != self.has_images:
            self.has_images = has_images
            self.set_class(has_images, "-images")  # a taller bottom row (app.tcss)
            self.refresh_bindings()

    def _show_header(self) -> None:
        header = self.query_one("#monitor-header", Label)
        loading = "  [dim]loading history...[/dim]" if self.history_loading else ""
        room = (self.size.width or self.app.size.width) - 2 - len(self.run_dir.name) - 2 \
            - (len("  loading history...") if loading else 0)  # the header's padding: 2
        text = header_markup(self.series, self.status, *self.times, width=room)
        header.update(f"[b]{escape(self.run_dir.name)}[/b]  {text}{loading}")

    def on_resize(self) -> None:
        self.call_after_refresh(self._show_header)  # what fits the new width

    def _show_health(self) -> None:
        warnings = health_warnings(self.series,
                                   now=time.time() if self.status == "running" else None)
        end = self.series.end
        from tui_tune.runs.status import end_reason  # off the first frame's path
        reason = end_reason(end) if end.get("status") in ("failed", "oom") else ""
        if reason:  # whole: the label wraps it (app.tcss #health)
            prefix = "" if end.get("error_type") or end["status"] == "oom" else "failed: "
            warnings.insert(0, prefix + reason)
        if warnings:
            text = "[b red]health:[/b red] " + escape(" | ".join(warnings))
        else:
            text = ("[green]health: ok[/green]" if self.series.step_values("step").size
                    else "[dim]health: waiting for steps[/dim]")
        if self.read_only:  # here, not in the header: a long header is cut at 80 columns
            text = "[reverse] read-only [/reverse] " + text
        self.query_one("#health", Label).update(text)

    # -- keys -------------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "toggle_matrix":
            return self.series.confusion is not None
        if action == "toggle_images":
            return self.has_images
        return not (action in ("stop_run", "resume_run") and self.read_only)

    def _charts(self) -> list[BrailleChart]:
        return list(self.query(BrailleChart))

    def action_zoom(self) -> None:
        window = next(c.cycle_zoom() for c in self._charts())
        self.notify(f"showing the last {window} points" if window else "showing all points")

    def action_log_scale(self) -> None:
        chart = self.query_one("#chart-loss", BrailleChart)
        chart.toggle_log()
        self.notify("loss on a log scale" if chart.log_scale else "loss on a linear scale")

    def action_smoothing(self) -> None:
        weights = [c.cycle_smoothing() for c in self._charts()]
        self.notify(f"smoothing {weights[0]:g}" if weights[0] else "smoothing off")

    def action_focus_loss(self) -> None:
        """Show only the loss chart, full size (handy at 80x24), or all charts again."""
        self.query_one("#charts").toggle_class("-loss-only")

    def action_pick_chart(self) -> None:
        """Show any metric of the run's step or eval events in the last chart."""
        def picked(choice: str | None) -> None:
            if choice:
                self.picked = choice
                self._show_picked()
        self.app.push_screen(ChoiceDialog("Chart which metric?", chart_choices([self.series]),
                                          self.picked), picked)

    def action_toggle_matrix(self) -> None:
        """Switch between the confusion matrix and the samples (classification runs)."""
        self.matrix_wanted = not self.matrix_wanted
        self._show_matrix()

    def action_toggle_images(self) -> None:
        """Show a multimodal run's images beside its samples, or only their paths."""
        panel = self.query_one(GenerationsPanel)
        panel.show_images(not panel.images_shown)
        self.notify("images shown" if panel.images_shown else "images hidden (paths shown)")

    def action_generations(self, delta: int) -> None:
        """Browse the samples by evaluation step (first, show them where the matrix is)."""
        if self.query_one(ConfusionPanel).display:
            self.action_toggle_matrix()
            return
        self.query_one(GenerationsPanel).show_step(delta)

    def action_chat(self) -> None:
        run_actions.chat(self, [self.run_dir])

    def action_run_info(self) -> None:
        """What the run is and what it ran on: versions, CUDA, GPUs, driver, commit."""
        self.app.push_screen(TextDialog(f"Run info: {escape(self.run_dir.name)}",
                                        run_info_text(self.series, self.run_dir.name)))

    def action_stop_run(self) -> None:
        run_actions.ask_stop(self, self.run_dir)

    def action_resume_run(self) -> None:
        run_actions.resume(self, self.run_dir, self.status)

    def action_back(self) -> None:
        if len(self.app.screen_stack) > 2:
            self.dismiss()
        else:
            self.app.exit(0)
