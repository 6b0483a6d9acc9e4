"""The monitor's side panels: GPUs, generations or labelling samples (browsable by step; a
multimodal sample's images beside its text, widgets/sample_images.py) and the console.log
tail."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual import work
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Static
from textual.worker import get_current_worker

from tui_tune.tui.run_data import Sample


def gpu_text(readings: list, note: str | None) -> str:
    """Rich markup for the GPU panel; `note` explains an empty list ("no GPU ...")."""
    if not readings:
        return f"[dim]{escape(note or 'no GPU')}[/dim]"
    lines = []
    for r in readings:
        bar = _bar(r.mem_fraction, 10)
        util = f"{r.util_pct:.0f}%" if r.util_pct is not None else "-"
        temp = f"{r.temperature_c:.0f}C" if r.temperature_c is not None else ""
        power = f"{r.power_w:.0f}W" if r.power_w is not None else ""
        lines.append(f"[b]{r.index}[/b] {escape(r.name)[:18]}")
        lines.append(f"  mem {bar} {r.mem_used_gib:.1f}/{r.mem_total_gib:.0f}G")
        lines.append(f"  util {util} {temp} {power}".rstrip())
    return "\n".join(lines)


def _bar(fraction: float, width: int) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    colour = "red" if fraction > 0.9 else "yellow" if fraction > 0.7 else "green"
    return f"[{colour}]{'█' * filled}[/{colour}][dim]{'░' * (width - filled)}[/dim]"


class GenerationsPanel(VerticalScroll):
    """Samples of one evaluation step; earlier steps are reached with `show_step(delta)`.
    Samples with images are rows of pictures beside text while `images_shown`; otherwise
    every sample is text in one Static, image files named by path."""

    DEFAULT_CSS = "GenerationsPanel #generation-rows { height: auto; }"

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.samples: list[Sample] = []
        self.steps: list[int] = []
        self.index: int | None = None  # None follows the newest step
        self.count = 0  # samples shown so far
        from tui_tune.tui.image_terminal import pictures_at_start
        self.images_shown = pictures_at_start()

    def compose(self):
        yield Static("[dim]no generations yet[/dim]", id="generations-text")
        yield Vertical(id="generation-rows")

    def show_images(self, shown: bool) -> None:
        if shown != self.images_shown:
            self.images_shown = shown
            self._show_current()

    def set_samples(self, samples: list[Sample]) -> None:
        """Show the samples; redrawn when samples arrived (an eval's samples may come in two
        batches), not on every batch of steps."""
        if samples is self.samples and len(samples) == self.count:
            return
        self.samples, self.count = samples, len(samples)
        self.steps = sorted({s.step for s in samples})
        self._show_current()

    def show_step(self, delta: int) -> None:
        if not self.steps:
            return
        current = len(self.steps) - 1 if self.index is None else self.index
        target = max(0, min(len(self.steps) - 1, current + delta))
        self.index = None if target == len(self.steps) - 1 else target
        self._show_current()

    @work(thread=True, exclusive=True, group="sample-images")
    def _read_images(self, paths: list[str]) -> None:
        """Decode a step's images off the app thread (a big photo takes a while), then show
        the step (the one shown by then: browsing on cancels this worker)."""
        from tui_tune.tui.image_files import read_image
        for path in paths:
            read_image(path)
        if not get_current_worker().is_cancelled:
            self.app.call_from_thread(self._show_current, images_read=True)

    def _show_current(self, images_read: bool = False) -> None:
        text = self.query_one("#generations-text", Static)
        if not self.steps:
            text.update("[dim]no generations yet[/dim]")
            return
        index = len(self.steps) - 1 if self.index is None else self.index
        step = self.steps[index]
        follow = " (latest)" if self.index is None else "  [dim]\\[ ] browse[/dim]"
        shown = [s for s in self.samples if s.step == step]
        verdicts = [right for s in shown if (right := sample_right(s)) is not None]
        verdict = f"  {verdicts.count(False)}/{len(verdicts)} wrong" if verdicts else ""
        out = Text.from_markup(f"[b]step {step}[/b]  {index + 1}/{len(self.steps)}{follow}"
                               f"{verdict}\n")
        rows = self.query_one("#generation-rows", Vertical)
        rows.remove_children()
        if self.images_shown and any(s.images for s in shown):
            from tui_tune.tui.image_files import read_image
            from tui_tune.tui.widgets.sample_images import SampleRow
            paths = [path for s in shown for path in s.images or ()]
            if not images_read and any(read_image(p, cached_only=True) is None for p in paths):
                text.update(out.append("reading images...", "dim"))
                self._read_images(paths)
                return
            out.rstrip()  # the rows follow at once
            text.update(out)
            rows.mount_all(SampleRow(s.images or [], sample_text(s, image_paths=False))
                           for s in shown)
            return
        for sample in shown:
            out.append_text(sample_text(sample))
        text.update(out)


def sample_right(sample: Sample) -> bool | None:
    """Whether a labelling sample's prediction is the truth (every tag, every label of a
    multilabel row); None where right and wrong do not apply (generations, regression)."""
    predicted, truth = sample.predicted, sample.truth
    if predicted is None or truth is None or _numbers(predicted):
        return None
    if isinstance(predicted, list) and isinstance(truth, list) and sample.words is None:
        return sorted(map(str, predicted)) == sorted(map(str, truth))  # multilabel: a set
    return str(predicted) == str(truth)


def sample_text(sample: Sample, image_paths: bool = True) -> Text:
    """One sample: a generation beside its reference, or a labelling prediction beside the
    truth (the class probabilities; a tagged row's word/TAG pairs), wrong ones marked. A
    multimodal sample's image files are named first (`image_paths`; False where they are
    shown as pictures beside the text)."""
    if sample.images and image_paths:
        out = Text()
        for path in sample.images:
            out.append("image  ", "dim")
            out.append(path + "\n", "blue")
        return out + sample_text(sample, image_paths=False)
    if sample.context is not None:
        return _answered(sample)
    if sample.words is not None and isinstance(sample.predicted, list) \
            and isinstance(sample.truth, list):
        return _tagged(sample)
    if sample.predicted is not None and sample.truth is not None:
        return _labelled(sample)
    out = Text()
    out.append("prompt ", "dim")
    out.append(sample.prompt.strip() + "\n")
    ok = sample.generation.strip() == sample.reference.strip()
    out.append("model  ", "dim")
    out.append(sample.generation.strip() + "\n", "green" if ok else "yellow")
    if sample.reference:
        out.append("ref    ", "dim")
        out.append(sample.reference.strip() + "\n", "cyan")
    if sample.rejected:
        out.append("reject ", "dim")
        out.append(sample.rejected.strip() + "\n", "red")
    for completion, reward in sample.completions or ():
        out.append("sample ", "dim")
        out.append("  ?  " if reward is None else f"{reward:5.2f} ", "bold magenta")
        out.append(completion.strip() + "\n")
    if sample.judge_score is not None or sample.judge_reason:
        out.append("judge  ", "dim")
        score = "no score" if sample.judge_score is None else f"{sample.judge_score:g}"
        out.append(score, "bold magenta")
        out.append(f"  {sample.judge_reason.strip()}\n" if sample.judge_reason else "\n",
                   "magenta")
    return out


def _labelled(sample: Sample) -> Text:
    """text, then the predicted label(s) with their probability (or values), then the truth
    (unless the prediction is right)."""
    out = Text()
    out.append("text   ", "dim")
    out.append(sample.prompt.strip() + "\n")
    right = sample_right(sample)
    out.append("model  ", "dim")
    if right is None:  # numbers: show them with the error
        out.append(sample.generation.strip() + "\n", "green")
        out.append("truth  ", "dim")
        out.append(sample.reference.strip(), "cyan")
        errors = _errors(sample.predicted, sample.truth)
        out.append(f"  error {errors}\n" if errors else "\n", "dim")
        return out
    out.append(_with_probability(sample.predicted, sample.probabilities),
               "green" if right else "red")
    if right:  # the truth is what the model said
        out.append("  ✓ right\n", "green")
        return out
    out.append("  ✗ wrong\n", "bold red")
    out.append("truth  ", "dim")
    out.append(_with_probability(sample.truth, sample.probabilities) + "\n", "cyan")
    return out


def _with_probability(labels: object, probabilities: dict[str, float] | None) -> str:
    """`label 0.91` (or `a 0.91, b 0.62` for several; `(none)` for an empty multilabel)."""
    items = labels if isinstance(labels, list) else [labels]
    shown = [f"{item} {probabilities[str(item)]:.2f}"
             if probabilities and str(item) in probabilities else str(item) for item in items]
    return ", ".join(shown) or "(none)"


def _numbers(value: object) -> bool:
    values = value if isinstance(value, list) else [value]
    return bool(values) and all(isinstance(v, float) for v in values)


def _errors(predicted: object, truth: object) -> str:
    """predicted - truth per target, signed; "" when they are not numbers of one length."""
    pairs = list(zip(predicted, truth, strict=False)) \
        if isinstance(predicted, list) and isinstance(truth, list) else [(predicted, truth)]
    if not pairs or not all(isinstance(p, float) and isinstance(t, float) for p, t in pairs):
        return ""
    return ", ".join(f"{p - t:+.3g}" for p, t in pairs)


def _tagged(sample: Sample) -> Text:
    """word/TAG pairs: a wrong tag in red followed by the true one in brackets."""
    out = Text()
    pairs = list(zip(sample.words or [], sample.predicted, sample.truth, strict=False))
    wrong = 0
    for n, (word, predicted, truth) in enumerate(pairs):
        out.append(" " if n else "")
        out.append(f"{word}/")
        if predicted == truth:
            out.append(str(predicted), "dim" if predicted == "O" else "green")
        else:
            wrong += 1
            out.append(str(predicted), "bold red")
            out.append(f"({truth})", "cyan")
    out.append("\n")
    out.append(f"  ✗ {wrong} of {len(pairs)} tags wrong\n" if wrong
               else f"  ✓ all {len(pairs)} tags right\n", "bold red" if wrong else "green")
    return out


def _answered(sample: Sample, margin: int = 80) -> Text:
    """An extractive answer: the question, the part of the context around the answers with the
    predicted span marked (green when its text is the true answer's, red otherwise) and the
    true span underlined, then the predicted answer beside the truth."""
    context, spans = sample.context or "", [s for s in (sample.span, sample.truth_span) if s]
    first = max(min((s[0] for s in spans), default=0) - margin, 0)
    last = min(max((s[1] for s in spans), default=2 * margin) + margin, len(context))
    shown = Text(("…" if first else "") + context[first:last] + ("…" if last < len(context)
                                                                else ""))
    shift = (1 if first else 0) - first
    right = sample_right(sample) if sample.predicted is not None \
        else sample.span == sample.truth_span
    if sample.truth_span:
        shown.stylize("underline cyan", sample.truth_span[0] + shift, sample.truth_span[1] + shift)
    if sample.span:
        shown.stylize("bold green" if right else "bold red", sample.span[0] + shift,
                      sample.span[1] + shift)
    out = Text()
    out.append("question ", "dim")
    out.append(sample.prompt.strip() + "\n")
    out.append("context  ", "dim")
    out.append_text(shown)
    out.append("\nmodel    ", "dim")
    out.append(sample.generation.strip(), "green" if right else "red")
    out.append("  ✓ right\n" if right else "  ✗ wrong\n", "green" if right else "bold red")
    if not right:
        out.append("truth    ", "dim")
        out.append(sample.reference.strip() + "\n", "cyan")
    return out


class LogTail(VerticalScroll):
    """The last lines of console.log, scrolled to the end."""

    def compose(self):
        yield Static("[dim]no console.log yet[/dim]", id="log-text")

    def set_text(self, text: str, lines: int = 200) -> None:
        from tui_tune.runs.log_noise import without_noise
        text, dropped = without_noise(text)
        shown = Text("\n".join(text.splitlines()[-lines:]))
        if dropped:  # said, so that nobody wonders where a line went
            shown = Text(f"({dropped} library warning{'s' if dropped > 1 else ''} hidden; "
                         "console.log has them)\n", style="dim") + shown
        self.query_one("#log-text", Static).update(shown)
        self.scroll_end(animate=False)  # Textual scrolls once the new text is laid out

    def on_resize(self) -> None:
        """A new width rewraps the lines: stay at the end (seen when the screen first shows)."""
        self.scroll_end(animate=False)
