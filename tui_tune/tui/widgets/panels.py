"""The monitor's side panels: GPUs, generations (browsable by step) and the console.log tail."""

from __future__ import annotations

from rich.markup import escape
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

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
    """Samples of one evaluation step; earlier steps are reached with `show_step(delta)`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.samples: list[Sample] = []
        self.steps: list[int] = []
        self.index: int | None = None  # None follows the newest step

    def compose(self):
        yield Static("[dim]no generations yet[/dim]", id="generations-text")

    def set_samples(self, samples: list[Sample]) -> None:
        self.samples = samples
        steps = sorted({s.step for s in samples})
        if steps != self.steps:
            self.steps = steps
            self._show_current()

    def show_step(self, delta: int) -> None:
        if not self.steps:
            return
        current = len(self.steps) - 1 if self.index is None else self.index
        target = max(0, min(len(self.steps) - 1, current + delta))
        self.index = None if target == len(self.steps) - 1 else target
        self._show_current()

    def _show_current(self) -> None:
        text = self.query_one("#generations-text", Static)
        if not self.steps:
            text.update("[dim]no generations yet[/dim]")
            return
        index = len(self.steps) - 1 if self.index is None else self.index
        step = self.steps[index]
        follow = " (latest)" if self.index is None else "  [dim]\\[ ] browse[/dim]"
        out = Text.from_markup(f"[b]step {step}[/b]  {index + 1}/{len(self.steps)}{follow}\n")
        for sample in [s for s in self.samples if s.step == step]:
            out.append("prompt ", "dim")
            out.append(sample.prompt.strip() + "\n")
            ok = sample.generation.strip() == sample.reference.strip()
            out.append("model  ", "dim")
            out.append(sample.generation.strip() + "\n", "green" if ok else "yellow")
            if sample.reference:
                out.append("ref    ", "dim")
                out.append(sample.reference.strip() + "\n", "cyan")
        text.update(out)


class LogTail(VerticalScroll):
    """The last lines of console.log, scrolled to the end."""

    def compose(self):
        yield Static("[dim]no console.log yet[/dim]", id="log-text")

    def set_text(self, text: str, lines: int = 200) -> None:
        tail = "\n".join(text.splitlines()[-lines:])
        self.query_one("#log-text", Static).update(Text(tail))
        self.scroll_end(animate=False)  # Textual scrolls once the new text is laid out

    def on_resize(self) -> None:
        """A new width rewraps the lines: stay at the end (seen when the screen first shows)."""
        self.scroll_end(animate=False)
