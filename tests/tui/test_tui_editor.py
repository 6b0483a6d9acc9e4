"""Experiment editor: keyboard-only editing, validation as you type, save, launch refusal."""

from __future__ import annotations

import tomllib

from textual.widgets import Input, Label

from tests.tui.conftest import wait_for
from tui_tune.tui.app import TuneApp
from tui_tune.tui.editor_state import EditorState
from tui_tune.tui.screens.editor import EditorScreen
from tui_tune.tui.screens.presets import PresetsScreen


async def focus_field(pilot, widget_id: str, limit: int = 60) -> None:
    """Press Tab until the field has focus (keyboard only, as a user would)."""
    for _ in range(limit):
        if pilot.app.focused is not None and pilot.app.focused.id == widget_id:
            return
        await pilot.press("tab")
    raise AssertionError(f"could not reach {widget_id} with Tab")


async def replace_text(pilot, text: str) -> None:
    await pilot.press("end", "ctrl+u", *list(text))


async def test_edit_validate_fix_save_writes_what_was_typed(workdir):
    app = TuneApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("n")  # runs -> presets
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        names = [p.name for p in app.screen.presets]
        for _ in range(names.index("demo-tiny")):
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        editor = app.screen
        for _ in range(6):  # general -> ... -> training
            await pilot.press("f8")
        await pilot.pause()
        await focus_field(pilot, "field-training-lr")
        await replace_text(pilot, "abc")
        await pilot.pause()
        row = editor.query_one("#row-training-lr")
        assert row.has_class("-invalid")
        assert "valid number" in str(row.query_one(".field-error", Label).render())
        assert "training.lr" in editor.state.problems
        await replace_text(pilot, "2e-4")
        await focus_field(pilot, "field-training-batch_size")
        await replace_text(pilot, "7")
        await pilot.pause()
        assert not row.has_class("-invalid") and not editor.state.problems
        assert editor.state.dirty
        await pilot.press("f2")  # save as
        await pilot.press("end", "ctrl+u", *list("my-exp"), "enter")
        await wait_for(pilot, lambda: (workdir / "presets" / "my-exp.toml").exists())
        assert not editor.state.dirty
    saved = tomllib.loads((workdir / "presets" / "my-exp.toml").read_text())
    assert saved["extends"] == "demo-tiny"
    assert saved["training"] == {"lr": 2e-4, "batch_size": 7}


async def test_cross_field_problem_shows_on_the_field(workdir):
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(6):
            await pilot.press("f8")
        await pilot.pause()
        app.screen.query_one("#field-training-warmup_epochs").value = "1"  # warmup_ratio is set
        await pilot.pause()
        row = app.screen.query_one("#row-training-warmup_epochs")
        assert row.has_class("-invalid")
        assert "warmup_ratio" in state.problems["training.warmup_epochs"]
        await pilot.press("f5")  # launch is refused while problems remain
        await pilot.pause()
        assert not (workdir / "runs").exists()


async def test_a_setting_the_choice_ignores_is_a_warning_not_a_problem(workdir):
    state = EditorState.from_preset("demo-tiny")  # sets min_lr_ratio = 0.1
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(120, 40)) as pilot:
        for _ in range(6):
            await pilot.press("f8")
        await pilot.pause()
        app.screen.query_one("#field-training-schedule").value = "constant"
        await pilot.pause()
        assert not state.problems and "ignored" in state.warnings["training.min_lr_ratio"]
        assert not app.screen.query_one("#row-training-min_lr_ratio").has_class("-invalid")
        listed = str(app.screen.query_one("#problems").render())
        assert "No problems" in listed and "1 warning(s)" in listed
        assert "training.min_lr_ratio: ignored" in listed
        await pilot.press("f2")  # an ignored setting does not stop saving
        await pilot.press("end", "ctrl+u", *list("const"), "enter")
        await wait_for(pilot, lambda: (workdir / "presets" / "const.toml").exists())
    saved = tomllib.loads((workdir / "presets" / "const.toml").read_text())
    assert saved["training"] == {"schedule": "constant"}


async def test_launch_that_cannot_start_says_why(workdir):
    state = EditorState.from_preset("demo-tiny")
    state.set_value("dataset.train_file", "no/such/file.jsonl")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await wait_for(pilot, lambda: "Launch failed" in str(
            app.screen.query_one("#problems").render()))
        problems = str(app.screen.query_one("#problems").render())
        assert "no/such/file.jsonl" in problems
        assert isinstance(app.screen, EditorScreen)
    assert not list((workdir / "runs").glob("*")) if (workdir / "runs").exists() else True


async def test_back_with_unsaved_changes_asks_and_escape_keeps_editing(workdir):
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await focus_field(pilot, "field-general-experiment_name")
        await pilot.press("x")
        await pilot.press("escape")  # asks
        await pilot.pause()
        await pilot.press("escape")  # the dialog's Escape cancels: still editing
        await pilot.pause()
        assert isinstance(app.screen, EditorScreen)
        assert app.screen.query_one("#field-general-experiment_name", Input).value.endswith("x")


async def test_quit_with_unsaved_changes_asks_first(workdir):
    from tui_tune.tui.screens.dialogs import ConfirmDialog
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await focus_field(pilot, "field-general-experiment_name")
        await pilot.press("z", "ctrl+q")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog) and app.is_running
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, EditorScreen)
        await pilot.press("ctrl+q", "y")
        await pilot.pause()
        assert app.return_code == 0


async def test_sweep_values_are_typed_in_the_sweep_tab_and_checked_before_launch(workdir):
    from textual.widgets import TextArea
    state = EditorState.from_preset("demo-tiny")
    state.set_value("dataset.train_file", "missing.jsonl")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f7")  # the last tab: sweep
        await pilot.pause()
        area = app.screen.query_one("#sweep-text", TextArea)
        area.focus()
        await pilot.press(*"training.lr = 1e-3, 2e-3")
        await pilot.pause()
        assert state.data["sweep"] == {"training.lr": [1e-3, 2e-3]}
        assert not state.problems
        await pilot.press("f5")
        await pilot.pause()
        assert "missing.jsonl" in str(app.screen.query_one("#problems").render())
        await pilot.press("enter", *"training.nope = 1")
        await pilot.pause()
        assert "sweep.training.nope" in state.problems
    assert not (workdir / "runs").exists()


async def test_tabs_mount_when_first_shown_and_unopened_tabs_still_flag_problems(workdir):
    from tui_tune.tui.widgets.settings_form import SettingsForm
    state = EditorState.from_preset("demo-tiny")
    state.set_value("training.lr", "fast")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        editor = app.screen
        assert [f.group for f in editor.query(SettingsForm)] == ["general"]
        assert "!" in str(editor.query_one("#tab-training").label)
        await pilot.press("f8")
        await pilot.pause()
        assert {f.group for f in editor.query(SettingsForm)} == {"general", "dataset"}
        assert not editor.query("#field-training-lr")  # still not built


async def open_tab(pilot, group: str) -> None:
    from tui_tune.tui.screens.editor import TABS
    for _ in range(TABS.index(group)):
        await pilot.press("f8")
    await pilot.pause()


async def test_list_switch_edits_show_dirty_marker_diff_and_save(workdir):
    """Keyboard only: a list of strings (with an escaped comma), a list of numbers, a switch;
    the title says modified, F3 lists the differences, the saved TOML holds real lists."""
    from tui_tune.tui.screens.dialogs import TextDialog
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(120, 40)) as pilot:
        editor = app.screen
        title = editor.query_one("#editor-title", Label)
        assert "modified" not in str(title.render())
        await open_tab(pilot, "prediction")
        await focus_field(pilot, "field-prediction-stop_strings")
        help_panel = str(editor.query_one("#field-help").render())
        assert "prediction.stop_strings" in help_panel and "comma" in help_panel
        await replace_text(pilot, "###, a\\, b")
        await focus_field(pilot, "field-prediction-do_sample")
        await pilot.press("space")
        await pilot.press("f7", "f7")  # back to training
        await pilot.pause()
        await focus_field(pilot, "field-training-betas")
        await replace_text(pilot, "0.9, 0.98")
        await pilot.pause()
        assert state.value("prediction.stop_strings") == ["###", "a, b"]
        assert state.value("training.betas") == [0.9, 0.98]
        assert state.value("prediction.do_sample") is True
        assert "modified" in str(title.render())
        await pilot.press("f3")
        await wait_for(pilot, lambda: isinstance(app.screen, TextDialog))
        body = app.screen.body
        assert "prediction.stop_strings" in body and "training.betas" in body
        assert "prediction.do_sample: False -> True" in body
        await pilot.press("escape")
        await pilot.press("f2", "end", "ctrl+u", *"lists", "enter")
        await wait_for(pilot, lambda: (workdir / "presets" / "lists.toml").exists())
        assert "modified" not in str(title.render())
    saved = tomllib.loads((workdir / "presets" / "lists.toml").read_text())
    assert saved["prediction"] == {"stop_strings": ["###", "a, b"], "do_sample": True}
    assert saved["training"] == {"betas": [0.9, 0.98]}


async def test_save_as_over_an_existing_preset_asks_first(workdir):
    from tui_tune.tui.screens.dialogs import ConfirmDialog
    taken = workdir / "presets" / "taken.toml"
    taken.write_text('schema_version = 1\nextends = "lora"\n')
    before = taken.read_text()
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await focus_field(pilot, "field-general-experiment_name")
        await replace_text(pilot, "mine")
        await pilot.press("f2", "end", "ctrl+u", *"taken", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("escape")  # Escape keeps the other preset
        await pilot.pause()
        assert taken.read_text() == before and state.dirty
        await pilot.press("f2", "end", "ctrl+u", *"taken", "enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await pilot.press("y")
        await wait_for(pilot, lambda: not state.dirty)
    assert tomllib.loads(taken.read_text())["general"] == {"experiment_name": "mine"}


async def test_choices_are_picked_from_a_select_with_the_keyboard(workdir):
    from textual.widgets import Select
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_tab(pilot, "training")
        await focus_field(pilot, "field-training-schedule")
        select = app.screen.query_one("#field-training-schedule", Select)
        choices = [value for _, value in select._options if value is not Select.NULL]
        target = choices[(choices.index(state.value("training.schedule")) + 1) % len(choices)]
        await pilot.press("enter")  # opens the list on the current choice
        await pilot.pause()
        await pilot.press("down", "enter")
        await wait_for(pilot, lambda: state.value("training.schedule") == target)
        assert state.dirty


async def test_ctrl_s_saves_a_local_preset_in_place_and_asks_a_name_for_a_built_in(workdir):
    from tui_tune.tui.screens.dialogs import PromptDialog
    mine = workdir / "presets" / "mine.toml"
    mine.write_text('schema_version = 1\nextends = "lora"\n\n[training]\nlr = 0.0005\n')
    app = TuneApp(start=lambda: EditorScreen(EditorState.from_preset("mine")))
    async with app.run_test(size=(80, 24)) as pilot:
        await open_tab(pilot, "training")
        await focus_field(pilot, "field-training-lr")
        await replace_text(pilot, "7e-4")
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: not app.screen.state.dirty)
    saved = tomllib.loads(mine.read_text())
    assert saved["extends"] == "lora" and saved["training"] == {"lr": 7e-4}
    app = TuneApp(start=lambda: EditorScreen(EditorState.from_preset("demo-tiny")))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+s")
        await wait_for(pilot, lambda: isinstance(app.screen, PromptDialog))


async def test_the_editor_shows_the_settings_and_metrics_of_the_chosen_problem_type(
        workdir, monkeypatch):
    """Switching general.problem_type shows that type's settings, hides the others (kept in
    the file) and offers only its metrics, the type's default when the old one does not fit."""
    from textual.widgets import Select

    from tui_tune.config.problem_types import METRICS

    monkeypatch.setattr("tui_tune.config.rules.SUPPORTED_PROBLEM_TYPES", tuple(METRICS))
    app = TuneApp()
    async with app.run_test(size=(120, 40)) as pilot:
        await pilot.press("n")
        await wait_for(pilot, lambda: isinstance(app.screen, PresetsScreen))
        names = [p.name for p in app.screen.presets]
        for _ in range(names.index("demo-tiny")):  # a causal_lm preset
            await pilot.press("down")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, EditorScreen))
        editor = app.screen
        await pilot.press("f8")  # general -> dataset
        await wait_for(pilot, lambda: editor.query("#row-dataset-num_classes"))

        def shown(row: str) -> bool:
            return editor.query_one(f"#row-{row}").display

        assert not shown("dataset-num_classes") and shown("dataset-answer_column")
        editor.query_one("#field-general-problem_type", Select).value = "classification"
        await wait_for(pilot, lambda: shown("dataset-num_classes"))
        assert shown("dataset-label_columns") and not shown("dataset-tags_column")
        for _ in range(7):  # dataset -> ... -> prediction
            await pilot.press("f8")
        await wait_for(pilot, lambda: editor.query("#field-prediction-metric"))
        metric = editor.query_one("#field-prediction-metric", Select)
        offered = [value for _, value in metric._options if value is not Select.NULL]
        assert offered == list(METRICS["classification"])
        assert metric.value == "accuracy" == editor.state.value("prediction.metric")
        assert not editor.state.problems
        metric.value = "auc"
        await wait_for(pilot, lambda: editor.state.value("prediction.metric") == "auc")
        editor.query_one("#field-general-problem_type", Select).value = "token_classification"
        await wait_for(pilot, lambda: shown("dataset-tags_column"))
        assert not shown("dataset-num_classes") and not shown("dataset-answer_column")
        assert [v for _, v in metric._options if v is not Select.NULL] == ["f1", "accuracy"]


async def test_the_launch_checks_run_off_the_ui_thread(workdir, monkeypatch):
    """Reading every data file must not freeze the editor: while the start is under way the
    screen answers keys, a second launch is refused, and the failure still comes back."""
    import threading

    release, entered = threading.Event(), threading.Event()

    def slow_start(app, experiment, preset_name):
        entered.set()
        release.wait(20)
        return None, "the checks said no"

    monkeypatch.setattr("tui_tune.tui.launching.launch_experiment", slow_start)
    state = EditorState.from_preset("demo-tiny")
    app = TuneApp(start=lambda: EditorScreen(state))
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await wait_for(pilot, entered.is_set)
        await pilot.press("f8")  # the UI thread is free: the next tab opens
        await wait_for(pilot, lambda: app.screen.query_one("#editor-tabs").active
                       == "tab-dataset")
        await pilot.press("f5")
        await wait_for(pilot, lambda: any("Already starting" in str(n.message)
                                          for n in app._notifications))
        release.set()
        await wait_for(pilot, lambda: "the checks said no" in str(
            app.screen.query_one("#problems").render()))
        assert isinstance(app.screen, EditorScreen)
