"""The editor's dataset preview (F6): the training file's first rows as the model will see
them, read in a thread worker (a large file or tokenizer never holds up the screen)."""

from __future__ import annotations

from typing import ClassVar

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Label, Static


class DataPreviewScreen(ModalScreen[None]):
    HELP_TITLE = "Dataset preview"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,f6", "close", "Close", id="preview.close")]

    def __init__(self, experiment):
        super().__init__()
        self.experiment = experiment
        self.result = None  # the DataPreview shown (tests read it)

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide", id="preview-dialog"):
            yield Label(f"Dataset preview: {escape(self.experiment.dataset.train_file)}",
                        classes="question")
            with VerticalScroll(classes="body", id="preview-scroll"):
                yield Static("reading the first rows...", id="preview-body")
            yield Label("Escape to close", classes="hint")

    def on_mount(self) -> None:
        self._read(self.experiment)

    @work(thread=True, group="preview")
    def _read(self, experiment) -> None:
        from tui_tune.runs.data_preview import PreviewError, preview

        try:
            result, error = preview(experiment), ""
        except PreviewError as problem:
            result, error = None, str(problem)
        self.app.call_from_thread(self._show, result, error)

    def _show(self, result, error: str) -> None:
        from tui_tune.tui.data_preview_text import preview_text

        if not self.is_attached:
            return  # closed while the rows were read
        body = self.query_one("#preview-body", Static)
        if result is None:
            body.update(f"[red]{escape(error)}[/red]")
            return
        self.result = result
        body.update(preview_text(result))

    def action_close(self) -> None:
        self.dismiss(None)
