"""Experiment editor: one tab per settings group, mounted when first shown.

Every change is validated at once; problems show under their field and in the side panel.
Save writes a preset (only what differs from the preset it extends); launch validates,
creates a run directory and starts it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from rich.markup import escape
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.events import DescendantFocus
from textual.screen import Screen
from textual.widget import AwaitMount
from textual.widgets import (
    ContentSwitcher,
    Input,
    Label,
    Select,
    Static,
    Switch,
    Tab,
    TabPane,
    Tabs,
    TextArea,
)

from tui_tune.config import GROUPS, ConfigError
from tui_tune.config.problem_types import default_metric, metrics_for
from tui_tune.tui.editor_state import EditorState, save_as_path
from tui_tune.tui.schema_fields import FieldSpec, group_specs, help_text, text_to_value
from tui_tune.tui.screens.dialogs import ConfirmDialog, PromptDialog, TextDialog
from tui_tune.tui.screens.editor_estimate import EstimateMixin
from tui_tune.tui.sweep_text import parse_sweep
from tui_tune.tui.widgets.fitting_footer import FittingFooter
from tui_tune.tui.widgets.settings_form import SettingsForm, SweepEditor

TABS = [*GROUPS, "sweep"]
# each tab's name where the whole names do not fit the screen's width (120 columns: 131 cells)
SHORT_TABS = {"general": "gen", "dataset": "data", "tokenizer": "tok", "architecture": "arch",
              "adapter": "adapt", "quantization": "quant", "training": "train",
              "augmentation": "aug", "prediction": "pred", "environment": "env",
              "logging": "log", "sweep": "sweep"}
TAB_PADDING = 2  # a Tab's cells besides its label
PREVIEWED = ("causal_lm",)  # problem types whose text the dataset preview builds


class EditorScreen(EstimateMixin, Screen):
    HELP_TITLE = "Experiment editor"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "save", "Save", id="editor.save"),
        Binding("f2", "save_as", "Save as", id="editor.save_as"),
        Binding("f3", "diff", "Diff vs base", id="editor.diff"),
        Binding("f4", "estimate_details", "Estimate", id="editor.estimate"),
        Binding("f5", "launch", "Launch", id="editor.launch"),
        Binding("f6", "preview", "Data preview", id="editor.preview"),
        Binding("f7", "tab(-1)", "Prev tab", id="editor.prev_tab"),
        Binding("f8", "tab(1)", "Next tab", id="editor.next_tab"),
        Binding("f9", "gpu_size", "GPU size", id="editor.gpu_size", show=False),
        Binding("escape", "back", "Back", id="editor.back"),
    ]

    def __init__(self, state: EditorState):
        super().__init__()
        self.state = state
        self.specs: dict[str, FieldSpec] = {s.widget_id: s for g in GROUPS
                                            for s in group_specs(g)}
        self.mounted_groups: set[str] = set()
        self._launching = False  # a start is under way (its checks run off the UI thread)
        self._to_first_field = False  # the next tab shown focuses its first field (F7/F8)
        self._tab_labels: dict[str, str] = {}  # group -> the label its tab shows

    def compose(self) -> ComposeResult:
        yield Label("", id="editor-title", classes="status-line")
        yield Static("[b]Estimate:[/b] ...", id="estimate-line")
        # the tab bar spans the screen above the form and the side panel, so every tab's name
        # shows whole at 80 columns (short names where the whole ones do not fit)
        yield Tabs(*(Tab(group, id=f"tab-{group}") for group in TABS), id="editor-tabs")
        with Horizontal(id="editor-body"):
            with ContentSwitcher(initial=f"pane-{TABS[0]}", id="editor-panes"):
                for group in TABS:
                    with TabPane(group, id=f"pane-{group}"):
                        yield Label("loading...", classes="muted")
            with VerticalScroll(id="side-panel"):
                yield Static("", id="estimate-detail")
                yield Static("Focus a setting to see its help.", id="field-help")
                yield Static("", id="problems")
        yield FittingFooter()

    def on_mount(self) -> None:
        self._mount_group(TABS[0])
        self.revalidate()

    # -- lazy tabs --------------------------------------------------------------------------
    @on(Tabs.TabActivated, "#editor-tabs")
    async def _tab_shown(self, event: Tabs.TabActivated) -> None:
        group = (event.tab.id or "tab-general").removeprefix("tab-")
        pane_id = f"pane-{group}"
        self.query_one(ContentSwitcher).current = pane_id
        # F7/F8 (or a click) go to the tab's first field; arrowing along the tab bar stays there
        to_field = self._to_first_field or not isinstance(self.focused, Tabs)
        self._to_first_field = False
        mounting = self._mount_group(group)
        if mounting is not None:
            await mounting
        if to_field:
            self._focus_first_field(pane_id)

    def _focus_first_field(self, pane_id: str) -> None:
        """The shown tab's first visible field takes the focus (its help follows it)."""
        pane = self.query_one(f"#{pane_id}", TabPane)

        def shown(widget) -> bool:  # (a setting of another problem type is hidden)
            return all(node.display for node in widget.ancestors_with_self if node is not pane)
        fields = [w for w in pane.query("Input, Select, Switch, TextArea") if shown(w)]
        if fields:
            fields[0].focus()

    def _mount_group(self, group: str) -> AwaitMount | None:
        """The group's form, made the first time its tab shows (None when it is there)."""
        if group in self.mounted_groups:
            return None
        self.mounted_groups.add(group)
        pane = self.query_one(f"#pane-{group}", TabPane)
        pane.remove_children()
        if group == "sweep":
            return pane.mount(SweepEditor(dict(self.state.data.get("sweep", {}))))
        form = SettingsForm(group, self.state.data.get(group, {}), self._problem_type())
        form._problems = self.state.problems
        return pane.mount(form)

    def action_tab(self, delta: int) -> None:
        self._to_first_field = True
        tabs = self.query_one("#editor-tabs", Tabs)
        current = TABS.index((tabs.active or "tab-general").removeprefix("tab-"))
        tabs.active = f"tab-{TABS[(current + delta) % len(TABS)]}"

    # -- edits ------------------------------------------------------------------------------
    @on(Input.Changed)
    def _input_changed(self, event: Input.Changed) -> None:
        spec = self.specs.get(event.input.id or "")
        if spec:
            self._apply(spec, text_to_value(spec, event.value))

    @on(Switch.Changed)
    def _switch_changed(self, event: Switch.Changed) -> None:
        spec = self.specs.get(event.switch.id or "")
        if spec:
            self._apply(spec, event.value)

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        spec = self.specs.get(event.select.id or "")
        if spec:
            value = None if event.value is Select.NULL else event.value
            self._apply(spec, value)

    @on(TextArea.Changed, "#sweep-text")
    def _sweep_changed(self, event: TextArea.Changed) -> None:
        grid, errors = parse_sweep(event.text_area.text)
        self.query_one("#sweep-error", Label).update("\n".join(errors))
        if self.state.set_sweep(grid):
            self.revalidate()

    def _apply(self, spec: FieldSpec, value: Any) -> None:
        if self.state.set_value(spec.path, value):
            if spec.path == "general.problem_type" and value:
                self._metric_for(str(value))
            self.revalidate()

    def _metric_for(self, problem_type: str) -> None:
        """Another problem type: a metric it does not offer becomes the type's default."""
        if self.state.value("prediction.metric") not in metrics_for(problem_type):
            self.state.set_value("prediction.metric", default_metric(problem_type))

    def _problem_type(self) -> str:
        return str(self.state.data.get("general", {}).get("problem_type") or "causal_lm")

    def revalidate(self) -> None:
        self.state.validate()
        for form in self.query(SettingsForm):
            form.show_for(self._problem_type())
            form.show_problems(self.state.problems)
        self._show_problem_list()
        self._mark_tabs()
        self._show_title()
        self.schedule_estimate()

    def on_resize(self) -> None:
        self._mark_tabs()

    def _mark_tabs(self) -> None:
        """A tab whose group has a problem says so, even before it is opened; every name is
        whole, short where the whole ones would not fit the bar."""
        bad = {group for group in TABS if any(key == group or key.startswith(f"{group}.")
                                              for key in self.state.problems)}
        whole = sum(len(g) + TAB_PADDING for g in TABS) + 2 * len(bad) <= self.size.width  # " !"
        for group in TABS:
            name = group if whole else SHORT_TABS.get(group, group)
            label = f"{name} [b red]![/]" if group in bad else name
            if self._tab_labels.get(group) != label:  # (a label set anew is drawn anew)
                self._tab_labels[group] = label
                self.query_one(f"#tab-{group}", Tab).label = label

    def _show_problem_list(self) -> None:
        problems, warnings = self.state.problems, self.state.warnings
        if not problems:
            lines = ["[green]No problems: ready to save or launch.[/green]"]
        else:
            lines = [f"[b red]{len(problems)} problem(s):[/b red]"]
            lines += [f"[red]•[/red] {escape(k or 'experiment')}: {escape(m)}"
                      for k, m in problems.items()]
        if warnings:  # settings that do not apply: shown, never blocking
            lines.append(f"[b yellow]{len(warnings)} warning(s):[/b yellow]")
            lines += [f"[yellow]•[/yellow] {escape(k)}: {escape(m)}" for k, m in warnings.items()]
        self.query_one("#problems", Static).update("\n".join(lines))

    def _show_title(self) -> None:
        target = self.state.target
        where = f" -> {target}" if target else " (unsaved: Save as to name it)"
        dirty = "  [b yellow]● modified[/b yellow]" if self.state.dirty else ""
        self.query_one("#editor-title", Label).update(
            f"[b]Editor[/b] {escape(self.state.label)}{escape(where)}{dirty}")

    @on(DescendantFocus)
    def _show_help(self, event: DescendantFocus) -> None:
        spec = self.specs.get(event.widget.id or "")
        if spec is None and event.widget.id == "sweep-text":
            text = ("[b]sweep[/b]\nOne run per combination of the values listed. Any numeric "
                    "or choice setting can be swept.")
        elif spec is None:
            return
        else:
            text = help_text(spec)
        self.query_one("#field-help", Static).update(text)

    # -- actions ----------------------------------------------------------------------------
    def action_save(self) -> None:
        if self.state.target is None:
            self.action_save_as()
            return
        self._save_to(None)

    def action_save_as(self) -> None:
        def chosen(name: str | None) -> None:
            if not name:
                return
            try:
                target = save_as_path(name)
            except ConfigError as error:
                self.notify(str(error), severity="error", timeout=8)
                return
            self.state.name_for(target.stem)
            if target.exists() and target != self.state.target:
                self._confirm_overwrite(target)
            else:
                self._save_to(target)
        suggestion = f"{self.state.preset_name()}-copy"
        self.app.push_screen(PromptDialog("Save as preset (./presets/NAME.toml):", suggestion),
                             chosen)

    def _confirm_overwrite(self, target: Path) -> None:
        """Saving over another preset destroys it: ask first (Escape and n keep it)."""
        def answered(yes: bool | None) -> None:
            if yes:
                self._save_to(target)
        self.app.push_screen(ConfirmDialog(f"{escape(target.name)} exists. Replace it with this "
                                           "experiment?", "Replace"), answered)

    def _save_to(self, target: Path | None) -> None:
        try:
            path = self.state.save(target)
        except ConfigError as error:
            self.revalidate()
            self.notify(f"Not saved: {error}", severity="error", timeout=8)
            return
        self._show_title()
        self.notify(f"Saved {path}")

    def action_diff(self) -> None:
        if self.state.validate() is None:
            self.revalidate()
            self.notify("Fix the problems first to see a diff.", severity="warning")
            return
        changes = self.state.diff()
        body = "\n".join(str(c) for c in changes) or "No differences."
        self.app.push_screen(TextDialog(f"Differences from {self.state.label}", body))

    def action_preview(self) -> None:
        """The training file's first rows as the model will see them (causal LM)."""
        from tui_tune.tui.screens.editor_preview import DataPreviewScreen

        experiment = self.state.validate()
        if experiment is None:
            self.revalidate()
            self.notify("Fix the problems first to preview the data.", severity="warning")
            return
        if experiment.general.problem_type not in PREVIEWED:
            self.notify(f"The preview shows causal LM text; {experiment.general.problem_type} "
                        "reads its columns as they are.", severity="warning", timeout=6)
            return
        self.app.push_screen(DataPreviewScreen(experiment))

    def action_launch(self) -> None:
        experiment = self.state.validate()
        self.revalidate()
        if experiment is None:
            self.notify("Cannot launch: fix the problems listed on the right first.",
                        severity="error", timeout=8)
            return
        if self._launching:
            self.notify("Already starting it: one moment.", timeout=4)
            return
        self._launching = True
        self.notify("Checking and starting..." if not experiment.sweep else
                    "Checking every member of the sweep...", timeout=4)
        self._start(experiment, self.state.preset_name())

    @work(thread=True, group="launch")
    def _start(self, experiment, preset_name: str) -> None:
        """The launch checks read every data file: off the UI thread, so the screen stays
        responsive; the outcome comes back on the app thread."""
        from tui_tune.tui.launching import launch_experiment, launch_sweep

        if experiment.sweep:
            count, error = launch_sweep(self.app, experiment, preset_name)
            self.app.call_from_thread(self._sweep_started, count, error)
        else:
            run_dir, error = launch_experiment(self.app, experiment, preset_name)
            self.app.call_from_thread(self._run_started, run_dir, error)

    def _run_started(self, run_dir: Path | None, error: str) -> None:
        self._launching = False
        if error or run_dir is None:
            self._show_launch_error(error)
            return
        self.app.show_new_run(run_dir)

    def _show_launch_error(self, error: str) -> None:
        self.query_one("#problems", Static).update(f"[b red]Launch failed:[/b red] "
                                                   f"{escape(error)}")
        self.notify(f"Launch failed: {error}", severity="error", timeout=10)

    def _sweep_started(self, count: int, error: str) -> None:
        self._launching = False
        if error:
            self._show_launch_error(error)
            return
        self.notify(f"Sweep of {count} runs queued; the runs list shows them as they start.")
        self.app.back_to_runs()

    def keep_unsaved(self) -> Path | None:
        """The app is ending without asking (the terminal went away): unsaved changes go to
        a recovery file that the next start offers."""
        if not self.state.dirty:
            return None
        from tui_tune.tui import recovery
        try:
            return recovery.keep(self.state)
        except OSError:
            return None  # nowhere to write: nothing more can be done without a terminal

    def action_back(self) -> None:
        if not self.state.dirty:
            self.dismiss()
            return

        def answered(discard: bool | None) -> None:
            if discard:
                self.dismiss()
        self.app.push_screen(ConfirmDialog("Discard unsaved changes?", "Discard"), answered)
