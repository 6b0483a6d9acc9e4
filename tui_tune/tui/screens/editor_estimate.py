"""The editor's live estimate (issue 20): peak GPU memory, whether it fits, what would make it
fit and the ETA, recomputed a moment after the last change (debounced), in a thread worker so
typing never waits for NVML, the backbone's files or the dataset. The backbone's config.json
is read once (runs/estimate/cached.py); a stale result is dropped, never shown."""

from __future__ import annotations

from textual import work
from textual.widgets import Static

from tui_tune.tui.estimate_text import detail_text, problem_line, summary_line

DEBOUNCE_S = 0.4
WIDE = 110  # columns from which the details show without asking


class EstimateMixin:
    """Mixed into EditorScreen: it provides state, query_one, set_timer and the app."""

    _estimate_timer = None
    _estimate_generation = 0
    estimate_expanded: bool | None = None  # None: decided by the terminal's width
    gpu_gib: float | None = None  # the GPU size asked for (F9) instead of the visible GPUs
    last_estimate = None  # the Estimate shown (tests read it)

    def schedule_estimate(self) -> None:
        if self._estimate_timer is not None:
            self._estimate_timer.stop()
        self._estimate_timer = self.set_timer(DEBOUNCE_S, self._start_estimate)

    def _start_estimate(self) -> None:
        self._estimate_generation += 1
        experiment = self.state.validate()
        if experiment is None:
            self._show_estimate_problem("fix the problems listed on the right first")
            return
        self._estimate_in_thread(experiment, self._estimate_generation, self.gpu_gib)

    @work(thread=True, group="estimate")
    def _estimate_in_thread(self, experiment, generation: int, gpu_gib: float | None) -> None:
        from tui_tune.monitor.gpu import gpu_unavailable_reason, sample_gpus
        from tui_tune.runs.estimate import ShapeError, estimate_run
        from tui_tune.runs.estimate.cached import cached_shape
        from tui_tune.runs.listing import runs_root

        try:
            shape = cached_shape(experiment.general.backbone, experiment.general.revision)
            readings = [] if gpu_gib else sample_gpus()
            result = estimate_run(experiment, readings,
                                  "" if readings or gpu_gib else gpu_unavailable_reason(),
                                  gpu_gib, runs_root(), shape=shape)
        except ShapeError as error:
            self.app.call_from_thread(self._estimate_done, generation, None, str(error))
            return
        except (KeyError, ValueError, ZeroDivisionError) as error:  # a shape it cannot size
            self.app.call_from_thread(self._estimate_done, generation, None,
                                      f"cannot estimate this backbone ({error})")
            return
        self.app.call_from_thread(self._estimate_done, generation, result, "")

    def _estimate_done(self, generation: int, result, error: str) -> None:
        if generation != self._estimate_generation or not self.is_attached:
            return  # a newer change is being estimated, or the editor has closed
        if not self.query("#estimate-line"):
            return  # the editor is being taken down (the app quits) as the result arrives
        if result is None:
            self._show_estimate_problem(error)
            return
        self.last_estimate = result
        self.query_one("#estimate-line", Static).update(summary_line(result))
        self.query_one("#estimate-detail", Static).update(detail_text(result))
        self._show_estimate_detail()

    def _show_estimate_problem(self, message: str) -> None:
        self.last_estimate = None
        self.query_one("#estimate-line", Static).update(problem_line(message))
        self.query_one("#estimate-detail", Static).update("")
        self._show_estimate_detail()

    def _show_estimate_detail(self) -> None:
        expanded = self.estimate_expanded
        if expanded is None:
            expanded = self.app.size.width >= WIDE
        detail = self.query_one("#estimate-detail", Static)
        detail.display = expanded and self.last_estimate is not None

    def action_estimate_details(self) -> None:
        detail = self.query_one("#estimate-detail", Static)
        self.estimate_expanded = not detail.display
        self._show_estimate_detail()
        if self.last_estimate is None:
            self.notify("No estimate yet: the line above says why.", timeout=4)

    def action_gpu_size(self) -> None:
        from tui_tune.tui.screens.dialogs import PromptDialog

        def chosen(text: str | None) -> None:
            if text is None:
                return
            try:
                size = float(text)
            except ValueError:
                size = -1.0
            if not 0 <= size <= 10_000:
                self.notify(f"GPU size {text!r}: give the memory in GiB, such as 24 "
                            "(0: the visible GPUs).", severity="error", timeout=8)
                return
            self.gpu_gib = size or None
            self.schedule_estimate()
        current = f"{self.gpu_gib:g}" if self.gpu_gib else "0"
        self.app.push_screen(PromptDialog("Estimate against a GPU of this many GiB (0: the "
                                          "visible GPUs):", current), chosen)
