"""Chat with a run's model: one side, or two side by side (A/B) answering the same prompt.

Each side is a run's final/ (or a checkpoint, or the run's base model) served by its own
`tui-tune serve-model` child (runs/model_server.py): the app stays torch-free and streams the
answer over HTTP (tui/chat_stream.py) as it is generated. The server formats the messages the
way the run was trained (its text markers or chat template), so what is typed here is what the
model saw in training. The generation settings above the transcript apply to the next prompt;
Ctrl+S saves each side's conversation as dataset rows in its run's chats/ folder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from rich.markup import escape
from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Input, Label, Static

from tui_tune.rundir import RunDir
from tui_tune.runs.conversation import Turn, save_conversation
from tui_tune.runs.files import checkpoint_dirs, newest_checkpoint
from tui_tune.runs.model_server import ModelServer, ModelServerError
from tui_tune.tui.chat_stream import (
    ChatStreamError,
    GenerationSettings,
    served_model,
    stream_chat,
)
from tui_tune.tui.widgets.fitting_footer import FittingFooter

# setting id, label, parser, how it is shown
SETTINGS = (("temperature", "temp", float), ("top_p", "top-p", float), ("top_k", "top-k", int),
            ("max_tokens", "max new", int), ("repetition_penalty", "rep", float))
SIDE_COLOURS = ("cyan", "magenta")


@dataclass
class Side:
    """One model being chatted with: where it comes from, its server and its conversation."""

    run_dir: Path
    checkpoint: str | None = None  # None: final/
    base: bool = False  # the run's backbone without what training added
    server: ModelServer | None = None
    url: str | None = None
    model: str | None = None  # the id the server answers to (GET /v1/models)
    turns: list[Turn] = field(default_factory=list)
    answer: str = ""  # the answer being streamed
    error: str = ""  # why the latest answer did not come
    state: str = "starting"

    @property
    def title(self) -> str:
        weights = "base model" if self.base else (self.checkpoint or "final/")
        return f"{self.run_dir.name} ({weights})"


def default_checkpoint(run_dir: Path) -> str | None:
    """final/ (None) when the run has it, else its newest complete checkpoint."""
    if RunDir(run_dir).final.is_dir():
        return None
    newest = newest_checkpoint(run_dir)
    return newest.name if newest else None


def run_settings(run_dir: Path) -> GenerationSettings:
    """The run's own decoding settings to start from (the defaults if its config is gone)."""
    from tui_tune.config.errors import ConfigError
    from tui_tune.runs.launch import load_experiment

    try:
        return GenerationSettings.of_run(load_experiment(run_dir).prediction)
    except (ConfigError, OSError):
        return GenerationSettings()


def parse_settings(values: dict[str, str], stop: str) -> GenerationSettings:
    """The settings typed in the inputs; ValueError naming the one that does not read."""
    parsed = {}
    for key, label, kind in SETTINGS:
        text = values[key].strip()
        try:
            parsed[key] = kind(text)
        except ValueError:
            raise ValueError(f"{label} ({key}) must be a {kind.__name__}, not {text!r}") from None
    if parsed["temperature"] < 0 or not 0 < parsed["top_p"] <= 1 or parsed["max_tokens"] < 1:
        raise ValueError("temperature >= 0, 0 < top-p <= 1 and max new >= 1, please")
    stops = [s.encode().decode("unicode_escape") for s in stop.split("|") if s]
    return GenerationSettings(**parsed, stop=stops)


class ChatScreen(Screen):
    HELP_TITLE = "Chat"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+r", "reset", "New conversation", id="chat.reset"),
        Binding("ctrl+s", "save", "Save as dataset rows", id="chat.save"),
        Binding("ctrl+k", "pick_weights", "Checkpoint", id="chat.pick_weights"),
        Binding("escape", "back", "Back", id="chat.back"),
    ]

    def __init__(self, run_dirs: list[Path], checkpoint: str | None = None,
                 with_base: bool = False, server_argv=None):
        super().__init__()
        sides = [Side(Path(p), checkpoint or default_checkpoint(Path(p))) for p in run_dirs[:2]]
        if with_base and len(sides) == 1:
            sides.append(Side(sides[0].run_dir, base=True))
        self.sides = sides
        self.defaults = run_settings(sides[0].run_dir)
        self.server_argv = server_argv  # tests: another command that serves the same way

    def compose(self) -> ComposeResult:
        yield Label("", id="chat-title", classes="status-line")
        with Horizontal(id="chat-settings"):
            for key, label, _ in SETTINGS:
                yield Label(label)
                yield Input(str(getattr(self.defaults, key)), id=f"chat-{key}",
                            classes="chat-setting")
            yield Label("stop")
            stops = "|".join(s.encode("unicode_escape").decode() for s in self.defaults.stop)
            yield Input(stops, placeholder="a|b", id="chat-stop", classes="chat-setting")
        with Horizontal(id="chat-panes"):
            for index, _ in enumerate(self.sides):
                with VerticalScroll(classes="chat-pane", id=f"chat-pane-{index}"):
                    yield Static("", id=f"chat-transcript-{index}")
        yield Input(placeholder="system prompt (optional; applies from the next message)",
                    id="chat-system")
        yield Input(placeholder="Type a message; Enter sends", id="chat-prompt")
        yield FittingFooter()

    def on_mount(self) -> None:
        self.query_one("#chat-prompt", Input).focus()
        for index, _ in enumerate(self.sides):
            self._start_server(index)
        self._show()

    def on_unmount(self) -> None:
        for side in self.sides:
            if side.server:
                side.server.stop()

    # -- servers ---------------------------------------------------------------------------
    @work(thread=True, group="servers")
    def _start_server(self, index: int) -> None:
        side = self.sides[index]
        if side.server:
            side.server.stop()
        side.url, side.model, side.state = None, None, "loading the model"
        self.app.call_from_thread(self._show)
        argv = self.server_argv(side) if self.server_argv else None
        side.server = ModelServer(side.run_dir, side.checkpoint, side.base, argv=argv)
        try:
            side.url, side.state = side.server.start(), "ready"
        except ModelServerError as error:
            side.state = "failed"
            self.app.call_from_thread(self.notify, escape(str(error)), severity="error",
                                      timeout=20)
        self.app.call_from_thread(self._show)

    # -- talking ---------------------------------------------------------------------------
    @on(Input.Submitted, "#chat-prompt")
    def _send(self, event: Input.Submitted) -> None:
        prompt = event.value.strip()
        if not prompt:
            return
        if any(side.state != "ready" for side in self.sides):
            self.notify("Wait until every model is ready (the title says).", severity="warning")
            return
        try:
            settings = self._settings()
        except ValueError as error:
            self.notify(f"Generation settings: {error}", severity="error")
            return
        event.input.value = ""
        system = self.query_one("#chat-system", Input).value.strip()
        for index, _ in enumerate(self.sides):
            self._answer(index, prompt, system, settings)

    def _settings(self) -> GenerationSettings:
        values = {key: self.query_one(f"#chat-{key}", Input).value for key, _, _ in SETTINGS}
        return parse_settings(values, self.query_one("#chat-stop", Input).value)

    @work(group="answers")
    async def _answer(self, index: int, prompt: str, system: str,
                      settings: GenerationSettings) -> None:
        side = self.sides[index]
        messages = [{"role": "system", "content": system}] if system else []
        for turn in side.turns:
            messages += [{"role": "user", "content": turn.prompt},
                         {"role": "assistant", "content": turn.answer}]
        messages.append({"role": "user", "content": prompt})
        side.state, side.answer = "answering", ""
        pending = Turn(prompt, "")
        side.turns.append(pending)
        self._show()
        failed = False
        try:
            side.model = side.model or await served_model(side.url)
            async for piece in stream_chat(side.url, messages, settings, side.model):
                side.answer += piece
                self._show_side(index)
        except (ChatStreamError, OSError, ValueError) as error:
            failed, side.error = True, str(error)
            self.notify(f"{side.title}: {escape(str(error))}", severity="error", timeout=20)
        if failed and not side.answer:
            side.turns.pop()  # nothing came: the prompt can be sent again
        else:
            side.turns[-1] = Turn(prompt, side.answer)
        side.answer, side.state = "", "ready" if side.server and side.server.running else "failed"
        self._show()

    # -- keys ------------------------------------------------------------------------------
    def action_reset(self) -> None:
        for side in self.sides:
            side.turns.clear()
        self._show()
        self.notify("New conversation.")

    def action_save(self) -> None:
        from tui_tune.runs.launch import load_experiment

        saved = []
        for side in self.sides:
            turns = [t for t in side.turns if t.answer]
            if not turns or side.base:
                continue
            system = self.query_one("#chat-system", Input).value.strip()
            dataset = load_experiment(side.run_dir).dataset
            saved.append(save_conversation(side.run_dir, turns, dataset, system))
        if not saved:
            self.notify("Nothing to save yet: no answered message.", severity="warning")
            return
        self.notify("Saved as dataset rows: " + ", ".join(escape(str(p)) for p in saved),
                    timeout=10)

    def action_pick_weights(self) -> None:
        """Chat with a checkpoint instead of final/ (the first side; restarts its server)."""
        side = self.sides[0]
        choices = [("final/", "final/ (the finished model)")] + [
            (p.name, p.name) for p in reversed(checkpoint_dirs(side.run_dir))]

        def picked(key: str | None) -> None:
            if key is None:
                return
            side.checkpoint = None if key == "final/" else key
            side.turns.clear()
            self._start_server(0)

        from tui_tune.tui.screens.dialogs import ChoiceDialog
        self.app.push_screen(ChoiceDialog("Chat with which weights?", choices,
                                          side.checkpoint or "final/"), picked)

    def action_back(self) -> None:
        self.app.pop_screen()

    # -- drawing ---------------------------------------------------------------------------
    def _show(self) -> None:
        titles = "   ".join(f"[{SIDE_COLOURS[i]}]{'AB'[i]}[/] {escape(side.title)}: {side.state}"
                            for i, side in enumerate(self.sides))
        self.query_one("#chat-title", Label).update(f"[b]Chat[/b]  {titles}")
        for index, _ in enumerate(self.sides):
            self._show_side(index)

    def _show_side(self, index: int) -> None:
        side = self.sides[index]
        text = Text()
        for number, turn in enumerate(side.turns):
            streaming = number == len(side.turns) - 1 and side.state == "answering"
            text.append("you: ", style="bold")
            text.append(turn.prompt + "\n")
            text.append("model: ", style=f"bold {SIDE_COLOURS[index]}")
            text.append((side.answer if streaming else turn.answer) + "\n\n")
        if not side.turns:
            text.append("Type a message below; Enter sends it.", style="dim")
        self.query_one(f"#chat-transcript-{index}", Static).update(text)
        self.query_one(f"#chat-pane-{index}", VerticalScroll).scroll_end(animate=False)
