"""Compare: two or more runs, loss curves overlaid with a legend, and their config differences.

The left chart shows train loss at first; `c` picks any metric the events carry instead. Runs
of different problem types are said to be so: each has its own metrics, and its own loss.
Live runs are followed as the monitor follows one: a RunFeed (tui/live.py) per run, as this
screen's thread workers, posts new events and the run's status; the curves grow as they come."""

from __future__ import annotations

from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Label

from tui_tune.config import ConfigError, validate_experiment
from tui_tune.config.experiment import flatten
from tui_tune.config.toml_io import read_toml
from tui_tune.rundir import RunDir
from tui_tune.tui.live import RunBatch, RunFeed, RunLoaded, RunSideInfo
from tui_tune.tui.monitor_view import chart_choices, chart_title, chart_values
from tui_tune.tui.run_data import RunSeries
from tui_tune.tui.screens.dialogs import ChoiceDialog
from tui_tune.tui.widgets.braille_chart import (
    NO_EVALUATION,
    PALETTE,
    BrailleChart,
    empty_text_for,
)
from tui_tune.tui.widgets.fitting_footer import FittingFooter
from tui_tune.tui.widgets.row_table import RowTable

FEED_POLL_S = 0.5  # each run's feed looks for new events this often


class FromFeed(Message):
    """A message of one run's feed (RunLoaded, RunBatch, RunSideInfo), with the run's label."""

    def __init__(self, label: str, message: Message):
        super().__init__()
        self.label = label
        self.message = message


def flat_configs(run_dirs: list[Path]) -> list[dict[str, object]]:
    """Each run's settings as {"group.name": value} ({"(config)": why} where unreadable)."""
    flats = []
    for run_dir in run_dirs:
        try:
            exp = validate_experiment(read_toml(RunDir(run_dir).config))
            flats.append(flatten(exp.model_dump(mode="json")))
        except ConfigError as error:
            flats.append({"(config)": f"unreadable: {error.problems[0]}"})
    return flats


def config_differences(run_dirs: list[Path], flats: list[dict[str, object]] | None = None
                       ) -> tuple[list[str], list[list[str]]]:
    """(setting paths, one row of values per path) for settings that differ between runs."""
    flats = flat_configs(run_dirs) if flats is None else flats
    keys = sorted(set().union(*flats))
    rows = []
    for key in keys:
        values = [f.get(key) for f in flats]
        if any(v != values[0] for v in values[1:]):
            rows.append([key, *("(unset)" if v is None else str(v) for v in values)])
    return keys, rows


def type_note(labels: list[str], flats: list[dict[str, object]]) -> str:
    """A line saying the runs are of different problem types (their metrics and losses are
    not the same measure), or "" when they are of one type."""
    types = [str(flat.get("general.problem_type") or "?") for flat in flats]
    if len(set(types)) < 2:
        return ""
    runs = ", ".join(f"{label.split()[0]} {kind}" for label, kind in zip(labels, types))
    return (f"Different problem types ({runs}): a metric shows only for the runs of a type "
            "that has it, and each type's loss is its own.")


def short_label(index: int, run_dir: Path) -> str:
    return f"{chr(ord('A') + index)} {run_dir.name}"


class CompareScreen(Screen):
    HELP_TITLE = "Compare runs"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("z", "zoom", "Zoom", id="compare.zoom"),
        Binding("l", "log_scale", "Log scale", id="compare.log"),
        Binding("s", "smoothing", "Smoothing", id="compare.smoothing"),
        Binding("g", "pick_chart", "Pick chart", id="compare.pick_chart"),
        Binding("escape", "back", "Back", id="compare.back"),
    ]

    def __init__(self, run_dirs: list[Path]):
        super().__init__()
        self.run_dirs = [Path(p) for p in run_dirs]
        self.labels = [short_label(i, p) for i, p in enumerate(self.run_dirs)]
        self.picked = "step.loss"  # what the left chart shows ("kind.metric")
        self.loaded: dict[str, RunSeries] = {}  # label -> events so far, in the runs' order
        self.statuses: dict[str, str] = {}
        self.feeds = {label: RunFeed(path, partial(self._from_feed, label), sample_gpus=False,
                                     poll_s=FEED_POLL_S)
                      for label, path in zip(self.labels, self.run_dirs, strict=True)}

    def compose(self) -> ComposeResult:
        names = "  ".join(f"[{PALETTE[i % len(PALETTE)]}]{label}[/]"
                          for i, label in enumerate(self.labels))
        yield Label(f"[b]Compare[/b] {names}", id="compare-title", classes="status-line")
        yield Label("", id="compare-note")
        with Horizontal(id="compare-charts"):
            yield BrailleChart("train loss", id="compare-train")
            val = BrailleChart("val loss", id="compare-val")
            val.empty_text = NO_EVALUATION
            yield val
        yield RowTable(id="compare-diff", cursor_type="row", zebra_stripes=True)
        yield FittingFooter()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("setting", *(label.split()[0] for label in self.labels))
        flats = flat_configs(self.run_dirs)
        _, rows = config_differences(self.run_dirs, flats)
        note = type_note(self.labels, flats)
        self.query_one("#compare-note", Label).update(Text(note, style="yellow"))
        self.query_one("#compare-note", Label).display = bool(note)
        for row in rows:
            table.add_row(*row)
        if not rows:
            table.add_row("(no differences)", *([""] * len(self.run_dirs)))
        for index, (label, feed) in enumerate(self.feeds.items()):
            # workers of this screen: Textual cancels them when the screen closes
            self.run_worker(feed.run, name=f"compare-{index}", group=f"compare-feed-{index}",
                            thread=True, exclusive=True, exit_on_error=False)

    def _from_feed(self, label: str, message: Message) -> None:
        """Called on a feed's thread: hand its message to the app thread, with the run."""
        self.post_message(FromFeed(label, message))

    @on(FromFeed)
    def _feed_news(self, news: FromFeed) -> None:
        message, label = news.message, news.label
        if isinstance(message, RunLoaded):
            self.loaded[label] = message.series
            if message.partial:
                self.call_after_refresh(self.feeds[label].first_drawn.set)
        elif isinstance(message, RunBatch):
            self.loaded.setdefault(label, RunSeries()).extend_from(message.series)
        elif isinstance(message, RunSideInfo):
            if message.status and self.statuses.get(label) != message.status:
                self.statuses[label] = message.status
                self._show_title()
            return
        self.loaded = {k: self.loaded[k] for k in self.labels if k in self.loaded}
        self._show()

    def _show_title(self) -> None:
        names = "  ".join(
            f"[{PALETTE[i % len(PALETTE)]}]{label}[/]"
            + (f" [dim]{self.statuses[label]}[/]" if label in self.statuses else "")
            for i, label in enumerate(self.labels))
        self.query_one("#compare-title", Label).update(f"[b]Compare[/b] {names}")

    def _show(self) -> None:
        self._overlay(self.query_one("#compare-val", BrailleChart), "eval.val_loss")
        self._show_picked()

    def _show_picked(self) -> None:
        chart = self.query_one("#compare-train", BrailleChart)
        self._overlay(chart, self.picked)
        chart.title = chart_title(list(self.loaded.values()), self.picked)
        chart.empty_text = empty_text_for(self.picked)

    def _overlay(self, chart: BrailleChart, choice: str) -> None:
        """Each loaded run's line of `choice`, the legend in the runs' order whichever run's
        feed answered first."""
        shown = [label for label in self.labels if label in self.loaded]
        if list(chart.series) != [label.split()[0] for label in shown]:
            chart.clear()
        for label in shown:
            chart.set_series(label.split()[0], *chart_values(self.loaded[label], choice),
                             PALETTE[self.labels.index(label) % len(PALETTE)])

    def action_pick_chart(self) -> None:
        """Overlay any metric of the runs' step or eval events in the left chart."""
        def picked(choice: str | None) -> None:
            if choice:
                self.picked = choice
                self._show_picked()
        self.app.push_screen(ChoiceDialog("Compare which metric?",
                                          chart_choices(list(self.loaded.values())),
                                          self.picked), picked)

    def _charts(self) -> list[BrailleChart]:
        return list(self.query(BrailleChart))

    def action_zoom(self) -> None:
        for chart in self._charts():
            chart.cycle_zoom()

    def action_log_scale(self) -> None:
        for chart in self._charts():
            chart.toggle_log()

    def action_smoothing(self) -> None:
        for chart in self._charts():
            chart.cycle_smoothing()

    def action_back(self) -> None:
        self.dismiss()
