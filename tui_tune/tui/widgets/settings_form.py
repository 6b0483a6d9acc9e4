"""The form of one settings group, generated from the schema (see tui.schema_fields)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import Input, Label, Select, TextArea

from tui_tune.config.problem_types import applies, metrics_for
from tui_tune.tui.schema_fields import FieldSpec, group_specs, value_to_text
from tui_tune.tui.widgets.text_switch import TextSwitch

METRIC = "prediction.metric"


def choices_for(spec: FieldSpec, problem_type: str) -> list:
    """A choice setting's options; the metric offers only the problem type's."""
    if spec.path == METRIC:
        return [c for c in metrics_for(problem_type) if c in spec.choices]  # default first
    return list(spec.choices)


def control_for(spec: FieldSpec, value: Any, problem_type: str):
    """The input widget of one setting: a switch ([x] on / [ ] off), Select or Input."""
    if spec.kind == "bool":
        return TextSwitch(bool(value), id=spec.widget_id)
    if spec.kind == "choice":
        choices = choices_for(spec, problem_type)
        return Select([(str(c), c) for c in choices],
                      value=value if value in choices else Select.NULL,
                      allow_blank=spec.optional, id=spec.widget_id, compact=True)
    placeholder = "(unset)" if spec.optional else ""
    return Input(value_to_text(spec, value), placeholder=placeholder, id=spec.widget_id,
                 compact=True)


class SettingsForm(VerticalScroll):
    """All settings of one group that the problem type reads (the others are hidden, not
    lost); the screen listens to the controls' Changed messages."""

    def __init__(self, group: str, values: dict[str, Any], problem_type: str = "causal_lm"):
        super().__init__(id=f"form-{group}", classes="settings-form")
        self.group = group
        self.values = values
        self.specs = group_specs(group)
        self.problem_type = problem_type

    def compose(self) -> ComposeResult:
        # each row and its error line kept by setting name: a query per setting walked the
        # whole form for each of them (O(n^2): 1 s per typed character in the training tab)
        self._rows: dict[str, tuple[Vertical, Label]] = {}
        for spec in self.specs:
            row = Vertical(classes="field-row", id=f"row-{self.group}-{spec.name}")
            row.display = applies(spec.path, self.problem_type)
            error = Label("", classes="field-error", markup=False)
            self._rows[spec.name] = (row, error)
            with row:
                with Horizontal(classes="field-line"):
                    label = FieldLabel(spec.name, spec.unit, classes="field-label")
                    if spec.advanced:
                        label.add_class("advanced")
                    yield label
                    yield control_for(spec, self.values.get(spec.name), self.problem_type)
                yield error

    def on_mount(self) -> None:
        self.show_problems(getattr(self, "_problems", {}))

    def show_for(self, problem_type: str) -> None:
        """Another problem type was picked: show its settings and its metric choices."""
        if problem_type == self.problem_type:
            return
        self.problem_type = problem_type
        for spec in self.specs:
            if hasattr(self, "_rows"):
                self._rows[spec.name][0].display = applies(spec.path, problem_type)
            if spec.path == METRIC:
                for select in self.query(f"#{spec.widget_id}").results(Select):
                    value = select.value
                    options = choices_for(spec, problem_type)
                    select.set_options([(str(c), c) for c in options])
                    select.value = value if value in options else options[0]  # its default

    def show_problems(self, problems: dict[str, str]) -> None:
        """Mark fields whose dotted path has a problem, with the message under the field."""
        self._problems = problems
        if not hasattr(self, "_rows"):
            return  # not composed yet: on_mount shows them
        for spec in self.specs:
            row, error = self._rows[spec.name]
            message = problems.get(spec.path)
            row.set_class(message is not None, "-invalid")
            if str(error.content) != (message or ""):
                error.update(message or "")


class SweepEditor(Vertical):
    """The [sweep] grid: one `group.setting = value, value, ...` per line."""

    def __init__(self, sweep: dict[str, list[Any]]):
        super().__init__(id="form-sweep", classes="settings-form")
        self.sweep = sweep

    def compose(self) -> ComposeResult:
        yield Label("One setting per line: training.lr = 1e-4, 2e-4  (one run per combination)",
                    classes="muted", markup=False)
        text = "\n".join(f"{path} = {', '.join(map(_show, values))}"
                         for path, values in self.sweep.items())
        yield TextArea(text, id="sweep-text", soft_wrap=False, tab_behavior="focus")
        yield Label("", classes="field-error error-text", id="sweep-error", markup=False)


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, float) else str(value)


class FieldLabel(Label):
    """A setting's name on one line, never wrapped mid-word (issue 21: `checkpoint_every_s` /
    `teps` at 80 columns): with its unit where that fits, else the name alone (the help pane
    shows the unit), else the name cut with an ellipsis."""

    def __init__(self, name: str, unit: str | None = None, **kwargs) -> None:
        super().__init__(name, markup=False, **kwargs)
        self.setting = name
        self.unit = unit

    def render(self) -> str:
        return fitted_label(self.setting, self.unit, self.content_size.width)


def fitted_label(name: str, unit: str | None, width: int) -> str:
    """`name [unit]`, else the name alone, else the name cut with an ellipsis (0: any width)."""
    full = f"{name} [{unit}]" if unit else name
    if not width or len(full) <= width:
        return full
    if len(name) <= width:
        return name
    return name[:max(width - 1, 0)] + "…"
